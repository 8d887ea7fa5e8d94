"""`make demo`: the whole gate on simulated devices decides each simulated person right."""
from __future__ import annotations

import re


def test_demo_gate_end_to_end(gate):
    out = gate("demo", "--lang", "en", timeout=180)
    assert out.returncode == 0, out.stderr
    actions = re.findall(r"-> ([A-Za-z ]+?):", out.stdout)
    assert actions == ["Admit",                # green code, tilted phone
                       "Admit",                # 37.6 then 36.9 on re-test
                       "Refuse entry",         # yellow code
                       "Isolate and report now",  # fever confirmed on re-test
                       "Refuse entry",         # screenshot of an old code
                       "Admit",                # visitor, registered
                       "Refuse entry",         # a payment QR is no health code
                       "Admit",                # cold-forehead glitch, measured again
                       "Refuse entry"], out.stdout  # red code
    assert "Too old, likely a screenshot" in out.stdout
    assert "37.6 → 36.9" in out.stdout and "29.3 → 36.7" in out.stdout
    # the township got every entry and raised the two alarms (fever, red code)
    assert "Synced to the township: 9 / acked seq 9, backlog 0" in out.stdout
    assert "Daily report demo-community: 9 (Admit 4, Isolate and report now 1, Refuse entry 4)" in out.stdout
    assert out.stdout.count("ALARM") == 2
    assert "9 entries logged, 0 waiting to sync" in out.stdout


def test_demo_gate_applies_the_township_risk_level(gate):
    out = gate("demo", "--lang", "en", "--risk-level", "high", timeout=180)
    assert out.returncode == 0, out.stderr
    assert "Strict control: all visitors are turned away" in out.stdout


def test_demo_sample_cases(gate):
    out = gate("demo", "--cases")
    assert out.returncode == 0, out.stderr
    assert "41 entries logged" in out.stdout and "放行" in out.stdout
