"""What the gate knows about time on a Pi with no real-time clock.

Every entry records the boot id, a monotonic time and whether the wall clock was
synchronised, so the township server can correct entries written before NTP
caught up (a Pi boots believing it is the last time it was shut down).
"""
from __future__ import annotations

import ctypes
import ctypes.util
import datetime as dt
import functools
import time
import uuid
from pathlib import Path

_TIME_ERROR = 5  # adjtimex(2): clock not synchronised


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def iso(t: dt.datetime) -> str:
    """UTC ISO-8601 with milliseconds and a Z; sorts as text."""
    return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def parse_iso(text: str) -> dt.datetime:
    """ISO-8601 to an aware datetime; a naive time is taken as UTC."""
    t = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return t if t.tzinfo else t.replace(tzinfo=dt.UTC)


def boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return _PROCESS_BOOT_ID


_PROCESS_BOOT_ID = str(uuid.uuid4())


def monotonic_ns() -> int:
    return time.monotonic_ns()


def clock_synchronised() -> bool:
    """True when the kernel says NTP has disciplined the clock (as timedatectl does)."""
    if Path("/run/systemd/timesync/synchronized").exists():
        return True
    libc = _libc()
    if libc is None:
        return False
    buf = ctypes.create_string_buffer(512)  # struct timex, modes=0: read only
    return libc.adjtimex(buf) not in (-1, _TIME_ERROR)


@functools.cache
def _libc() -> ctypes.CDLL | None:
    # find_library runs ldconfig: once per process, not once per entry.
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    except OSError:
        return None
