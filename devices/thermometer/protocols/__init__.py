"""Pure protocol code: bytes in, samples and faults out. No I/O, no clock.

Each module frames and parses one protocol (and encodes its frames, for the
emulators); the driver owns the serial port and the timing.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..reading import Status


@dataclass(frozen=True)
class Sample:
    """A valid frame decoded into temperatures."""
    object_c: float
    ambient_c: float | None
    raw: bytes


@dataclass(frozen=True)
class Fault:
    """Something on the line that is not a valid frame; kept for the status and the log."""
    status: Status
    detail: str
    raw: bytes = b""


Event = Sample | Fault

PROTOCOLS = ("gy-mcu90614", "modbus", "ascii")
