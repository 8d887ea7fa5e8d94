"""The decision rules, table-driven from docs/rules.md and docs/cases.jsonl, plus properties over random facts."""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kiosk.cases import parse_case
from kiosk.reasons import REASON_TEXT, reason_text
from kiosk.rules import ACTIONS, ADMIT, Answers, Code, Facts, GatePolicy, Subject, Vehicle, decide, fever_state

CASES = [json.loads(line) for line in
         (Path(__file__).resolve().parents[1] / "docs" / "cases.jsonl").read_text().splitlines()]
NOW = dt.datetime(2026, 11, 25, 0, 0, tzinfo=dt.UTC)
GREEN = Code("green", True)


def check(policy: GatePolicy = GatePolicy(), now: dt.datetime = NOW, **facts):
    facts.setdefault("code", GREEN)
    facts.setdefault("readings_c", (36.5,))
    facts.setdefault("subject", Subject(has_pass=True))
    return decide(policy, Facts(**facts), now)


@pytest.mark.parametrize("row", CASES, ids=[r["title"] for r in CASES])
def test_domain_table(row):
    d = decide(*parse_case(row["case"]))
    expect = row["expect"]
    assert d.action == expect["action"], d
    assert set(expect.get("reasons_include", [])) <= set(d.reasons), d
    if "reasons" in expect:
        assert list(d.reasons) == expect["reasons"], d
    if "report" in expect:
        assert d.report == expect["report"], d
    if "register" in expect:
        assert d.register == expect["register"], d


# -- temperature -----------------------------------------------------------------------
@pytest.mark.parametrize("readings, action, reason", [
    ((), "measure", "not_measured"),
    ((36.4,), "admit", "all_checks_passed"),
    ((37.3,), "retest", "fever_retest"),            # at the threshold is a fever
    ((37.29,), "admit", "all_checks_passed"),
    ((37.3, 37.3), "isolate", "fever_confirmed"),
    ((37.6, 36.8), "admit", "all_checks_passed"),    # re-test came back normal
    ((37.6, 36.8, 37.5), "retest", "fever_retest"),  # not two in a row
    ((37.6, 37.7, 36.5), "isolate", "fever_confirmed"),  # a confirmed fever stays confirmed
    ((33.5,), "measure", "implausible_reading"),    # forehead in the cold
    ((90.0,), "measure", "implausible_reading"),
    ((0.0,), "measure", "implausible_reading"),
    ((36.5, 20.0), "measure", "implausible_reading"),  # last reading not a temperature
    ((38.0, 60.0, 38.1), "isolate", "fever_confirmed"),  # implausible ones are skipped
    ((34.0,), "admit", "all_checks_passed"),        # range bounds are plausible
    ((43.0,), "retest", "fever_retest"),
    ((43.1,), "measure", "implausible_reading"),
])
def test_temperature(readings, action, reason):
    d = check(readings_c=readings)
    assert d.action == action and reason in d.reasons, d


def test_implausible_reading_never_counts_as_fever():
    assert fever_state(GatePolicy(), [50.0, 50.0, 45.0]) == "none"
    d = check(readings_c=(50.0, 50.0))
    assert d.action == "measure" and "fever_confirmed" not in d.reasons


def test_fever_threshold_is_configurable():
    assert check(GatePolicy(fever_c=37.5), readings_c=(37.4,)).action == "admit"
    assert check(GatePolicy(fever_c=37.0), readings_c=(37.1,)).action == "retest"


def test_plausible_range_is_configurable():
    assert check(GatePolicy(plausible_min_c=30.0), readings_c=(33.0,)).action == "admit"


# -- codes, answers, precedence -------------------------------------------------------------
def test_invalid_code_colour_is_not_trusted():
    d = check(code=Code("red", False))
    assert d.reasons[0] == "invalid_code" and "red_code" not in d.reasons and d.report == "daily"


def test_every_applicable_reason_is_listed_strongest_first():
    d = check(code=Code("red", True), readings_c=(38.0, 38.2),
              answers=Answers(symptoms=True, case_contact=True))
    assert d.action == "isolate"
    assert d.reasons[0] == "fever_confirmed"
    assert {"red_code", "symptoms", "case_contact"} <= set(d.reasons)
    assert d.report == "immediate" and d.register


def test_precedence_refuse_over_retest_over_measure():
    assert check(code=None, readings_c=(37.5,)).action == "refuse"
    assert check(readings_c=(37.5, 25.0)).action == "retest"


def test_going_out_needs_no_code_and_no_temperature():
    d = check(direction="out", code=None, readings_c=())
    assert d.action == "admit" and d.reasons == ("exit_allowed",)


def test_answers_ignored_going_out():
    assert check(direction="out", answers=Answers(symptoms=True)).action == "admit"


# -- quarantine ------------------------------------------------------------------------------
def test_home_quarantine_cannot_leave_at_any_level():
    for level in ("low", "medium", "high"):
        d = check(GatePolicy(risk_level=level), direction="out",
                  subject=Subject(has_pass=True, quarantine="home_quarantine", approved=True))
        assert d.action == "refuse" and d.report == "immediate"
        assert "home_quarantine_exit" in d.reasons


def test_home_quarantine_found_outside_is_held_apart():
    d = check(subject=Subject(has_pass=True, quarantine="home_quarantine"))
    assert d.action == "isolate" and d.report == "immediate"


