"""The decision rules: a pure function of (policy, facts, now).

No I/O and no clock reads: the caller passes `now`, so every decision can be
replayed and tested from a table. Each rule that applies adds a Finding (a
stable reason code, the action it asks for, how urgently the township must hear,
whether the person must be registered); the decision takes the strongest action
and keeps every reason, so a refusal is never silent and never unexplained.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
from collections.abc import Iterable

# Weakest to strongest: the decision takes the strongest action any rule asks for.
ADMIT, MEASURE, RETEST, REFUSE, ISOLATE = "admit", "measure", "retest", "refuse", "isolate"
ACTIONS = (ADMIT, MEASURE, RETEST, REFUSE, ISOLATE)
REPORTS = ("none", "daily", "immediate")
RISK_LEVELS = ("low", "medium", "high")
SUBJECT_KINDS = ("resident", "visitor", "courier")
QUARANTINE_KINDS = ("none", "home_quarantine", "health_monitoring")
COLOURS = ("green", "yellow", "red")
DIRECTIONS = ("in", "out")


@dataclasses.dataclass(frozen=True)
class GatePolicy:
    """Set by the township for the community (分区分级)."""
    risk_level: str = "low"
    fever_c: float = 37.3
    plausible_min_c: float = 34.0  # a body estimate outside this range is a sensor error
    plausible_max_c: float = 43.0

    @classmethod
    def from_settings(cls, settings: dict) -> GatePolicy:
        """From the policy the township pushed down (Store.policy()); other keys are ignored."""
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in settings.items() if k in known and v is not None}
        if values.get("risk_level", "low") not in RISK_LEVELS:
            raise ValueError(f"unknown risk level {values['risk_level']!r}")
        return cls(**{k: v if k == "risk_level" else float(v) for k, v in values.items()})


@dataclasses.dataclass(frozen=True)
class Subject:
    kind: str = "resident"
    has_pass: bool = False
    quarantine: str = "none"
    # The order's end; None = open-ended. An order that has ended no longer applies.
    quarantine_until: dt.datetime | None = None
    # The community approved this visitor, or this essential exit.
    approved: bool = False


@dataclasses.dataclass(frozen=True)
class Code:
    colour: str | None  # None when the code could not be read as a health code
    valid: bool


@dataclasses.dataclass(frozen=True)
class Answers:
    symptoms: bool = False
    risk_area_travel: bool = False
    case_contact: bool = False


@dataclasses.dataclass(frozen=True)
class Vehicle:
    resident: bool
    exits_today: int = 0


@dataclasses.dataclass(frozen=True)
class Facts:
    """What the gate knows about one person (or vehicle) at this moment."""
    direction: str = "in"
    subject: Subject = Subject()
    code: Code | None = None
    readings_c: tuple[float, ...] = ()  # body-temperature estimates, in the order taken
    answers: Answers = Answers()
    vehicle: Vehicle | None = None
    override_reason: str | None = None  # a guard's override; must not be blank


@dataclasses.dataclass(frozen=True)
class Finding:
    reason: str
    action: str = ADMIT
    report: str = "none"
    register: bool = False


@dataclasses.dataclass(frozen=True)
class Decision:
    action: str
    reasons: tuple[str, ...]
    report: str
    register: bool
    overridden_action: str | None = None  # what the rules said before a guard's override

    @property
    def admitted(self) -> bool:
        return self.action == ADMIT


def decide(policy: GatePolicy, facts: Facts, now: dt.datetime) -> Decision:
    if facts.override_reason is not None and not facts.override_reason.strip():
        raise ValueError("an override needs a reason")
    findings = list(_findings(policy, facts, now))
    if not findings:
        findings.append(Finding("all_checks_passed" if facts.direction == "in" else "exit_allowed"))
    decision = _combine(findings)
    if facts.override_reason and decision.action != ADMIT:
        decision = Decision(ADMIT, decision.reasons + ("override",), "immediate",
                            decision.register, overridden_action=decision.action)
    return decision


def _combine(findings: list[Finding]) -> Decision:
    ordered = sorted(findings, key=lambda f: -ACTIONS.index(f.action))  # stable: rule order kept
    return Decision(
        action=ordered[0].action,
        reasons=tuple(dict.fromkeys(f.reason for f in ordered)),
        report=max((f.report for f in findings), key=REPORTS.index),
        register=any(f.register for f in findings))


def _findings(policy: GatePolicy, facts: Facts, now: dt.datetime) -> Iterable[Finding]:
    yield from _quarantine(facts, now)
    if facts.direction == "in":
        yield from _health_code(facts.code)
        yield from _temperature(policy, facts.readings_c)
        yield from _answers(facts.answers)
        yield from _subject_in(policy, facts.subject)
        if facts.vehicle:
            yield from _vehicle_in(policy, facts.vehicle)
    else:
        yield from _subject_out(policy, facts.subject)
        if facts.vehicle:
            yield from _vehicle_out(policy, facts.vehicle, facts.subject)


def _quarantine(facts: Facts, now: dt.datetime) -> Iterable[Finding]:
    s = facts.subject
    if s.quarantine == "none" or (s.quarantine_until is not None and now >= s.quarantine_until):
        return
    if s.quarantine == "home_quarantine":
        if facts.direction == "out":
            yield Finding("home_quarantine_exit", REFUSE, "immediate")
        else:  # was outside while under home quarantine: hold apart, tell the leader
            yield Finding("home_quarantine_breach", ISOLATE, "immediate", register=True)
    elif facts.direction == "out":  # health monitoring: may leave, every exit on record
        yield Finding("health_monitoring_exit", register=True)


def _health_code(code: Code | None) -> Iterable[Finding]:
    if code is None:
        yield Finding("no_code", REFUSE)
    elif not code.valid:  # forged, expired, a screenshot: its colour means nothing
        yield Finding("invalid_code", REFUSE, "daily")
    elif code.colour == "yellow":
        yield Finding("yellow_code", REFUSE, "daily", register=True)
    elif code.colour == "red":
        yield Finding("red_code", REFUSE, "immediate")


def fever_state(policy: GatePolicy, readings_c: Iterable[float]) -> str:
    """'none' | 'normal' | 'first_fever' | 'confirmed', ignoring implausible readings.

    Two plausible readings in a row at or above the threshold confirm a fever, and a
    confirmed fever stays confirmed: measuring again until a low reading comes up
    does not undo it."""
    plausible = [r for r in readings_c if plausible_reading(policy, r)]
    if not plausible:
        return "none"
    hot = [r >= policy.fever_c for r in plausible]
    if any(a and b for a, b in itertools.pairwise(hot)):
        return "confirmed"
    return "first_fever" if hot[-1] else "normal"


def plausible_reading(policy: GatePolicy, body_c: float) -> bool:
    return policy.plausible_min_c <= body_c <= policy.plausible_max_c


def _temperature(policy: GatePolicy, readings_c: tuple[float, ...]) -> Iterable[Finding]:
    state = fever_state(policy, readings_c)
    if state == "confirmed":
        yield Finding("fever_confirmed", ISOLATE, "immediate", register=True)
    elif state == "first_fever":
        yield Finding("fever_retest", RETEST)
    if readings_c and not plausible_reading(policy, readings_c[-1]):
        yield Finding("implausible_reading", MEASURE)
    elif state == "none":
        yield Finding("not_measured", MEASURE)


def _answers(answers: Answers) -> Iterable[Finding]:
    for reason, said_yes in (("symptoms", answers.symptoms),
                             ("risk_area_travel", answers.risk_area_travel),
                             ("case_contact", answers.case_contact)):
        if said_yes:
            yield Finding(reason, REFUSE, "immediate", register=True)


def _subject_in(policy: GatePolicy, s: Subject) -> Iterable[Finding]:
    level = policy.risk_level
    if s.kind == "visitor":
        if level == "low":
            yield Finding("visitor_registered", register=True)
        elif level == "medium" and s.approved:
            yield Finding("visitor_approved", register=True)
        elif level == "medium":
            yield Finding("visitor_not_approved", REFUSE)
        else:
            yield Finding("visitors_turned_away", REFUSE)
    elif s.kind == "courier":
        if level == "low":
            yield Finding("courier_registered", register=True)
        else:
            yield Finding("courier_dropoff_only", REFUSE)
    elif level in ("medium", "high") and not s.has_pass:
        yield Finding("no_pass", REFUSE)


def _subject_out(policy: GatePolicy, s: Subject) -> Iterable[Finding]:
    if s.kind == "resident" and policy.risk_level == "high":
        if s.approved:
            yield Finding("essential_exit_approved", register=True)
        else:
            yield Finding("essential_exit_only", REFUSE)


def _vehicle_in(policy: GatePolicy, v: Vehicle) -> Iterable[Finding]:
    if v.resident or policy.risk_level == "low":
        yield Finding("vehicle_registered", register=True)
    else:  # supply and emergency vehicles come in through a guard's override
        yield Finding("vehicle_not_admitted", REFUSE)


def _vehicle_out(policy: GatePolicy, v: Vehicle, s: Subject) -> Iterable[Finding]:
    if v.resident and policy.risk_level == "high" and v.exits_today >= 1 and not s.approved:
        yield Finding("vehicle_exit_limit", REFUSE)
    else:
        yield Finding("vehicle_registered", register=True)
