"""ASCII line modules: one line of text per reading, parsed by a regular expression.

The pattern needs a named group `object` and may have `ambient`. It is searched in
each line; anchor it (^...$) to reject lines cut short (the default is anchored).

Some modules print object and ambient on lines of their own (`TO:31.92` then
`TA:33.53`). Lines matching the ambient pattern are not garbage: once the parser has
seen one, it holds each object-only line until the next line and pairs the two.
"""
from __future__ import annotations

import math
import re

from ..reading import Status
from . import Event, Fault, Sample

_NUM = r"[-+]?\d+(?:\.\d+)?"
_UNIT = r"(?:\s*[^\w\s,;]{0,2}\s*C\b)?"
# Accepts e.g. "Object: 36.50 C, Ambient: 25.00 C", "TO=36.50 TA=25.00", "obj=36.5".
DEFAULT_PATTERN = (
    r"(?i)^\s*(?:object|obj|to|t_?obj)\s*[:=]\s*(?P<object>" + _NUM + ")" + _UNIT
    + r"(?:\s*[,;]?\s*(?:ambient|amb|ta|t_?amb)\s*[:=]\s*(?P<ambient>" + _NUM + ")" + _UNIT + r")?"
    + r"\s*$"
)
DEFAULT_AMBIENT_PATTERN = (
    r"(?i)^\s*(?:ambient|amb|ta|t_?amb)\s*[:=]\s*(?P<ambient>" + _NUM + ")" + _UNIT + r"\s*$"
)
MAX_LINE = 256


class PatternError(ValueError):
    """The pattern does not compile or lacks the `object` group."""


def compile_pattern(pattern: str) -> re.Pattern[str]:
    try:
        rx = re.compile(pattern)
    except re.error as e:
        raise PatternError(f"bad pattern: {e}") from None
    if "object" not in rx.groupindex:
        raise PatternError("the pattern needs a named group (?P<object>...)")
    return rx


def decode_line(line: bytes, rx: re.Pattern[str]) -> Sample | None:
    text = line.decode("utf-8", errors="replace")
    m = rx.search(text)
    if not m:
        return None
    try:
        obj = float(m.group("object"))
        amb_text = m.groupdict().get("ambient")
        amb = float(amb_text) if amb_text else None
    except (TypeError, ValueError):
        return None
    if not math.isfinite(obj) or (amb is not None and not math.isfinite(amb)):
        return None
    return Sample(obj, amb, bytes(line))


class LineParser:
    def __init__(self, pattern: str = DEFAULT_PATTERN,
                 ambient_pattern: str | None = DEFAULT_AMBIENT_PATTERN):
        self.rx = compile_pattern(pattern)
        self.ambient_rx = None
        if ambient_pattern:
            try:
                self.ambient_rx = re.compile(ambient_pattern)
            except re.error as e:
                raise PatternError(f"bad ambient pattern: {e}") from None
            if "ambient" not in self.ambient_rx.groupindex:
                raise PatternError("the ambient pattern needs a named group (?P<ambient>...)")
        self.buf = bytearray()
        self.split_lines = False             # the module prints ambient on lines of its own
        self.pending: Sample | None = None   # an object line waiting for its ambient line

    def feed(self, data: bytes) -> list[Event]:
        self.buf += data
        out: list[Event] = []
        while True:
            i = self.buf.find(b"\n")
            if i < 0:
                if len(self.buf) > MAX_LINE:   # no newline in sight: garbage
                    out.append(Fault(Status.GARBAGE, f"{len(self.buf)} bytes without a newline",
                                     bytes(self.buf[:64])))
                    self.buf.clear()
                return out
            line = bytes(self.buf[:i]).strip(b"\r\x00 \t")
            del self.buf[:i + 1]
            if line:
                self._line(line, out)

    def _line(self, line: bytes, out: list[Event]) -> None:
        sample = decode_line(line, self.rx)
        ambient = None if sample is not None else self._ambient(line)
        if ambient is not None:
            self.split_lines = True
            if self.pending is not None:
                out.append(Sample(self.pending.object_c, ambient, self.pending.raw + b"\n" + line))
                self.pending = None
            return
        self._release(out)
        if sample is None:
            out.append(Fault(Status.GARBAGE, "line does not match the pattern", line[:64]))
        elif sample.ambient_c is None and self.split_lines:
            self.pending = sample
        else:
            out.append(sample)

    def _ambient(self, line: bytes) -> float | None:
        if self.ambient_rx is None:
            return None
        m = self.ambient_rx.search(line.decode("utf-8", errors="replace"))
        try:
            value = float(m.group("ambient")) if m else None
        except (TypeError, ValueError):
            return None
        return value if value is not None and math.isfinite(value) else None

    def _release(self, out: list[Event]) -> None:
        if self.pending is not None:   # its ambient line never came: the object alone
            out.append(self.pending)
            self.pending = None

    def flush(self) -> list[Event]:
        out: list[Event] = []
        self._release(out)
        if self.buf.strip():
            out.append(Fault(Status.PARTIAL_FRAME, "line without its end", bytes(self.buf[:64])))
        self.buf.clear()
        return out


def encode_split(object_c: float, ambient_c: float | None) -> bytes:
    """The two-line style: `TO:` then `TA:`."""
    return f"TO:{object_c:.2f}\r\n".encode() + (b"" if ambient_c is None else f"TA:{ambient_c:.2f}\r\n".encode())


def encode(object_c: float, ambient_c: float | None) -> bytes:
    """The line the emulator prints."""
    if ambient_c is None:
        return f"Object: {object_c:.2f} C\r\n".encode()
    return f"Object: {object_c:.2f} C, Ambient: {ambient_c:.2f} C\r\n".encode()
