"""Latency of one durable entry write (WAL, synchronous=FULL, one transaction)."""
import statistics
import tempfile
import time
from pathlib import Path

from kiosk.store import Entry, Store

N = 1000


def entry():
    return Entry(gate="east", direction="in", subject_kind="resident", action="admit", report="none",
                 reasons=["all_checks_passed"], masked_name="张*三", person_ref="p1:" + "a" * 32,
                 code_kind="health", code_colour="green", code_result="valid",
                 readings=[{"object_c": 34.2, "ambient_c": 8.5, "body_c": 36.6}],
                 answers={"symptoms": False, "risk_area_travel": False, "case_contact": False})


with tempfile.TemporaryDirectory(dir=Path(__file__).resolve().parent.parent) as tmp:
    with Store.open(Path(tmp) / "bench.db") as store:
        for _ in range(50):  # warm up
            store.record(entry(), device_id="bench")
        times = []
        for _ in range(N):
            t = time.perf_counter()
            store.record(entry(), device_id="bench")
            times.append((time.perf_counter() - t) * 1000)
times.sort()
p50, p99 = statistics.median(times), times[int(len(times) * 0.99)]
print("## Durable entry write\n")
print("| writes | p50 ms | p99 ms | max ms | writes/s |\n|---:|---:|---:|---:|---:|")
print(f"| {N} | {p50:.3f} | {p99:.3f} | {times[-1]:.3f} | {N / (sum(times) / 1000):,.0f} |")
print("\n`Store.record()`: BEGIN IMMEDIATE, next seq, INSERT, COMMIT with fsync (WAL, "
      "synchronous=FULL), on this machine's disk (an SD card on a Pi is slower: measure there).")
