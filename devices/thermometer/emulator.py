"""Emulated thermometers on pseudo-terminals, with injectable faults.

An emulator opens a pty and behaves like the device on it: the GY-MCU90614 answers
queries and streams (from power-on, as its datasheet says, and after `A5 45 EA`); the
Modbus sensor answers register reads; the ASCII module prints lines. Temperatures follow a script (cycled). Faults are
scheduled by frame number (a frame is one answer or one streamed line/frame):

    noise:every=N         random bytes before every Nth frame
    bad-checksum:every=N  every Nth frame with a wrong checksum/CRC (ASCII: a garbled line)
    partial:every=N       every Nth frame cut short
    exception:every=N     Modbus only: every Nth answer is exception 0x04 SERVER_DEVICE_FAILURE
    stuck:at=N            from frame N on, the same value for ever
    silence:at=N,for=S    before frame N, say nothing for S seconds
    disconnect:at=N,for=S before frame N, vanish for S seconds (the pty closes, the link
                          disappears), then reappear on a new pty (the link points there)

`every` and `at` work for each fault; `at` counts from 0. Without either, stuck,
silence and disconnect happen at frame 5, the others every 5th frame; `for` is 1 s. With `--link PATH` the
emulator keeps a symlink to its current pty, as udev keeps /dev/ttyUSB0 for an adapter.
"""
from __future__ import annotations

import fcntl
import os
import random
import select
import tempfile
import termios
import threading
import time
import tty
from dataclasses import dataclass
from pathlib import Path

from .protocols import ascii_line
from .protocols import gy_mcu90614 as gy
from .protocols import modbus_rtu as mb

FAULTS = ("noise", "bad-checksum", "partial", "exception", "stuck", "silence", "disconnect")


class EmulatorError(ValueError):
    """A bad script or fault specification."""


@dataclass(frozen=True)
class FaultSpec:
    name: str
    every: int = 0
    at: int | None = None
    duration: float = 1.0

    @classmethod
    def parse(cls, text: str) -> FaultSpec:
        name, _, params = text.partition(":")
        if name not in FAULTS:
            raise EmulatorError(f"unknown fault {name!r}; known: {', '.join(FAULTS)}")
        kw: dict = {}
        for item in filter(None, params.split(",")):
            key, _, value = item.partition("=")
            try:
                if key == "every":
                    kw["every"] = int(value)
                elif key == "at":
                    kw["at"] = int(value)
                elif key == "for":
                    kw["duration"] = float(value)
                else:
                    raise EmulatorError(f"fault {name}: unknown parameter {key!r} (every, at, for)")
            except ValueError:
                raise EmulatorError(f"fault {name}: {key} needs a number, got {value!r}") from None
        if not kw.get("every") and kw.get("at") is None:
            kw["every"] = 5 if name not in ("stuck", "silence", "disconnect") else 0
            if not kw["every"]:
                kw["at"] = 5
        return cls(name, **kw)

    def hits(self, i: int) -> bool:
        return bool(self.every and (i + 1) % self.every == 0) or self.at == i


