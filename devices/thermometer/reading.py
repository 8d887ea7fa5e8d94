"""What the thermometer hands to the gate: readings, and a status the gate can poll."""
from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, field


class Flag(str, enum.Enum):
    """How far a reading may be trusted as a person's temperature."""
    OK = "ok"                    # body_c is a plausible body temperature
    IMPLAUSIBLE = "implausible"  # body estimate outside the plausible range: no person, or a sensor error
    STUCK = "stuck"              # the sensor has sent exactly the same values for too long


class Status(str, enum.Enum):
    """Named conditions of the serial line and the device (worded for guards in kiosk/reasons.py)."""
    OK = "ok"
    PORT_MISSING = "port_missing"        # the port could not be opened (not there at start, or not back yet)
    DISCONNECTED = "disconnected"        # the port failed while open (USB adapter pulled)
    NO_DATA = "no_data"                  # silence: nothing valid from the device for a while
    GARBAGE = "garbage"                  # bytes that belong to no frame / a line that does not parse
    PARTIAL_FRAME = "partial_frame"      # a frame cut short
    CHECKSUM_ERROR = "checksum_error"    # a frame whose checksum / CRC is wrong
    TIMEOUT = "timeout"                  # a query got no answer in time
    DEVICE_EXCEPTION = "device_exception"  # the device answered with an error (Modbus exception response)
    STUCK = "stuck"                      # the same value for a long time
    INTERNAL_ERROR = "internal_error"    # a bug on our side; logged, the loop goes on


@dataclass(frozen=True)
class Reading:
    """One measurement. Raw values are always kept; body_c is None unless flag is OK."""
    object_c: float
    ambient_c: float | None
    body_c: float | None
    flag: Flag
    t: float              # time.monotonic() when the frame was complete
    raw: str              # the frame as hex (ASCII lines: the line's bytes as hex)
    protocol: str
    port: str
    body_estimate_c: float | None = None  # the estimate even when implausible, for the record

    def to_dict(self) -> dict:
        d = asdict(self)
        d["flag"] = self.flag.value
        return d


@dataclass(frozen=True)
class ThermometerStatus:
    """A snapshot the gate (and its console) reads to know whether it can measure."""
    status: Status                    # the current condition (OK when readings flow)
    connected: bool                   # the port is open
    no_data: bool                     # nothing valid for `silence_after` seconds
    errors_per_minute: float          # faults in the last 60 s
    last_good_age_s: float | None     # seconds since the last reading, None if there was none
    readings: int = 0                 # readings since start
    reconnects: int = 0               # successful re-opens after a failure
    last_error: str = ""              # the latest fault, in words (English, for logs)
    counts: dict[str, int] = field(default_factory=dict)  # faults by status name since start

    def to_dict(self) -> dict:
        d = asdict(self)
        d["status"] = self.status.value
        return d
