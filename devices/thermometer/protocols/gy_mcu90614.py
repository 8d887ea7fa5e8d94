"""GY-MCU90614: an MLX90614 behind a small MCU, on a UART (9600 8N1 default).

Host -> module: `A5 cmd sum`, sum = (0xA5 + cmd) & 0xFF.
  A5 45 EA  continuous output          A5 15 BA  one query
  A5 AE 53 / A5 AF 54   baud 9600 / 115200       A5 51 F6 / A5 52 F7  auto output at power-on / not
  (configuration takes effect after a restart; the module streams ~14 frames/s by default)
Module -> host, 9 bytes: `5A 5A 45 04 TOh TOl TAh TAl SUM`
  TO object, TA ambient: big-endian signed 16-bit, hundredths of °C;
  SUM = low byte of the sum of bytes 0..7.
"""
from __future__ import annotations

from ..reading import Status
from . import Event, Fault, Sample

HEADER = b"\x5a\x5a"
TYPE_TEMPERATURE = 0x45
DATA_LENGTH = 0x04
FRAME_LEN = 9
CMD_CONTINUOUS = 0x45
CMD_QUERY = 0x15
CMD_AUTO_OUTPUT_ON = 0x51
CMD_AUTO_OUTPUT_OFF = 0x52


def command(cmd: int) -> bytes:
    return bytes([0xA5, cmd, (0xA5 + cmd) & 0xFF])


CONTINUOUS = command(CMD_CONTINUOUS)   # A5 45 EA
QUERY = command(CMD_QUERY)             # A5 15 BA


def checksum(data: bytes) -> int:
    return sum(data) & 0xFF


def encode(object_c: float, ambient_c: float) -> bytes:
    """A module frame for these temperatures (the emulator's side)."""
    body = HEADER + bytes([TYPE_TEMPERATURE, DATA_LENGTH]) \
        + _i16(round(object_c * 100)) + _i16(round(ambient_c * 100))
    return body + bytes([checksum(body)])


def _i16(v: int) -> bytes:
    return max(-32768, min(32767, v)).to_bytes(2, "big", signed=True)


def decode(frame: bytes) -> Sample | None:
    """The sample in exactly one frame, or None when it is not a valid frame."""
    if (len(frame) != FRAME_LEN or frame[:2] != HEADER or frame[2] != TYPE_TEMPERATURE
            or frame[3] != DATA_LENGTH or checksum(frame[:8]) != frame[8]):
        return None
    obj = int.from_bytes(frame[4:6], "big", signed=True) / 100
    amb = int.from_bytes(frame[6:8], "big", signed=True) / 100
    return Sample(obj, amb, bytes(frame))


class FrameParser:
    """Feed any bytes, get samples and faults; resynchronises on `5A 5A`."""

    def __init__(self) -> None:
        self.buf = bytearray()

    def feed(self, data: bytes) -> list[Event]:
        self.buf += data
        out: list[Event] = []
        while True:
            start = self.buf.find(HEADER)
            if start < 0:
                # keep a trailing 5A: it may be the first half of the next header
                keep = 1 if self.buf.endswith(HEADER[:1]) else 0
                self._drop(len(self.buf) - keep, out)
                break
            if start:
                self._drop(start, out)
            if len(self.buf) < 4:
                break
            if self.buf[2] != TYPE_TEMPERATURE or self.buf[3] != DATA_LENGTH:
                # not a temperature frame here: skip to the next header
                nxt = self.buf.find(HEADER, 1)
                if nxt < 0:
                    nxt = len(self.buf) - (1 if self.buf.endswith(HEADER[:1]) else 0)
                if self.buf[2] == TYPE_TEMPERATURE:
                    out.append(Fault(Status.PARTIAL_FRAME, f"frame cut after {nxt} bytes",
                                     bytes(self.buf[:nxt])))
                    del self.buf[:nxt]
                else:
                    self._drop(nxt, out)
                continue
            if len(self.buf) < FRAME_LEN:
                break
            frame = bytes(self.buf[:FRAME_LEN])
            sample = decode(frame)
            if sample is not None:
                out.append(sample)
                del self.buf[:FRAME_LEN]
                continue
            inner = frame.find(HEADER, 2)
            if inner > 0:   # a new header inside: the frame before it was cut short
                out.append(Fault(Status.PARTIAL_FRAME, f"frame cut after {inner} bytes",
                                 frame[:inner]))
                del self.buf[:inner]
            else:
                out.append(Fault(Status.CHECKSUM_ERROR,
                                 f"checksum {frame[8]:02X}, expected {checksum(frame[:8]):02X}",
                                 frame))
                del self.buf[:2]
        return out

    def flush(self) -> list[Event]:
        """The line went quiet: whatever is buffered will not become a frame."""
        if not self.buf:
            return []
        raw = bytes(self.buf)
        self.buf.clear()
        if raw.startswith(HEADER):
            return [Fault(Status.PARTIAL_FRAME, f"frame cut after {len(raw)} bytes", raw)]
        return [Fault(Status.GARBAGE, f"{len(raw)} stray bytes", raw)]

    def _drop(self, n: int, out: list[Event]) -> None:
        if n <= 0:
            return
        raw = bytes(self.buf[:n])
        del self.buf[:n]
        prev = out[-1] if out else None
        if isinstance(prev, Fault) and prev.status is Status.GARBAGE:
            out.pop()   # one fault per run of stray bytes
            n += int(prev.detail.split()[0])
            raw = prev.raw + raw
        out.append(Fault(Status.GARBAGE, f"{n} stray bytes", raw[:64]))


def parse_commands(buf: bytearray) -> list[int]:
    """Host commands in `buf` (the emulator's side); consumes what it recognises."""
    cmds: list[int] = []
    while True:
        i = buf.find(b"\xa5")
        if i < 0:
            buf.clear()
            return cmds
        del buf[:i]
        if len(buf) < 3:
            return cmds
        if (0xA5 + buf[1]) & 0xFF == buf[2]:
            cmds.append(buf[1])
            del buf[:3]
        else:
            del buf[:1]