def read_script(path: Path) -> list[tuple[float, float | None]]:
    """Temperatures from a file: one `object[,ambient]` per line, # comments."""
    values = []
    for lineno, line in enumerate(Path(path).read_text().splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line or line.lower().startswith("object"):
            continue
        parts = [p.strip() for p in line.replace(";", ",").split(",")]
        try:
            values.append((float(parts[0]), float(parts[1]) if len(parts) > 1 and parts[1] else None))
        except ValueError:
            raise EmulatorError(f"{path}:{lineno}: not a temperature: {line!r}") from None
    if not values:
        raise EmulatorError(f"{path}: no temperatures")
    return values


class PtyLine:
    """The device's end of a pseudo-terminal, optionally behind a stable symlink."""

    def __init__(self, link: str | None = None):
        self.link = link
        self.master: int | None = None
        self.slave: int | None = None
        self.slave_path = ""
        self.open()

    @property
    def path(self) -> str:
        return self.link or self.slave_path

    def open(self) -> None:
        self.master, self.slave = os.openpty()
        os.set_blocking(self.master, False)   # nobody reading: bytes are lost, as on a UART
        tty.setraw(self.slave)   # no echo, no CR/LF translation before the host opens it
        self.slave_path = os.ttyname(self.slave)
        if self.link:
            tmp = f"{self.link}.{os.getpid()}.tmp"
            if os.path.lexists(tmp):
                os.unlink(tmp)
            os.symlink(self.slave_path, tmp)
            os.replace(tmp, self.link)   # atomic: the host never sees a half-made link

    def drain(self, timeout: float = 5.0) -> None:
        """Wait until the host has read what was written (bytes already on the wire)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.slave is None:  # closed (a disconnect fault): nothing left to drain
                return
            try:
                pending = int.from_bytes(
                    fcntl.ioctl(self.slave, termios.FIONREAD, b"\0\0\0\0"), "little")
            except OSError:
                return
            if not pending:
                return
            time.sleep(0.01)

    def close(self, unlink: bool = True) -> None:
        if unlink and self.link and os.path.lexists(self.link):
            os.unlink(self.link)
        for fd in (self.master, self.slave):
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self.master = self.slave = None

    def write(self, data: bytes) -> None:
        if data and self.master is not None:
            try:
                os.write(self.master, data)
            except BlockingIOError:
                pass

    def read(self, timeout: float) -> bytes:
        if self.master is None:
            time.sleep(timeout)
            return b""
        ready, _, _ = select.select([self.master], [], [], max(0.0, timeout))
        if not ready:
            return b""
        try:
            return os.read(self.master, 4096)
        except BlockingIOError:
            return b""
        except OSError:   # the host closed its end: nothing to read until it reopens
            time.sleep(min(timeout, 0.01))
            return b""


class Emulator:
    """Base: script, faults, pacing, the loop. Subclasses speak the protocol."""
    protocol = ""
    streams_at_start = False

    def __init__(self, values: list[tuple[float, float | None]] | None = None, *,
                 faults: list[FaultSpec] | None = None, interval: float = 0.1,
                 link: str | None = None, pace_baud: int | None = None, seed: int = 0,
                 stream: bool | None = None):
        self.values = values or [(35.0, 25.0)]
        self.faults = faults or []
        self.interval = interval
        self.pace_baud = pace_baud
        self.rng = random.Random(seed)
        self.stream_at_power_on = self.streams_at_start if stream is None else stream
        self.streaming = self.stream_at_power_on
        self._done: set[tuple[str, int]] = set()   # one-off faults already played
        self._tmpdir = None
        if link is None and any(f.name == "disconnect" for f in self.faults):
            self._tmpdir = tempfile.mkdtemp(prefix="gate-sim-")
            link = os.path.join(self._tmpdir, "ttyTHERM")
        self.line = PtyLine(link)
        self.frames = 0                  # frames produced so far (the script index)
        self.stuck_value: tuple | None = None
        self.inbuf = bytearray()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.log: list[str] = []         # what happened, for humans and tests

    @property
    def path(self) -> str:
        return self.line.path

    # --- what subclasses provide ---

    def encode(self, obj: float, amb: float | None) -> bytes:
        raise NotImplementedError

    def corrupt(self, frame: bytes) -> bytes:
        """The same frame with a wrong checksum."""
        return frame[:-1] + bytes([frame[-1] ^ 0xFF])

    def handle(self, data: bytes) -> None:
        """Bytes from the host."""

    # --- the frame machine ---

    def _fault(self, name: str, i: int) -> FaultSpec | None:
        return next((f for f in self.faults if f.name == name and f.hits(i)), None)

    def next_frame(self, encode=None) -> bytes | None:
        """The next frame's bytes with faults applied; None when silent or gone."""
        i = self.frames
        for name in ("silence", "disconnect"):
            f = self._fault(name, i)
            if f and (name, i) not in self._done:
                self._done.add((name, i))
                (self._silence if name == "silence" else self._disconnect)(f.duration)
                return None
        self.frames += 1
        stuck = next((f for f in self.faults if f.name == "stuck" and f.at is not None and i >= f.at), None)
        if stuck and self.stuck_value is None:
            self.stuck_value = self.values[i % len(self.values)]
        obj, amb = self.stuck_value if stuck and self.stuck_value else self.values[i % len(self.values)]
        frame = (encode or self.encode)(obj, amb)
        if self._fault("bad-checksum", i):
            frame = self.corrupt(frame)
            self.log.append(f"frame {i}: bad checksum")
        if self._fault("partial", i):
            frame = frame[:max(1, len(frame) // 2)]
            self.log.append(f"frame {i}: partial")
        if self._fault("noise", i):
            frame = bytes(self.rng.randrange(256) for _ in range(self.rng.randint(1, 12))) + frame
            self.log.append(f"frame {i}: noise")
        return frame

    def _silence(self, seconds: float) -> None:
        self.log.append(f"silent for {seconds} s")
        end = time.monotonic() + seconds
        while time.monotonic() < end and not self._stop.is_set():
            self.line.read(min(0.05, end - time.monotonic()))   # swallow queries
        self.inbuf.clear()

    def _disconnect(self, seconds: float) -> None:
        self.log.append(f"disconnected for {seconds} s")
        self.line.drain()
        self.line.close()
        self._stop.wait(seconds)
        self.inbuf.clear()
        self.line.open()
        self.streaming = self.stream_at_power_on   # replugged: the module powers up afresh
        self.log.append(f"reappeared at {self.line.slave_path}")

    def send(self, frame: bytes | None, request_len: int = 0) -> None:
        if frame is None:
            return
        if self.pace_baud:   # what the wire would take: request in, answer out, 10 bits a byte
            time.sleep((request_len + len(frame)) * 10 / self.pace_baud)
        try:
            self.line.write(frame)
        except OSError:
            pass

    def line_time(self, n: int) -> float:
        return n * 10 / self.pace_baud if self.pace_baud else 0.0

    # --- running ---

    def run(self) -> None:
        next_t = time.monotonic()
        while not self._stop.is_set():
            timeout = max(0.0, next_t - time.monotonic()) if self.streaming else 0.05
            data = self.line.read(min(timeout, 0.05))
            if data:
                self.handle(data)
            if self.streaming and time.monotonic() >= next_t:
                frame = self.next_frame()
                if frame is not None:
                    self.send(frame)
                next_t = max(next_t + self.interval, time.monotonic()) if self.interval else time.monotonic()

    def start(self) -> Emulator:
        self._thread = threading.Thread(target=self.run, name=f"emulator {self.protocol}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        self.line.close()
        if self._tmpdir:
            try:
                os.rmdir(self._tmpdir)
            except OSError:
                pass

    def request_stop(self) -> None:
        self._stop.set()

    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class GyMcu90614Emulator(Emulator):
    """Per the module's datasheet: streams ~14 frames/s from power-on unless configured not to
    (A5 52 F7, effective after a restart); queries and streaming both answer type 0x45."""
    protocol = "gy-mcu90614"
    streams_at_start = True

    def encode(self, obj: float, amb: float | None) -> bytes:
        return gy.encode(obj, 25.0 if amb is None else amb)

    def handle(self, data: bytes) -> None:
        self.inbuf += data
        for cmd in gy.parse_commands(self.inbuf):
            if cmd == gy.CMD_QUERY:
                self.send(self.next_frame(), request_len=3)
            elif cmd == gy.CMD_CONTINUOUS:
                self.streaming = True
            elif cmd in (gy.CMD_AUTO_OUTPUT_ON, gy.CMD_AUTO_OUTPUT_OFF):
                self.stream_at_power_on = cmd == gy.CMD_AUTO_OUTPUT_ON   # after the next restart
                self.log.append(f"auto output at power-on: {self.stream_at_power_on}")
            else:
                self.log.append(f"command 0x{cmd:02X} accepted (no effect in the emulator)")


class AsciiEmulator(Emulator):
    protocol = "ascii"
    streams_at_start = True

    def __init__(self, values=None, *, split: bool = False, **kw):
        super().__init__(values, **kw)
        self.split = split   # `TO:` and `TA:` on lines of their own

    def encode(self, obj: float, amb: float | None) -> bytes:
        return (ascii_line.encode_split if self.split else ascii_line.encode)(obj, amb)

    def corrupt(self, frame: bytes) -> bytes:
        # No checksum in these modules: a corrupted line is one whose text is garbled.
        return frame.replace(b".", b"#", 1).replace(b":", b"?", 1)


class ModbusEmulator(Emulator):
    protocol = "modbus"

    def __init__(self, values=None, *, address: int = 1, register: int = 0x12,
                 ambient_register: int = 0x14, scale: float = 0.1, echo: bool = False, **kw):
        super().__init__(values, **kw)
        self.echo = echo   # a half-duplex RS-485 adapter that hears its own transmission
        self.address, self.register, self.ambient_register, self.scale = \
            address, register, ambient_register, scale

    def _registers(self, obj: float, amb: float | None) -> dict[int, int]:
        regs = {self.register: round(obj / self.scale) & 0xFFFF}
        if amb is not None:
            regs[self.ambient_register] = round(amb / self.scale) & 0xFFFF
        return regs

    def corrupt(self, frame: bytes) -> bytes:
        return frame[:-2] + bytes([frame[-2] ^ 0xFF, frame[-1]])

    def handle(self, data: bytes) -> None:
        self.inbuf += data
        while (req := mb.parse_request(self.inbuf)) is not None:
            address, function, start, count, raw = req
            if self.echo:
                self.line.write(raw)
            if address != self.address:
                continue   # another device on the bus
            if function not in mb.FUNCTIONS:
                self.send(mb.exception_response(address, function, 0x01), len(raw))
                continue
            if not 1 <= count <= 125 or start + count > 0x10000:
                self.send(mb.exception_response(address, function, 0x03), len(raw))
                continue
            i = self.frames
            if self._fault("exception", i):
                self.frames += 1
                self.log.append(f"frame {i}: exception")
                self.send(mb.exception_response(address, function, 0x04), len(raw))
                continue

            def encode(obj, amb, address=address, function=function, start=start, count=count):
                regs = self._registers(obj, amb)
                return mb.registers_response(address, function,
                                             [regs.get(r, 0) for r in range(start, start + count)])
            self.send(self.next_frame(encode), len(raw))


EMULATORS: dict[str, type[Emulator]] = {
    "gy-mcu90614": GyMcu90614Emulator, "modbus": ModbusEmulator, "ascii": AsciiEmulator,
}
