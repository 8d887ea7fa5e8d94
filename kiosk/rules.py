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
import math
from collections.abc import Iterable
from typing import Any

# Weakest to strongest: the decision takes the strongest action any rule asks for.
# hold: registered and handed over (an arrival from a risk area or abroad, a case contact);
# isolate: to the holding spot at once (a confirmed fever, a quarantine breach).
ADMIT, MEASURE, RETEST, REFUSE, HOLD, ISOLATE = "admit", "measure", "retest", "refuse", "hold", "isolate"
ACTIONS = (ADMIT, MEASURE, RETEST, REFUSE, HOLD, ISOLATE)
REPORTS = ("none", "daily", "immediate")
RISK_LEVELS = ("low", "medium", "high")
# worker: registered for back-to-work (复工复产)
SUBJECT_KINDS = ("resident", "visitor", "courier", "worker")
QUARANTINE_KINDS = ("none", "home_quarantine", "health_monitoring")
COLOURS = ("green", "yellow", "red")
DIRECTIONS = ("in", "out")
# Emergencies a guard lets out at any level, recorded and reported (seeds: 急危重症、孕产、透析…)
EMERGENCIES = ("fever_clinic", "acute_illness", "pregnancy", "dialysis", "other")


@dataclasses.dataclass(frozen=True)
class GatePolicy:
    """Set by the township for the community (分区分级). Every key the township can push
    is a field here: an unknown key is refused, never silently ignored."""
    risk_level: str = "low"
    fever_c: float = 37.3
    plausible_min_c: float = 34.0  # a body estimate outside this range is a sensor error
    plausible_max_c: float = 43.0
    # The township may tighten: False turns visitors away at every level.
    visitors_allowed: bool = True
    # Resident vehicle exits a day at medium and high (每天外出不超过一次).
    vehicle_exits_per_day: int = 1
    # A nucleic-acid test no older than this to come in (hours); 0: not asked for.
    test_max_age_h: float = 0.0
    # Lists older than this make every decision say so (hours).
    lists_max_age_h: float = 48.0
    # A fresh green code of someone on no list: resident or visitor, per level.
    unknown_person_low: str = "resident"
    unknown_person_medium: str = "visitor"
    unknown_person_high: str = "visitor"

    @classmethod
    def from_settings(cls, settings: dict) -> GatePolicy:
        """From the policy the township pushed down (Store.policy()). Raises ValueError
        naming the key for an unknown key or a value of the wrong kind."""
        fields = {f.name: f for f in dataclasses.fields(cls)}
        values: dict[str, Any] = {}
        for key, value in settings.items():
            if key not in fields:
                raise ValueError(f"unknown policy setting {key!r}; known: {', '.join(fields)}")
            if value is None:
                continue
            default = fields[key].default
            if isinstance(default, bool):
                if not isinstance(value, bool):
                    raise ValueError(f"policy setting {key} must be true or false")
            elif isinstance(default, int | float):
                if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                    raise ValueError(f"policy setting {key} must be a number")
                value = type(default)(value)
                if value < 0:
                    raise ValueError(f"policy setting {key} must not be negative")
            elif not isinstance(value, str):
                raise ValueError(f"policy setting {key} must be text")
            values[key] = value
        if values.get("risk_level", "low") not in RISK_LEVELS:
            raise ValueError(f"unknown risk level {values['risk_level']!r}")
        for level in RISK_LEVELS:
            kind = values.get(f"unknown_person_{level}", "resident")
            if kind not in ("resident", "visitor"):
                raise ValueError(f"unknown_person_{level} must be resident or visitor")
        return cls(**values)

    def unknown_person(self) -> str:
        return str(getattr(self, f"unknown_person_{self.risk_level}"))


@dataclasses.dataclass(frozen=True)
class Subject:
    kind: str = "resident"
    has_pass: bool = False
    quarantine: str = "none"
    # The order's end; None = open-ended. An order that has ended no longer applies.
    quarantine_until: dt.datetime | None = None
    # The community approved this visitor, worker or essential exit.
    approved: bool = False


@dataclasses.dataclass(frozen=True)
class Code:
    colour: str | None  # None when the code could not be read as a health code
    valid: bool


@dataclasses.dataclass(frozen=True)
class Answers:
    symptoms: bool = False
    risk_area_travel: bool = False  # lived in or passed through a medium/high-risk area in 14 days
    case_contact: bool = False
    abroad: bool = False  # arrived from abroad (境外) within the look-back


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
    mask: bool | None = None  # the guard confirmed a mask (True), saw none (False), or did not say
    refused_check: bool = False  # the person would not be measured or questioned
    emergency: str | None = None  # going out for one of EMERGENCIES
    visiting_quarantined_home: bool = False  # a visitor to a household under home quarantine
    test_age_h: float | None = None  # the last nucleic-acid test, hours ago (None: unknown)
    lists_stale: bool = False  # the township's lists are older than the policy allows


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
    if facts.emergency is not None and facts.emergency not in EMERGENCIES:
        raise ValueError(f"emergency must be one of {', '.join(EMERGENCIES)}")
    findings = list(_findings(policy, facts, now))
    if not any(f.action != ADMIT or f.reason not in NOTES for f in findings):
        findings.insert(0, Finding("all_checks_passed" if facts.direction == "in" else "exit_allowed"))
    decision = _combine(findings)
    if facts.override_reason and decision.action != ADMIT:
        decision = Decision(ADMIT, decision.reasons + ("override",), "immediate",
                            decision.register, overridden_action=decision.action)
    return decision


