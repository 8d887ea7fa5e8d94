"""Thermometer: readings per second and query-to-reading latency, per protocol, at 9600 and 115200 baud.

A pseudo-terminal has no baud rate: bytes cross it at memory speed. So the emulator
(`gate sim thermometer --pace BAUD`, a separate process like a real device) holds
each answer for the time its bytes would take on a real 8N1 line (10 bits a byte,
request and answer). Rows "pty, unpaced" show what the software alone costs.
"""
from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from devices.thermometer import AsciiSession, GyMcu90614Session, ModbusSession, Thermometer  # noqa: E402
from devices.thermometer.protocols import Sample, ascii_line  # noqa: E402
from devices.thermometer.protocols import gy_mcu90614 as gy  # noqa: E402

WINDOW_S = 2.0          # how long each readings/s measurement runs
QUERIES = 150           # queries per latency measurement

# (label, protocol, session factory, sim args, bytes on the wire per reading: request + answer)
ASCII_LINE = len(ascii_line.encode(34.5, 20.0))
CASES = [
    ("GY-MCU90614 query", "gy-mcu90614", lambda: GyMcu90614Session(mode="query", interval=0.0),
     ["--no-auto-output"], 3 + gy.FRAME_LEN),
    ("GY-MCU90614 continuous", "gy-mcu90614", lambda: GyMcu90614Session(mode="continuous"),
     ["--no-auto-output"], gy.FRAME_LEN),
    ("Modbus RTU fn 3, object+ambient", "modbus",
     lambda: ModbusSession(register=0x12, ambient_register=0x14, interval=0.0), [], 8 + 5 + 2 * 3),
    ("ASCII line stream", "ascii", lambda: AsciiSession(), [], ASCII_LINE),
]


class Sim:
    def __init__(self, protocol: str, pace: int | None, extra: list[str]):
        args = [sys.executable, "-m", "kiosk.cli", "sim", "thermometer", "--protocol", protocol,
                "--interval", "0", "--object", "34.5,34.6,34.7", *extra]
        if pace:
            args += ["--pace", str(pace)]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                                     cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
        self.path = self.proc.stdout.readline().strip()

    def close(self):
        self.proc.terminate()
        self.proc.wait(10)


def rate(path: str, session, baud: int) -> float:
    therm = Thermometer(path, session, baud=baud)
    n, t0 = 0, None
    for _ in therm.readings():
        if t0 is None:
            t0 = time.perf_counter()   # from the first reading: start-up is not throughput
        n += 1
        if time.perf_counter() - t0 >= WINDOW_S:
            break
    return (n - 1) / (time.perf_counter() - t0)


def latency(path: str, session, baud: int) -> list[float]:
    """Query written -> reading decoded, at the session level (one request in flight)."""
    therm = Thermometer(path, session, baud=baud)
    therm.connect()
    out = []
    try:
        while len(out) < QUERIES:
            t0 = time.perf_counter()
            events = session.step(therm.serial)
            if any(isinstance(e, Sample) for e in events):
                out.append(time.perf_counter() - t0)
    finally:
        therm.close()
    return out


def ms(v: float) -> str:
    return f"{v * 1000:.2f}"


def main() -> None:
    rows = []
    for label, protocol, session, extra, wire_bytes in CASES:
        for baud in (None, 9600, 115200):
            sim = Sim(protocol, baud, extra)
            try:
                r = rate(sim.path, session(), baud or 9600)
                lat = latency(sim.path, session(), baud or 9600) if session().polled else []
            finally:
                sim.close()
            line = wire_bytes * 10 / baud if baud else None
            rows.append((label, f"{baud}" if baud else "pty, unpaced", r,
                         f"{1 / line:.0f}" if line else "-",
                         ms(statistics.median(lat)) if lat else "-",
                         ms(sorted(lat)[int(len(lat) * 0.95)]) if lat else "-",
                         ms(line) if line else "-"))
    print("## Thermometer: readings per second and query-to-reading latency\n")
    print("| protocol, mode | baud | readings/s | line limit /s | latency median ms | latency p95 ms "
          "| line time ms |")
    print("|---|---|---|---|---|---|---|")
    for label, baud, r, limit, med, p95, line in rows:
        print(f"| {label} | {baud} | {r:.0f} | {limit} | {med} | {p95} | {line} |")
    print()
    print("Measured: `Thermometer.readings()` over pyserial on a pty, against `gate sim thermometer` "
          f"in its own process, {WINDOW_S:g} s per readings/s figure (frames streamed back to back, "
          f"queries with no pause); latency = query written to reading decoded, {QUERIES} queries. "
          "A pty has no baud rate, so at 9600/115200 the emulator holds each answer for the time "
          "its bytes take on an 8N1 line (`--pace`); *line time* is that time per reading "
          f"(GY query 3+9 bytes, GY stream 9, Modbus 8+11, ASCII line {ASCII_LINE}) and *line limit* "
          "its inverse. 'pty, unpaced' rows are the software alone. A real GY-MCU90614 streams "
          "about 14 frames/s, far below every limit here.")


if __name__ == "__main__":
    main()
