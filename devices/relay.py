"""The gate relay: a pulse releases the gate's lock (or starts the barrier) for a few seconds.

Two drivers behind one interface, `pulse(seconds)` and `state`:
- `GpioRelay`: a relay board on a Raspberry Pi GPIO pin, through gpiozero (any of its pin
  factories; tests use its MockFactory);
- `SimulatedRelay`: for the demo and tests; records every pulse with its times and, if
  given a file, appends each pulse to it durably (so a test that kills the gate can check
  that no pulse happened without its entry).

A pulse returns at once; the relay drops by itself when the time is up. A second pulse
while one is running **extends** it to whichever ends later (it never shortens one): two
people admitted a second apart must both get the full time to walk through.

The relay knows nothing of people or entries: the checkpoint pulses it only after the
entry is committed (no record, no opening).
"""
from __future__ import annotations

import dataclasses
import enum
import json
import os
import threading
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

MAX_PULSE_S = 30.0   # a gate held open longer than this is not a pulse: a guard opens it by hand
DEFAULT_PULSE_S = 3.0


class RelayState(str, enum.Enum):
    OFF = "off"        # not energised: the gate is shut
    ON = "on"          # energised: the gate is released
    FAULT = "fault"    # the pin failed; the gate must be opened by hand until it is fixed


class RelayError(Exception):
    """The relay cannot do what was asked; the message says why in one line."""


class RelayFault(RelayError):
    """The relay's pin is missing, taken or failed: the gate will not open by itself."""


class BadPulse(RelayError):
    """A pulse length outside (0, MAX_PULSE_S] seconds."""


@dataclasses.dataclass(frozen=True)
class Pulse:
    """One pulse as the relay saw it."""
    started_monotonic: float
    started_utc: float      # time.time(), for logs
    seconds: float
    extended: bool          # it arrived while an earlier pulse was still on


class Relay(Protocol):
    def pulse(self, seconds: float = DEFAULT_PULSE_S) -> Pulse: ...

    @property
    def state(self) -> RelayState: ...

    def close(self) -> None: ...


def check_seconds(seconds: float) -> float:
    try:
        s = float(seconds)
    except (TypeError, ValueError):
        raise BadPulse(f"pulse length must be a number of seconds, not {str(seconds)[:20]!r}") from None
    if not 0 < s <= MAX_PULSE_S:  # also refuses NaN
        raise BadPulse(f"pulse length must be more than 0 and at most {MAX_PULSE_S:g} s, not {s:g}")
    return s


