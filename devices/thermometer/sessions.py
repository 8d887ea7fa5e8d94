"""How the host talks to each kind of device over an open port: query, stream, poll.

A session turns one `step` of I/O into protocol events; the parsing itself is in
`protocols`. Serial errors propagate (the reading loop reconnects); named protocol
failures come back as Faults.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import serial

from .protocols import Event, Fault, Sample, ascii_line
from .protocols import gy_mcu90614 as gy
from .protocols import modbus_rtu as mb
from .reading import Status

READ_SLICE = 0.05   # seconds a blocking read waits, so stop() is noticed quickly


def _read_some(port: serial.Serial) -> bytes:
    return port.read(max(1, port.in_waiting))


class Session:
    protocol = ""
    polled = False        # True: the host asks, and paces the asking with `interval`
    interval = 0.0

    def start(self, port: serial.Serial) -> None:
        """Just after the port opened."""

    def step(self, port: serial.Serial) -> list[Event]:
        raise NotImplementedError

    def idle(self, port: serial.Serial) -> list[Event]:
        """The line has been silent for a while."""
        return []


@dataclass
class GyMcu90614Session(Session):
    mode: str = "query"          # "query" or "continuous"
    interval: float = 0.1        # between queries
    response_timeout: float = 0.5
    parser: gy.FrameParser = field(default_factory=gy.FrameParser)
    protocol = "gy-mcu90614"

    def __post_init__(self) -> None:
        if self.mode not in ("query", "continuous"):
            raise ValueError(f"mode must be query or continuous, not {self.mode!r}")
        self.polled = self.mode == "query"

    def start(self, port: serial.Serial) -> None:
        self.parser = gy.FrameParser()
        port.reset_input_buffer()
        if self.mode == "continuous":
            port.write(gy.CONTINUOUS)

    def step(self, port: serial.Serial) -> list[Event]:
        if self.mode == "continuous":
            return self.parser.feed(_read_some(port))
        port.write(gy.QUERY)
        events: list[Event] = []
        deadline = time.monotonic() + self.response_timeout
        while time.monotonic() < deadline:
            events += self.parser.feed(_read_some(port))
            if any(isinstance(e, Sample) for e in events):
                return events
        return events + (self.parser.flush() or [Fault(Status.TIMEOUT, "no answer to query")])

    def idle(self, port: serial.Serial) -> list[Event]:
        events = self.parser.flush()
        if self.mode == "continuous":   # the module may have restarted: ask again
            port.write(gy.CONTINUOUS)
        return events


@dataclass
class ModbusSession(Session):
    address: int = 1
    function: int = mb.READ_HOLDING
    register: int = 0x12
    ambient_register: int | None = None
    scale: float = 0.1
    signed: bool = True
    interval: float = 0.1
    response_timeout: float = 0.5
    protocol = "modbus"
    polled = True

    def __post_init__(self) -> None:
        if self.function not in mb.FUNCTIONS:
            raise ValueError(f"function must be 0x03 or 0x04, not 0x{self.function:02X}")
        if not 1 <= self.address <= 247:
            raise ValueError(f"address must be 1..247, not {self.address}")
        regs = [self.register] + ([self.ambient_register] if self.ambient_register is not None else [])
        self.start_register = min(regs)
        self.count = max(regs) - self.start_register + 1
        if self.count > 16:
            raise ValueError("object and ambient registers must be within 16 of each other")

    def transact(self, port: serial.Serial) -> mb.Registers:
        """One read; raises ModbusExceptionResponse or ModbusTimeout (named errors)."""
        request = mb.read_request(self.address, self.function, self.start_register, self.count)
        port.reset_input_buffer()
        port.write(request)
        self.parser = mb.ResponseParser(self.address, self.function, self.count, request)
        deadline = time.monotonic() + self.response_timeout
        while time.monotonic() < deadline:
            got = self.parser.feed(_read_some(port))
            if isinstance(got, mb.ExceptionFrame):
                raise mb.ModbusExceptionResponse(self.address, self.function, got.code)
            if got is not None:
                return got
        raise mb.ModbusTimeout(f"no complete answer from device {self.address} "
                               f"in {self.response_timeout:.2f} s")

    def step(self, port: serial.Serial) -> list[Event]:
        try:
            regs = self.transact(port)
        except mb.ModbusTimeout as e:
            left = self.parser.leftover()
            return [*self.parser.faults, left or Fault(Status.TIMEOUT, str(e))]
        except mb.ModbusExceptionResponse as e:
            return [*self.parser.faults, Fault(Status.DEVICE_EXCEPTION, str(e))]
        obj = mb.register_value(regs.values[self.register - self.start_register], self.scale, self.signed)
        amb = (None if self.ambient_register is None else
               mb.register_value(regs.values[self.ambient_register - self.start_register],
                                 self.scale, self.signed))
        return self.parser.faults + [Sample(obj, amb, regs.raw)]


@dataclass
class AsciiSession(Session):
    pattern: str = ascii_line.DEFAULT_PATTERN
    ambient_pattern: str | None = ascii_line.DEFAULT_AMBIENT_PATTERN
    protocol = "ascii"

    def __post_init__(self) -> None:
        self.parser = ascii_line.LineParser(self.pattern, self.ambient_pattern)

    def start(self, port: serial.Serial) -> None:
        self.parser = ascii_line.LineParser(self.pattern, self.ambient_pattern)

    def step(self, port: serial.Serial) -> list[Event]:
        return self.parser.feed(_read_some(port))

    def idle(self, port: serial.Serial) -> list[Event]:
        return self.parser.flush()
