"""Run the gate on simulated people: the sample cases in docs/cases.jsonl go through
the decision rules and are written to a demo store, as the gate would log them.

The whole simulated gate (camera, thermometer, console) joins this as those parts land.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from kiosk import reasons
from kiosk.decide_cmd import parse_case
from kiosk.rules import decide
from kiosk.store import Entry, Store

CASES = Path(__file__).resolve().parents[1] / "docs" / "cases.jsonl"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cases", type=Path, default=CASES, help="JSON lines of sample cases")
    parser.add_argument("--db", type=Path, help="store to log into (default: a temporary file)")
    parser.add_argument("--lang", choices=reasons.LANGS, default=None, help="zh (default) or en")


def run(args: argparse.Namespace) -> int:
    rows = [json.loads(line) for line in args.cases.read_text().splitlines() if line.strip()]
    with tempfile.TemporaryDirectory() as tmp:
        db = args.db or Path(tmp) / "demo.db"
        with Store.open(db) as store:
            for row in rows:
                policy, facts, now = parse_case(row["case"])
                d = decide(policy, facts, now)
                entry = store.record(Entry(
                    gate="demo", direction=facts.direction, subject_kind=facts.subject.kind,
                    action=d.action, report=d.report, reasons=list(d.reasons),
                    readings=[{"body_c": r} for r in facts.readings_c],
                    code_colour=facts.code.colour if facts.code else None,
                    override_reason=facts.override_reason), device_id="demo-gate-1", now=now)
                sep = "; " if (args.lang or reasons.default_lang()) == "en" else "；"
                words = sep.join(reasons.reason_text(r, args.lang) for r in d.reasons)
                print(f"#{entry.seq:<3} [{policy.risk_level:>6}] {row['title']}\n"
                      f"     -> {reasons.action_text(d.action, args.lang)}: {words}"
                      + (f"  ({reasons.text(reasons.REPORT_TEXT, d.report, args.lang)})"
                         if d.report != "none" else ""))
            stats = store.stats()
        print(f"\n{stats['entries']} entries logged, {stats['unsynced']} waiting to sync.",
              file=sys.stderr)
    return 0