class SimulatedRelay:
    """A relay with no hardware. `state` follows the clock; `pulses` keeps every pulse."""

    def __init__(self, *, log_path: str | os.PathLike | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self._clock = clock
        self._lock = threading.Lock()
        self._until = float("-inf")
        self._closed = False
        self.pulses: list[Pulse] = []
        self.log_path = Path(log_path) if log_path is not None else None

    def pulse(self, seconds: float = DEFAULT_PULSE_S) -> Pulse:
        s = check_seconds(seconds)
        with self._lock:
            if self._closed:
                raise RelayFault("the simulated relay is closed")
            now = self._clock()
            p = Pulse(now, time.time(), s, extended=now < self._until)
            self._until = max(self._until, now + s)
            self.pulses.append(p)
            if self.log_path is not None:
                _append_line(self.log_path, dataclasses.asdict(p))
        return p

    @property
    def state(self) -> RelayState:
        return RelayState.ON if self._clock() < self._until else RelayState.OFF

    @property
    def on_until(self) -> float | None:
        """The clock time the relay drops, while it is on."""
        return self._until if self.state is RelayState.ON else None

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._until = float("-inf")


def _append_line(path: Path, record: dict[str, Any]) -> None:
    """One JSON line, on disk before the call returns (0600: it is the gate's log)."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, (json.dumps(record) + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)


class GpioRelay:
    """A relay on a GPIO pin through gpiozero.

    `pin` is anything gpiozero accepts (17, "GPIO17", "BOARD11"); `active_high=False` for
    the common relay boards that switch on a low input. `pin_factory` is a gpiozero
    Factory (None: gpiozero's default for the board, or GPIOZERO_PIN_FACTORY).
    A worker thread drops the relay when the pulse ends, so `pulse()` never blocks."""

    def __init__(self, pin: int | str, *, active_high: bool = True, pin_factory: Any = None):
        from gpiozero import DigitalOutputDevice, GPIOZeroError  # imported here: only a Pi needs it
        self._errors: tuple[type[BaseException], ...] = (GPIOZeroError, OSError, RuntimeError)
        self.pin = pin
        # gpiozero warns once per pin library it could not load before it gives up; keep
        # those reasons for the one-line error instead of printing them to the guard's terminal.
        with warnings.catch_warnings(record=True) as fallbacks:
            warnings.simplefilter("always")
            try:
                self._device = DigitalOutputDevice(pin, active_high=active_high, initial_value=False,
                                                   pin_factory=pin_factory)
            except self._errors as exc:
                tried = "; ".join(str(w.message) for w in fallbacks)
                words = f"relay pin {str(pin)[:20]} unavailable: {_one_line(exc)}" + (f" ({tried})" if tried else "")
                raise RelayFault(words[:300]) from exc
        self._cond = threading.Condition()
        self._until: float | None = None
        self._fault: str | None = None
        self._closed = False
        self.pulses: list[Pulse] = []
        self._worker = threading.Thread(target=self._drop_when_due, name="relay", daemon=True)
        self._worker.start()

    def pulse(self, seconds: float = DEFAULT_PULSE_S) -> Pulse:
        s = check_seconds(seconds)
        with self._cond:
            if self._closed:
                raise RelayFault(f"relay pin {self.pin} is closed")
            if self._fault:
                raise RelayFault(f"relay pin {self.pin} failed earlier: {self._fault}")
            now = time.monotonic()
            extended = self._until is not None
            try:
                if not extended:
                    self._device.on()
            except self._errors as exc:
                self._fault = _one_line(exc)
                raise RelayFault(f"relay pin {self.pin} failed: {self._fault}") from exc
            self._until = max(self._until or now, now + s)
            p = Pulse(now, time.time(), s, extended)
            self.pulses.append(p)
            self._cond.notify()
        return p

    def _drop_when_due(self) -> None:
        with self._cond:
            while not self._closed:
                if self._until is None:
                    self._cond.wait()
                    continue
                left = self._until - time.monotonic()
                if left > 0:
                    self._cond.wait(left)
                    continue
                self._until = None
                try:
                    self._device.off()
                except self._errors as exc:  # stuck on: say so; the next pulse refuses
                    self._fault = _one_line(exc)

    @property
    def state(self) -> RelayState:
        with self._cond:
            if self._fault:
                return RelayState.FAULT
            return RelayState.ON if self._until is not None else RelayState.OFF

    @property
    def fault(self) -> str | None:
        return self._fault

    def close(self) -> None:
        """Drop the relay and release the pin."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._until = None
            self._cond.notify()
        self._worker.join(timeout=2)
        try:
            self._device.off()
        except self._errors:
            pass  # closing anyway; the pin's own close below resets it
        finally:
            self._device.close()


def open_relay(kind: str, *, pin: int | str | None = None, active_high: bool = True,
               log_path: str | os.PathLike | None = None, pin_factory: Any = None) -> Relay:
    """The relay a config names: "gpio" (needs a pin) or "sim"."""
    if kind == "sim":
        return SimulatedRelay(log_path=log_path)
    if kind == "gpio":
        if pin is None:
            raise RelayError("a gpio relay needs a pin (e.g. 17 or GPIO17)")
        return GpioRelay(pin, active_high=active_high, pin_factory=pin_factory)
    raise RelayError(f"unknown relay kind {kind[:20]!r}: gpio or sim")


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:200]
