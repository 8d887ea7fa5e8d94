"""`gate decide`: the JSON contract others script against."""
from __future__ import annotations

import json

import pytest

BASE = {"now": "2026-11-25T08:00:00+08:00", "policy": {"risk_level": "low"}, "direction": "in",
        "subject": {"kind": "resident", "has_pass": True, "quarantine": "none", "approved": False},
        "code": {"colour": "green", "valid": True}, "readings_c": [36.6],
        "answers": {"symptoms": False, "risk_area_travel": False, "case_contact": False},
        "vehicle": None, "override": None}


def with_(**changes):
    case = json.loads(json.dumps(BASE))
    case.update(changes)
    return case


def test_one_decision_per_line(gate):
    cases = [BASE, with_(code={"colour": "red", "valid": True}), with_(readings_c=[37.9]),
             with_(readings_c=[38.1, 38.0]), with_(readings_c=[])]
    out = gate("decide", input="\n".join(json.dumps(c) for c in cases) + "\n")
    assert out.returncode == 0, out.stderr
    decisions = [json.loads(line) for line in out.stdout.splitlines()]
    assert [d["action"] for d in decisions] == ["admit", "refuse", "retest", "isolate", "measure"]
    red = decisions[1]
    assert red["reasons"] == ["red_code"] and red["report"] == "immediate"
    assert red["register"] is False and red["messages"][0].startswith("红码")
    for d in decisions:
        assert set(d) >= {"action", "reasons", "report", "register"}


def test_a_pretty_printed_object(gate):
    out = gate("decide", "--lang", "en", input=json.dumps(with_(code=None), indent=2))
    d = json.loads(out.stdout)
    assert out.returncode == 0 and d["action"] == "refuse" and d["reasons"] == ["no_code"]
    assert d["messages"] == ["No health code: look the person up"]


def test_override_reported(gate):
    case = with_(code={"colour": "yellow", "valid": True}, override={"reason": "送医"})
    d = json.loads(gate("decide", input=json.dumps(case)).stdout)
    assert d["action"] == "admit" and d["report"] == "immediate" and "override" in d["reasons"]
    assert d["overridden_action"] == "refuse"


@pytest.mark.parametrize("case, field", [
    ({k: v for k, v in BASE.items() if k != "direction"}, "direction"),
    ({k: v for k, v in BASE.items() if k != "now"}, "now"),
    (with_(now="yesterday"), "now"),
    (with_(policy={"risk_level": "extreme"}), "policy.risk_level"),
    (with_(policy={}), "policy.risk_level"),
    (with_(policy={"risk_level": "low", "fever_c": "37.3"}), "policy.fever_c"),
    (with_(subject={"has_pass": True}), "subject.kind"),
    (with_(subject={"kind": "resident", "has_pass": "yes"}), "subject.has_pass"),
    (with_(code={"colour": "purple", "valid": True}), "code.colour"),
    (with_(code={"colour": "green"}), "code.valid"),
    (with_(readings_c=[36.5, "hot"]), "readings_c[1]"),
    (with_(readings_c=36.5), "readings_c"),
    (with_(vehicle={"resident": True, "exits_today": -1}), "vehicle.exits_today"),
    (with_(vehicle={"exits_today": 1}), "vehicle.resident"),
    (with_(override={"reason": ""}), "override.reason"),
    (with_(override={"reason": "   "}), "override.reason"),
    ([1, 2], "case"),
])
def test_input_errors_exit_2_and_name_the_field(gate, case, field):
    out = gate("decide", input=json.dumps(case))
    assert out.returncode == 2
    assert field in out.stderr and "Traceback" not in out.stderr
    assert json.loads(out.stdout)["field"] == field


def test_a_bad_line_does_not_lose_the_others(gate):
    text = json.dumps(BASE) + "\n{not json\n" + json.dumps(with_(readings_c=[37.5])) + "\n"
    out = gate("decide", input=text)
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert lines[0]["action"] == "admit" and "error" in lines[1] and lines[2]["action"] == "retest"


def test_the_sample_cases_feed_straight_in(gate, data_dir):
    """docs/rules.md says `gate decide < docs/cases.jsonl`: every sample decided as it expects."""
    samples = (data_dir.parents[1] / "docs" / "cases.jsonl").read_text()
    out = gate("decide", "--lang", "en", input=samples)
    assert out.returncode == 0, out.stderr
    decisions = [json.loads(line) for line in out.stdout.splitlines()]
    assert len(decisions) == len(samples.splitlines()) > 30
    assert all(d["as_expected"] for d in decisions), [d["title"] for d in decisions if not d["as_expected"]]
    assert decisions[0]["title"].startswith("low:") and decisions[0]["action"] == "admit"