# Findings that only annotate an admit (they never stand alone as its reason).
NOTES = ("lists_stale",)


def _combine(findings: list[Finding]) -> Decision:
    ordered = sorted(findings, key=lambda f: -ACTIONS.index(f.action))  # stable: rule order kept
    action = ordered[0].action
    # A refusal names what refuses, not also the checks that passed or were not reached.
    floor = min(ACTIONS.index(action), ACTIONS.index(REFUSE)) if action != ADMIT else 0
    kept = [f for f in ordered if ACTIONS.index(f.action) >= floor]
    return Decision(
        action=action,
        reasons=tuple(dict.fromkeys(f.reason for f in kept)),
        report=max((f.report for f in findings), key=REPORTS.index),
        register=any(f.register for f in findings))


def _findings(policy: GatePolicy, facts: Facts, now: dt.datetime) -> Iterable[Finding]:
    if facts.direction == "out" and facts.emergency:
        # 急危重症: the guard lets them out whatever else applies; recorded and reported
        yield Finding("emergency_exit", ADMIT, "immediate", register=True)
        return
    yield from _quarantine(facts, now)
    if facts.refused_check:
        yield Finding("check_refused", REFUSE, "immediate", register=True)
    if facts.direction == "in":
        yield from _health_code(facts.code)
        yield from _temperature(policy, facts.readings_c)
        yield from _answers(facts.answers)
        yield from _test(policy, facts.test_age_h)
        if facts.mask is False:
            yield Finding("no_mask", REFUSE)
        if facts.visiting_quarantined_home:
            yield Finding("visited_home_quarantined", REFUSE, "daily")
        yield from _subject_in(policy, facts.subject)
        if facts.vehicle:
            yield from _vehicle_in(policy, facts.vehicle)
    else:
        yield from _subject_out(policy, facts.subject)
        if facts.vehicle:
            yield from _vehicle_out(policy, facts.vehicle, facts.subject)
    if facts.lists_stale:
        yield Finding("lists_stale", ADMIT, "daily")


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
    if answers.symptoms:
        yield Finding("symptoms", REFUSE, "immediate", register=True)
    # Not let in as a normal resident, not sent away either: held, registered, handed over.
    for reason, said_yes in (("risk_area_travel", answers.risk_area_travel),
                             ("arrival_from_abroad", answers.abroad),
                             ("case_contact", answers.case_contact)):
        if said_yes:
            yield Finding(reason, HOLD, "immediate", register=True)


def _test(policy: GatePolicy, age_h: float | None) -> Iterable[Finding]:
    if policy.test_max_age_h and (age_h is None or age_h > policy.test_max_age_h):
        yield Finding("no_recent_test", REFUSE)


def _subject_in(policy: GatePolicy, s: Subject) -> Iterable[Finding]:
    level = policy.risk_level
    if s.kind == "visitor":
        if not policy.visitors_allowed:
            yield Finding("visitors_not_allowed", REFUSE)
        elif level == "low":
            yield Finding("visitor_registered", register=True)
        elif level == "medium" and s.approved:  # an essential visit (care, medical)
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
    elif s.kind == "worker":
        yield from _worker(level, s)
    elif level in ("medium", "high") and not s.has_pass:
        yield Finding("no_pass", REFUSE)


def _worker(level: str, s: Subject) -> Iterable[Finding]:
    """复工复产: registered back-to-work people pass at low and medium (with the usual
    checks), and at high only when approved."""
    if level != "high":
        yield Finding("worker_registered", register=True)
    elif s.approved:
        yield Finding("worker_approved", register=True)
    else:
        yield Finding("worker_not_approved", REFUSE)


def _subject_out(policy: GatePolicy, s: Subject) -> Iterable[Finding]:
    if s.kind == "worker":
        yield from _worker(policy.risk_level, s)
    elif s.kind == "resident" and policy.risk_level == "high":
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
    # closed management starts at medium: resident vehicles out at most N times a day
    if (v.resident and policy.risk_level in ("medium", "high")
            and v.exits_today >= policy.vehicle_exits_per_day and not s.approved):
        yield Finding("vehicle_exit_limit", REFUSE)
    else:
        yield Finding("vehicle_registered", register=True)
