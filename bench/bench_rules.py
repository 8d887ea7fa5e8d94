"""Decisions per second: the rules must never be the slow part of a 1.5 s gate check."""
import json
import time
from pathlib import Path

from kiosk.cases import decision_json, parse_case
from kiosk.rules import decide

cases = [parse_case(json.loads(line)["case"])
         for line in (Path(__file__).resolve().parents[1] / "docs" / "cases.jsonl").read_text().splitlines()]


def rate(fn, seconds=2.0):
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for c in cases:
            fn(c)
        n += len(cases)
    return n / (time.perf_counter() - start)


pure = rate(lambda c: decide(*c))
full = rate(lambda c: decision_json(decide(*c)))
print("## Decision rules\n")
print("| what | decisions/s | µs each |\n|---|---:|---:|")
print(f"| `decide()` over the {len(cases)} sample cases | {pure:,.0f} | {1e6 / pure:.1f} |")
print(f"| `decide()` + JSON with messages | {full:,.0f} | {1e6 / full:.1f} |")
print("\nOne core, the sample cases in docs/cases.jsonl cycled for 2 s each.")
