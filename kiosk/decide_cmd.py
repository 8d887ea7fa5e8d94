"""Decide JSON cases read from stdin; print one JSON decision per line.

Input: one JSON object per line, or objects spread over several lines, e.g.
  {"now": "2026-11-25T08:00:00+08:00", "policy": {"risk_level": "low"},
   "direction": "in", "subject": {"kind": "resident", "has_pass": true},
   "code": {"colour": "green", "valid": true}, "readings_c": [36.5]}
Output per case: {"action", "reasons", "report", "register", "messages", ...}.
The sample cases can be fed as they are, `gate decide < docs/cases.jsonl`: a line
{"title", "case", "expect"} is decided as its case, and the output adds the title and
"as_expected" (whether the decision is the one the sample expects).
A case with a missing or wrong field prints {"error", "field"} in its place,
the message goes to stderr, and the exit status is 2. See docs/rules.md.
"""
from __future__ import annotations

import argparse
import json
import sys

from kiosk import reasons
from kiosk.cases import CaseError, as_expected, decision_json, parse_case, read_cases, sample
from kiosk.rules import decide


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--lang", choices=reasons.LANGS, default=None,
                        help="language of the messages (default zh, or $GATE_LANG)")


def run(args: argparse.Namespace) -> int:
    status = 0
    for n, case in enumerate(read_cases(sys.stdin.read()), start=1):
        try:
            if isinstance(case, CaseError):
                raise case
            case, extra = sample(case)
            decision = decide(*parse_case(case))
            if "expect" in extra:  # a sample case: is the decision the one it expects?
                extra["as_expected"] = as_expected(decision, extra.pop("expect"))
            out = {**extra, **decision_json(decision, args.lang)}
        except CaseError as exc:
            status = 2
            print(f"gate decide: case {n}: {exc}", file=sys.stderr)
            out = {"error": str(exc), "field": exc.field}
        print(json.dumps(out, ensure_ascii=False), flush=True)
    return status
