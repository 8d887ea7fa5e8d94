"""Modbus RTU framing for infrared sensors: read registers (0x03 / 0x04), CRC-16/MODBUS.

Request:   addr fn startH startL countH countL crcL crcH
Response:  addr fn bytecount data... crcL crcH
Exception: addr fn|0x80 code crcL crcH
"""
from __future__ import annotations

from dataclasses import dataclass

from ..reading import Status
from . import Fault

READ_HOLDING = 0x03
READ_INPUT = 0x04
FUNCTIONS = (READ_HOLDING, READ_INPUT)

EXCEPTION_NAMES = {
    0x01: "ILLEGAL_FUNCTION", 0x02: "ILLEGAL_DATA_ADDRESS", 0x03: "ILLEGAL_DATA_VALUE",
    0x04: "SERVER_DEVICE_FAILURE", 0x05: "ACKNOWLEDGE", 0x06: "SERVER_DEVICE_BUSY",
    0x08: "MEMORY_PARITY_ERROR", 0x0A: "GATEWAY_PATH_UNAVAILABLE",
    0x0B: "GATEWAY_TARGET_DEVICE_FAILED_TO_RESPOND",
}


class ModbusError(Exception):
    """A named Modbus failure; `status` says which kind."""
    status = Status.GARBAGE


class ModbusExceptionResponse(ModbusError):
    status = Status.DEVICE_EXCEPTION

    def __init__(self, address: int, function: int, code: int):
        self.address, self.function, self.code = address, function, code
        self.name = EXCEPTION_NAMES.get(code, f"EXCEPTION_{code:02X}")
        super().__init__(f"device {address} answered function 0x{function:02X} "
                         f"with exception 0x{code:02X} {self.name}")


class ModbusTimeout(ModbusError):
    status = Status.TIMEOUT


def crc16(data: bytes) -> int:
    """CRC-16/MODBUS: poly 0xA001 (reflected 0x8005), init 0xFFFF."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def with_crc(pdu: bytes) -> bytes:
    return pdu + crc16(pdu).to_bytes(2, "little")


def crc_ok(frame: bytes) -> bool:
    return len(frame) >= 4 and crc16(frame[:-2]).to_bytes(2, "little") == frame[-2:]


def read_request(address: int, function: int, start: int, count: int) -> bytes:
    return with_crc(bytes([address, function]) + start.to_bytes(2, "big") + count.to_bytes(2, "big"))


@dataclass(frozen=True)
class Registers:
    values: list[int]
    raw: bytes


@dataclass(frozen=True)
class ExceptionFrame:
    code: int
    raw: bytes


class ResponseParser:
    """Collects the answer to one read request from whatever arrives.

    `feed` returns Registers, ExceptionFrame, or None while incomplete; faults (garbage
    before the answer, bad CRC) go to `faults`. Resynchronises by sliding one byte.
    """

    def __init__(self, address: int, function: int, count: int, request: bytes = b""):
        self.address, self.function, self.count = address, function, count
        self.buf = bytearray()
        self.faults: list[Fault] = []
        # Half-duplex RS-485 adapters may echo our own request before the answer.
        self.echo = request

    def feed(self, data: bytes) -> Registers | ExceptionFrame | None:
        self.buf += data
        if self.echo:
            if len(self.buf) < len(self.echo) and self.echo.startswith(bytes(self.buf)):
                return None
            if self.buf.startswith(self.echo):
                del self.buf[:len(self.echo)]
            self.echo = b""
        while self.buf:
            if self.buf[0] != self.address:
                self._skip()
                continue
            if len(self.buf) < 2:
                return None
            fn = self.buf[1]
            if fn == self.function | 0x80:
                size = 5
            elif fn == self.function:
                if len(self.buf) < 3:
                    return None
                if self.buf[2] != 2 * self.count:
                    self._skip()
                    continue
                size = 5 + 2 * self.count
            else:
                self._skip()
                continue
            if len(self.buf) < size:
                return None
            frame = bytes(self.buf[:size])
            if not crc_ok(frame):
                self.faults.append(Fault(Status.CHECKSUM_ERROR, "CRC mismatch", frame))
                del self.buf[:1]
                continue
            del self.buf[:size]
            if size == 5:
                return ExceptionFrame(frame[2], frame)
            data_bytes = frame[3:-2]
            return Registers([int.from_bytes(data_bytes[i:i + 2], "big")
                              for i in range(0, len(data_bytes), 2)], frame)
        return None

    def leftover(self) -> Fault | None:
        """At the timeout: what was buffered, named."""
        if not self.buf:
            return None
        raw = bytes(self.buf)
        self.buf.clear()
        return Fault(Status.PARTIAL_FRAME, f"answer cut short after {len(raw)} bytes", raw)

    def _skip(self) -> None:
        # Coalesce consecutive stray bytes into one fault.
        if self.faults and self.faults[-1].status is Status.GARBAGE and self._skipping:
            last = self.faults[-1]
            self.faults[-1] = Fault(Status.GARBAGE, f"{len(last.raw) + 1} stray bytes",
                                    last.raw + self.buf[:1])
        else:
            self.faults.append(Fault(Status.GARBAGE, "1 stray bytes", bytes(self.buf[:1])))
        self._skipping = True
        del self.buf[:1]

    _skipping = False


def register_value(value: int, scale: float, signed: bool) -> float:
    if signed and value >= 0x8000:
        value -= 0x10000
    return round(value * scale, 4)


# --- the device's side (emulator) ---

def parse_request(buf: bytearray) -> tuple[int, int, int, int, bytes] | None:
    """One 8-byte read request from the front of `buf` (consumed), else None.

    Returns (address, function, start, count, raw). Bytes that cannot start a valid
    request are dropped one by one.
    """
    while len(buf) >= 8:
        frame = bytes(buf[:8])
        if crc_ok(frame):
            del buf[:8]
            return (frame[0], frame[1], int.from_bytes(frame[2:4], "big"),
                    int.from_bytes(frame[4:6], "big"), frame)
        del buf[:1]
    return None


def registers_response(address: int, function: int, values: list[int]) -> bytes:
    data = b"".join((v & 0xFFFF).to_bytes(2, "big") for v in values)
    return with_crc(bytes([address, function, len(data)]) + data)


def exception_response(address: int, function: int, code: int) -> bytes:
    return with_crc(bytes([address, function | 0x80, code]))
