"""Body temperature from forehead (object) and ambient temperature.

A forehead is cooler than the body core, and cooler still when the air is cold:
body = object + a * ambient + b (a linear ambient model). The defaults and why are in
docs/thermometer.md; `gate thermometer calibrate` fits a and b on site.
"""
from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

from .reading import Flag

DEFAULT_A = -0.1    # °C of offset per °C of ambient: colder air, bigger correction
DEFAULT_B = 4.5     # °C: offset at 0 °C ambient (gives +2.0 °C at 25 °C ambient)
DEFAULT_LOW = 34.0
DEFAULT_HIGH = 43.0
# Used for modules without an ambient sensor: room temperature.
ASSUMED_AMBIENT_C = 25.0


@dataclass(frozen=True)
class Compensation:
    a: float = DEFAULT_A
    b: float = DEFAULT_B
    low: float = DEFAULT_LOW     # plausible body range; outside it the estimate is flagged
    high: float = DEFAULT_HIGH
    assumed_ambient_c: float = ASSUMED_AMBIENT_C

    def estimate(self, object_c: float, ambient_c: float | None) -> float:
        ambient = self.assumed_ambient_c if ambient_c is None else ambient_c
        return round(object_c + self.a * ambient + self.b, 2)

    def body(self, object_c: float, ambient_c: float | None) -> tuple[float | None, float, Flag]:
        """(body_c or None, the raw estimate, flag). Never passes an implausible value on."""
        est = self.estimate(object_c, ambient_c)
        if not math.isfinite(est) or not self.low <= est <= self.high:
            return None, est, Flag.IMPLAUSIBLE
        return est, est, Flag.OK


class CalibrationError(ValueError):
    """The paired readings cannot give a fit (too few rows, bad numbers, missing columns)."""


@dataclass(frozen=True)
class Pair:
    object_c: float
    ambient_c: float
    reference_c: float


@dataclass(frozen=True)
class Fit:
    a: float
    b: float
    pairs: list[Pair]
    residuals: list[float]   # reference - fitted body, per pair
    fixed_a: bool            # ambient did not vary: only b was fitted, a kept

    @property
    def rms(self) -> float:
        return math.sqrt(sum(r * r for r in self.residuals) / len(self.residuals))

    @property
    def max_abs(self) -> float:
        return max(abs(r) for r in self.residuals)


COLUMNS = {"object_c": ("object_c", "object"), "ambient_c": ("ambient_c", "ambient"),
           "reference_c": ("reference_c", "reference", "ref")}


def read_pairs(path: Path) -> list[Pair]:
    """Paired readings from a CSV with a header: object_c, ambient_c, reference_c."""
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        header = {h.strip().lower(): h for h in reader.fieldnames or []}
        cols = {}
        for key, names in COLUMNS.items():
            found = next((header[n] for n in names if n in header), None)
            if found is None:
                raise CalibrationError(f"{path}: missing column {key!r} (header: {reader.fieldnames})")
            cols[key] = found
        pairs = []
        for lineno, row in enumerate(reader, start=2):
            try:
                values = [float(row[cols[k]]) for k in COLUMNS]
            except (TypeError, ValueError):
                raise CalibrationError(f"{path}:{lineno}: not a number in {row}") from None
            if not all(math.isfinite(v) for v in values):
                raise CalibrationError(f"{path}:{lineno}: not a finite number in {row}")
            pairs.append(Pair(*values))
    return pairs


def fit(pairs: list[Pair], default_a: float = DEFAULT_A) -> Fit:
    """Least squares for reference - object = a * ambient + b."""
    if len(pairs) < 2:
        raise CalibrationError(f"need at least 2 paired readings, got {len(pairs)}")
    xs = [p.ambient_c for p in pairs]
    ys = [p.reference_c - p.object_c for p in pairs]
    n = len(pairs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    if sxx < 1e-9:  # one ambient temperature only: the slope is not observable
        a, fixed = default_a, True
    else:
        a, fixed = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx, False
    b = my - a * mx
    residuals = [p.reference_c - (p.object_c + a * p.ambient_c + b) for p in pairs]
    return Fit(a=a, b=b, pairs=pairs, residuals=residuals, fixed_a=fixed)
