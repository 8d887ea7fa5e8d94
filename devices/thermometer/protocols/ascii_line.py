"""ASCII line modules: one line of text per reading, parsed by a regular expression.

The pattern needs a named group `object` and may have `ambient`. It is searched in
each line; anchor it (^...$) to reject lines cut short (the default is anchored).
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
    def __init__(self, pattern: str = DEFAULT_PATTERN):
        self.rx = compile_pattern(pattern)
        self.buf = bytearray()

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
            if not line:
                continue
            sample = decode_line(line, self.rx)
            out.append(sample if sample is not None
                       else Fault(Status.GARBAGE, "line does not match the pattern", line[:64]))

    def flush(self) -> list[Event]:
        if not self.buf.strip():
            self.buf.clear()
            return []
        raw = bytes(self.buf)
        self.buf.clear()
        return [Fault(Status.PARTIAL_FRAME, "line without its end", raw[:64])]


def encode(object_c: float, ambient_c: float | None) -> bytes:
    """The line the emulator prints."""
    if ambient_c is None:
        return f"Object: {object_c:.2f} C\r\n".encode()
    return f"Object: {object_c:.2f} C, Ambient: {ambient_c:.2f} C\r\n".encode()
