"""The reading loop: one serial port, one session, readings out, never dies.

    therm = Thermometer("/dev/ttyUSB0", GyMcu90614Session(mode="query"))
    therm.start()                 # a thread; or: for r in therm.readings(): ...
    therm.latest(max_age=2.0)     # newest Reading, or None
    therm.status()                # ThermometerStatus: connected, no data, errors/min, age
    therm.stop()
"""
from __future__ import annotations

import collections
import errno
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator

import serial

from .body import Compensation
from .protocols import Fault, Sample
from .reading import Flag, Reading, Status, ThermometerStatus
from .sessions import READ_SLICE, Session

log = logging.getLogger("gate.thermometer")

ERROR_WINDOW_S = 60.0
RECENT_FAULT_S = 5.0     # a fault this recent, with no reading after it, is the current status


class PortOpenError(OSError):
    """The serial port cannot be opened (missing, busy, not a tty, no permission)."""


class Thermometer:
    def __init__(self, port: str, session: Session, *, baud: int = 9600,
                 compensation: Compensation | None = None,
                 backoff_initial: float = 0.1, backoff_max: float = 2.0,
                 silence_after: float = 2.0, stuck_after: float = 60.0, stuck_min: int = 5,
                 clock: Callable[[], float] = time.monotonic):
        self.port, self.session, self.baud = port, session, baud
        self.compensation = compensation or Compensation()
        self.backoff_initial, self.backoff_max = backoff_initial, backoff_max
        self.silence_after, self.stuck_after, self.stuck_min = silence_after, stuck_after, stuck_min
        self.clock = clock
        self._serial: serial.Serial | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._cond = threading.Condition()
        self._latest: Reading | None = None
        self._ever_open = False
        self._down_status = Status.PORT_MISSING
        self._backoff = backoff_initial
        self._started_t = clock()
        self._last_data_t: float | None = None     # last valid frame
        self._last_idle_t = 0.0
        self._silent = False
        self._stuck_key: tuple | None = None
        self._stuck_since = 0.0
        self._stuck_n = 0
        self._stuck = False
        self._faults: collections.deque[float] = collections.deque()
        self._last_fault: tuple[float, Status, str] | None = None
        self._counts: collections.Counter[str] = collections.Counter()
        self._n_readings = 0
        self._reconnects = 0

    # --- the port ---

    def connect(self) -> None:
        """Open the port now; raises PortOpenError with the reason (used by the CLI)."""
        if self._serial is not None:
            return
        try:
            # exclusive: a second reader on the same port would steal half the frames
            ser = serial.Serial(self.port, self.baud, timeout=READ_SLICE, write_timeout=1.0,
                                exclusive=True)
        except (serial.SerialException, OSError, ValueError) as e:
            code = getattr(e, "errno", None)
            reason = ("in use by another program" if code in (errno.EAGAIN, errno.EWOULDBLOCK)
                      else os.strerror(code) if code else str(e))
            raise PortOpenError(f"cannot open serial port {self.port}: {reason}") from None
        try:
            self.session.start(ser)
        except (serial.SerialException, OSError) as e:
            ser.close()
            raise PortOpenError(f"port {self.port} failed right after opening: {e}") from None
        except BaseException:
            ser.close()
            raise
        self._serial = ser
        if self._ever_open:
            self._reconnects += 1
            log.info("thermometer %s: reconnected", self.port)
        self._ever_open = True
        self._last_data_t = None
        self._silent = False
        self._last_idle_t = self.clock()

    def _try_connect(self) -> bool:
        try:
            self.connect()
            return True
        except PortOpenError as e:
            self._fault(self._down_status, str(e), count_per_minute=False)
        except Exception as e:  # noqa: BLE001 - reported as an internal fault, the loop goes on
            self._internal(e)
        self._stop.wait(self._backoff)
        self._backoff = min(self._backoff * 2, self.backoff_max)
        return False

    def _lost(self, err: Exception) -> None:
        self._close()
        self._down_status = Status.DISCONNECTED
        self._fault(Status.DISCONNECTED, f"port {self.port} failed: {err}")

    @property
    def serial(self) -> serial.Serial | None:
        """The open port, for tools that drive the session themselves (the benchmark)."""
        return self._serial

    def close(self) -> None:
        """Stop the loop and close the port."""
        self.stop()
        self._close()

    def _close(self) -> None:
        if self._serial is not None:
            try:
                self._serial.close()
            except Exception:  # noqa: BLE001 - closing a dead port may fail too; it is gone either way
                pass
            self._serial = None

    # --- the loop ---

    def readings(self) -> Iterator[Reading]:
        """Readings until stop(). Never raises: every failure becomes a status."""
        try:
            while not self._stop.is_set():
                if self._serial is None and not self._try_connect():
                    continue
                t0 = self.clock()
                try:
                    events = self.session.step(self._serial)
                except (serial.SerialException, OSError) as e:
                    self._lost(e)
                    continue
                except Exception as e:  # noqa: BLE001 - a bug must not stop the gate measuring
                    self._internal(e)
                    continue
                for ev in events:   # readings first: nothing after this may lose them
                    try:
                        if isinstance(ev, Sample):
                            reading: Reading | None = self._reading(ev)
                        else:
                            reading = None
                            self._fault(ev.status, ev.detail, ev.raw)
                    except Exception as e:  # noqa: BLE001 - as above
                        self._internal(e)
                        continue
                    if reading is not None:
                        yield reading
                try:
                    for ev in self._check_silence():
                        self._fault(ev.status, ev.detail, ev.raw)
                except (serial.SerialException, OSError) as e:
                    self._lost(e)
                    continue
                except Exception as e:  # noqa: BLE001 - as above
                    self._internal(e)
                    continue
                if self.session.polled:
                    self._stop.wait(max(0.0, self.session.interval - (self.clock() - t0)))
        finally:
            self._close()
            if self._ever_open:
                self._down_status = Status.DISCONNECTED

    __iter__ = readings

    def _internal(self, e: Exception) -> None:
        log.exception("thermometer %s: internal error", self.port)
        self._fault(Status.INTERNAL_ERROR, repr(e))
        self._stop.wait(0.5)

    def _check_silence(self) -> list:
        now = self.clock()
        since = self._last_data_t if self._last_data_t is not None else self._last_idle_t
        if now - since < self.silence_after or now - self._last_idle_t < self.silence_after:
            return []
        self._last_idle_t = now
        events = self.session.idle(self._serial)
        if not self._silent:
            self._silent = True
            events.append(Fault(Status.NO_DATA, f"no valid data for {now - since:.1f} s"))
        return events

    def _reading(self, s: Sample) -> Reading:
        now = self.clock()
        key = (s.object_c, s.ambient_c)
        if key != self._stuck_key:
            self._stuck_key, self._stuck_since, self._stuck_n = key, now, 0
        self._stuck_n += 1
        stuck = self._stuck_n >= self.stuck_min and now - self._stuck_since >= self.stuck_after
        if stuck and not self._stuck:
            self._fault(Status.STUCK, f"same value {s.object_c} °C for {now - self._stuck_since:.0f} s")
        self._stuck = stuck
        body, estimate, flag = self.compensation.body(s.object_c, s.ambient_c)
        if stuck:
            body, flag = None, Flag.STUCK
        r = Reading(object_c=s.object_c, ambient_c=s.ambient_c, body_c=body, flag=flag, t=now,
                    raw=s.raw.hex(), protocol=self.session.protocol, port=self.port,
                    body_estimate_c=estimate)
        with self._cond:
            self._latest = r
            self._n_readings += 1
            self._last_data_t = now
            self._silent = False
            self._backoff = self.backoff_initial
            self._cond.notify_all()
        return r

    def _fault(self, status: Status, detail: str, raw: bytes = b"", count_per_minute: bool = True) -> None:
        now = self.clock()
        with self._cond:
            self._counts[status.value] += 1
            self._last_fault = (now, status, detail)
            if count_per_minute:
                self._faults.append(now)
        log.debug("thermometer %s: %s: %s %s", self.port, status.value, detail, raw.hex())

    # --- what the gate reads ---

    def latest(self, max_age: float | None = None) -> Reading | None:
        with self._cond:
            r = self._latest
        if r is None or (max_age is not None and self.clock() - r.t > max_age):
            return None
        return r

    def wait_reading(self, after: float | None = None, timeout: float | None = None) -> Reading | None:
        """The first reading newer than `after` (monotonic time), waiting up to `timeout`."""
        with self._cond:
            self._cond.wait_for(lambda: self._latest is not None
                                and (after is None or self._latest.t > after), timeout)
            r = self._latest
        return r if r is not None and (after is None or r.t > after) else None

    def status(self) -> ThermometerStatus:
        now = self.clock()
        with self._cond:
            while self._faults and now - self._faults[0] > ERROR_WINDOW_S:
                self._faults.popleft()
            connected = self._serial is not None
            last = self._last_data_t if self._latest is None else self._latest.t
            since = self._last_data_t if self._last_data_t is not None else (
                self._last_idle_t if connected else self._started_t)
            no_data = now - since >= self.silence_after
            if not connected:
                st = self._down_status
            elif self._stuck:
                st = Status.STUCK
            elif no_data:
                st = Status.NO_DATA
            elif (self._last_fault and now - self._last_fault[0] < RECENT_FAULT_S
                  and (self._last_data_t is None or self._last_fault[0] > self._last_data_t)):
                st = self._last_fault[1]
            else:
                st = Status.OK
            return ThermometerStatus(
                status=st, connected=connected, no_data=no_data,
                errors_per_minute=float(len(self._faults)),
                last_good_age_s=None if last is None else round(now - last, 3),
                readings=self._n_readings, reconnects=self._reconnects,
                last_error=self._last_fault[2] if self._last_fault else "",
                counts=dict(self._counts))

    # --- running in a thread ---

    def start(self) -> Thermometer:
        if self._thread is not None:
            raise RuntimeError("already started")
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=f"thermometer {self.port}", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        for _ in self.readings():
            pass

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def __enter__(self) -> Thermometer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
