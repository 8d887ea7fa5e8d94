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
    assert "9 entries logged" in out.stdout


def test_demo_sample_cases(gate):
    out = gate("demo", "--cases")
    assert out.returncode == 0, out.stderr
    assert "41 entries logged" in out.stdout and "放行" in out.stdout
