"""The JSON contract of a case for the rules (`gate decide`, the demo, the tests).

A case is one JSON object: `now`, `policy`, `direction`, `subject`, optionally `code`,
`readings_c`, `answers`, `vehicle` and `override` (docs/rules.md). `parse_case` turns it
into the rules' (policy, facts, now) or raises CaseError naming the field at fault.
"""
from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from typing import Any

from kiosk import clock, reasons
from kiosk.rules import (
    COLOURS,
    DIRECTIONS,
    EMERGENCIES,
    QUARANTINE_KINDS,
    RISK_LEVELS,
    SUBJECT_KINDS,
    Answers,
    Code,
    Decision,
    Facts,
    GatePolicy,
    Subject,
    Vehicle,
)


class CaseError(ValueError):
    """A case that does not follow the contract; `field` names the culprit."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field


def _get(obj: dict, key: str, path: str, kind: type | tuple, *, required: bool = False,
         default: Any = None, choices: tuple | None = None) -> Any:
    field = f"{path}{key}"
    if key not in obj or obj[key] is None:
        if required:
            raise CaseError(field, "is required")
        return default
    value = obj[key]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    # JSON true/false are not numbers here, and 1/0 are not booleans.
    if isinstance(value, bool) and bool not in kinds or not isinstance(value, kinds):
        names = " or ".join(k.__name__ for k in kinds)
        raise CaseError(field, f"must be {names}, got {json.dumps(value, ensure_ascii=False)}")
    if choices and value not in choices:
        raise CaseError(field, f"must be one of {', '.join(choices)}, got {value!r}")
    return value


def parse_case(case: Any) -> tuple[GatePolicy, Facts, Any]:
    """The JSON contract of `gate decide` -> (policy, facts, now)."""
    if not isinstance(case, dict):
        raise CaseError("case", "must be a JSON object")
    now_text = _get(case, "now", "", str, required=True)
    try:
        now = clock.parse_iso(now_text)
    except ValueError:
        raise CaseError("now", f"must be an ISO-8601 time, got {now_text!r}") from None

    p = _get(case, "policy", "", dict, required=True)
    _get(p, "risk_level", "policy.", str, required=True, choices=RISK_LEVELS)
    for f in dataclasses.fields(GatePolicy):  # each field named where it is wrong
        kind = bool if isinstance(f.default, bool) else (int, float) if isinstance(f.default, int | float) else str
        _get(p, f.name, "policy.", kind)
    try:
        policy = GatePolicy.from_settings(p)
    except ValueError as exc:
        raise CaseError("policy", str(exc)) from None

    s = _get(case, "subject", "", dict, required=True)
    until = _get(s, "quarantine_until", "subject.", str)
    try:
        until = clock.parse_iso(until) if until else None
    except ValueError:
        raise CaseError("subject.quarantine_until", "must be an ISO-8601 time") from None
    subject = Subject(
        kind=_get(s, "kind", "subject.", str, required=True, choices=SUBJECT_KINDS),
        has_pass=_get(s, "has_pass", "subject.", bool, default=False),
        quarantine=_get(s, "quarantine", "subject.", str, default="none", choices=QUARANTINE_KINDS),
        quarantine_until=until,
        approved=_get(s, "approved", "subject.", bool, default=False))

    c = _get(case, "code", "", dict)
    code = None if c is None else Code(
        colour=_get(c, "colour", "code.", str, required=True, choices=COLOURS),
        valid=_get(c, "valid", "code.", bool, required=True))

    readings = _get(case, "readings_c", "", list, default=[])
    for i, r in enumerate(readings):
        if isinstance(r, bool) or not isinstance(r, (int, float)):
            raise CaseError(f"readings_c[{i}]", f"must be a number, got {json.dumps(r)}")

    a = _get(case, "answers", "", dict, default={})
    answers = Answers(**{k: _get(a, k, "answers.", bool, default=False)
                         for k in ("symptoms", "risk_area_travel", "case_contact", "abroad")})

    v = _get(case, "vehicle", "", dict)
    vehicle = None
    if v is not None:
        exits = _get(v, "exits_today", "vehicle.", int, default=0)
        if exits < 0:
            raise CaseError("vehicle.exits_today", "must be >= 0")
        vehicle = Vehicle(resident=_get(v, "resident", "vehicle.", bool, required=True),
                          exits_today=exits)

    o = _get(case, "override", "", dict)
    override = None
    if o is not None:
        override = _get(o, "reason", "override.", str, required=True)
        if not override.strip():
            raise CaseError("override.reason", "must not be empty: every override needs a reason")

    test_age = _get(case, "test_age_h", "", (int, float))
    if test_age is not None and test_age < 0:
        raise CaseError("test_age_h", "must be >= 0")
    facts = Facts(direction=_get(case, "direction", "", str, required=True, choices=DIRECTIONS),
                  subject=subject, code=code, readings_c=tuple(float(r) for r in readings),
                  answers=answers, vehicle=vehicle, override_reason=override,
                  mask=_get(case, "mask", "", bool),
                  refused_check=_get(case, "refused_check", "", bool, default=False),
                  emergency=_get(case, "emergency", "", str, choices=EMERGENCIES),
                  visiting_quarantined_home=_get(case, "visiting_quarantined_home", "", bool, default=False),
                  test_age_h=None if test_age is None else float(test_age),
                  lists_stale=_get(case, "lists_stale", "", bool, default=False))
    return policy, facts, now


def sample(value: Any) -> tuple[Any, dict]:
    """A line of docs/cases.jsonl, {"title", "case", "expect"}, or a bare case -> (case, what
    to add to its decision: the title, and whether the decision is the one expected)."""
    if not (isinstance(value, dict) and isinstance(value.get("case"), dict) and "now" not in value):
        return value, {}
    extra: dict[str, Any] = {"title": value["title"]} if isinstance(value.get("title"), str) else {}
    if isinstance(value.get("expect"), dict):
        extra["expect"] = value["expect"]
    return value["case"], extra


def as_expected(d: Decision, expect: dict) -> bool:
    """Whether a decision is what a sample case expects: its action, report and register
    flag where given, and at least the reasons in `reasons_include`."""
    return (all(getattr(d, key) == expect[key] for key in ("action", "report", "register") if key in expect)
            and set(expect.get("reasons_include", ())) <= set(d.reasons))


def decision_json(d: Decision, lang: str | None = None) -> dict:
    out = {"action": d.action, "reasons": list(d.reasons), "report": d.report,
           "register": d.register,
           "action_text": reasons.action_text(d.action, lang),
           "messages": [reasons.reason_text(r, lang) for r in d.reasons]}
    if d.overridden_action:
        out["overridden_action"] = d.overridden_action
    return out


def read_cases(text: str) -> Iterator[Any]:
    """JSON values one after another: one per line, or pretty-printed over many.
    Yields CaseError for text that is not JSON, then goes on at the next line."""
    decoder = json.JSONDecoder()
    i, n = 0, len(text)
    while i < n:
        while i < n and text[i].isspace():
            i += 1
        if i >= n:
            return
        try:
            value, i = decoder.raw_decode(text, i)
        except json.JSONDecodeError as exc:
            yield CaseError("case", f"not JSON ({exc.msg} at line {exc.lineno})")
            nl = text.find("\n", i)
            i = n if nl < 0 else nl + 1
            continue
        yield value