def test_quarantine_order_ended_no_longer_applies():
    ended = Subject(has_pass=True, quarantine="home_quarantine",
                    quarantine_until=NOW - dt.timedelta(hours=1))
    assert check(direction="out", subject=ended).action == "admit"
    running = Subject(has_pass=True, quarantine="home_quarantine",
                      quarantine_until=NOW + dt.timedelta(days=3))
    assert check(direction="out", subject=running).action == "refuse"


# -- vehicles, passes, overrides ---------------------------------------------------------------
def test_resident_vehicle_high_risk_one_exit_a_day():
    high = GatePolicy(risk_level="high")
    approved = Subject(has_pass=True, approved=True)
    assert check(high, direction="out", subject=approved,
                 vehicle=Vehicle(resident=True, exits_today=0)).action == "admit"
    d = check(high, direction="out", subject=Subject(has_pass=True),
              vehicle=Vehicle(resident=True, exits_today=1))
    assert d.action == "refuse" and "vehicle_exit_limit" in d.reasons
    assert check(high, direction="out", subject=approved,
                 vehicle=Vehicle(resident=True, exits_today=3)).action == "admit"


def test_pass_only_required_above_low():
    no_pass = Subject(has_pass=False)
    assert check(GatePolicy(risk_level="low"), subject=no_pass).action == "admit"
    assert check(GatePolicy(risk_level="high"), subject=no_pass).reasons == ("no_pass",)


def test_override_admits_and_reports_keeping_the_reasons():
    d = check(code=Code("red", True), override_reason="急救 ambulance crew")
    assert d.action == "admit" and d.overridden_action == "refuse"
    assert d.reasons == ("red_code", "override") and d.report == "immediate"


def test_override_of_an_admit_changes_nothing():
    d = check(override_reason="not needed")
    assert d.action == "admit" and d.overridden_action is None and d.report == "none"


def test_blank_override_is_an_error():
    with pytest.raises(ValueError):
        check(code=None, override_reason="  ")


def test_every_reason_has_words_in_both_languages():
    for code, words in REASON_TEXT.items():
        assert words["zh"] and words["en"], code
    assert reason_text("red_code", "en").startswith("Red code")
    assert reason_text("red_code", "zh").startswith("红码")


# -- properties --------------------------------------------------------------------------------
readings = st.lists(st.one_of(st.floats(30, 45), st.floats(-50, 120)), max_size=4)
facts_strategy = st.builds(
    Facts,
    direction=st.sampled_from(["in", "out"]),
    subject=st.builds(Subject, kind=st.sampled_from(["resident", "visitor", "courier"]),
                      has_pass=st.booleans(),
                      quarantine=st.sampled_from(["none", "home_quarantine", "health_monitoring"]),
                      approved=st.booleans()),
    code=st.one_of(st.none(), st.builds(Code, st.sampled_from(["green", "yellow", "red"]), st.booleans())),
    readings_c=readings.map(tuple),
    answers=st.builds(Answers, st.booleans(), st.booleans(), st.booleans()),
    vehicle=st.one_of(st.none(), st.builds(Vehicle, st.booleans(), st.integers(0, 5))),
    override_reason=st.one_of(st.none(), st.just("emergency")),
)
policies = st.builds(GatePolicy, risk_level=st.sampled_from(["low", "medium", "high"]),
                     fever_c=st.floats(37.0, 38.0))


@settings(max_examples=500, deadline=None)
@given(policies, facts_strategy)
def test_properties(policy, facts):
    d = decide(policy, facts, NOW)
    all_reasons_known = set(REASON_TEXT)
    assert d.action in ACTIONS and d.reasons and set(d.reasons) <= all_reasons_known
    if d.action == ADMIT and not facts.override_reason:
        if facts.direction == "in":
            # Nothing comes in without a valid green code and a normal temperature.
            assert facts.code and facts.code.valid and facts.code.colour == "green"
            assert fever_state(policy, facts.readings_c) == "normal"
            assert facts.readings_c and policy.plausible_min_c <= facts.readings_c[-1] <= policy.plausible_max_c
        # A red code, a confirmed fever, or a quarantine breach is never admitted.
        assert not (facts.code and facts.code.valid and facts.code.colour == "red" and facts.direction == "in")
        assert facts.subject.quarantine != "home_quarantine"
    if d.action != ADMIT:
        assert d.reasons[0] not in ("all_checks_passed", "exit_allowed")
    if facts.override_reason and d.overridden_action:
        assert d.action == ADMIT and d.report == "immediate" and "override" in d.reasons
    if d.report == "immediate" and not d.overridden_action:
        assert d.action != ADMIT or facts.override_reason


@settings(max_examples=200, deadline=None)
@given(policies, facts_strategy)
def test_decide_is_pure(policy, facts):
    assert decide(policy, facts, NOW) == decide(policy, facts, NOW)


def test_policy_from_township_settings():
    p = GatePolicy.from_settings({"risk_level": "medium", "fever_c": 37.5, "visitors_allowed": False})
    assert p == GatePolicy(risk_level="medium", fever_c=37.5, visitors_allowed=False)
    assert GatePolicy.from_settings({}) == GatePolicy()
    # every setting the township can push is honoured or refused, never ignored
    for bad in ({"risk_level": "extreme"}, {"visitors": "essential"}, {"fever_c": "hot"},
                {"visitors_allowed": "no"}, {"fever_c": float("nan")}, {"vehicle_exits_per_day": -1},
                {"unknown_person_low": "courier"}):
        with pytest.raises(ValueError):
            GatePolicy.from_settings(bad)
