"""`make demo`: the whole gate (a township server, `gate run` on simulated devices, its local
API and uploader) and a stream of people; every path shows, every entry reaches the township."""
from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kiosk import reasons

ROOT = Path(__file__).resolve().parents[1]

# The scripted story, person by person: (action, reasons) as the rules name them.
BEFORE = [
    ("admit", ["all_checks_passed"]),            # green code, tilted phone
    ("admit", ["all_checks_passed"]),            # glare
    ("admit", ["all_checks_passed"]),            # motion blur
    ("refuse", ["yellow_code"]),
    ("refuse", ["red_code"]),
    ("refuse", ["invalid_code"]),                # a screenshot of a 25-minute-old code
    ("refuse", ["no_code"]),                     # a payment QR
    ("admit", ["all_checks_passed"]),            # high, then normal on the re-test
    ("isolate", ["fever_confirmed"]),
    ("refuse", ["home_quarantine_exit"]),        # looked up by name, going out
    ("refuse", ["visited_home_quarantined"]),
    ("admit", ["all_checks_passed"]),            # elderly, looked up by ID number
    ("admit", ["visitor_registered"]),
    ("admit", ["courier_registered"]),
    ("admit", ["vehicle_registered"]),
    ("hold", ["risk_area_travel"]),              # returnee from a county within a high-risk city
    ("admit", ["all_checks_passed"]),            # on no list, green code: a resident at low risk
]
AFTER = [  # the township has set medium risk
    ("admit", ["all_checks_passed"]),            # a resident with a pass
    ("refuse", ["visitor_not_approved"]),        # the same kind of stranger is now a visitor
    ("refuse", ["visitor_not_approved"]),
    ("admit", ["visitor_approved"]),
    ("refuse", ["courier_dropoff_only"]),
    ("refuse", ["vehicle_exit_limit"]),          # the car went out once today already
]


def words_to_codes(table: dict, lang: str) -> dict[str, str]:
    return {w[lang]: code for code, w in table.items()}


def printed_decisions(stdout: str, lang: str) -> list[tuple[str, list[str]]]:
    """Each `-> action: reasons` line, read back into the rules' codes."""
    actions, why = words_to_codes(reasons.ACTION_TEXT, lang), words_to_codes(reasons.REASON_TEXT, lang)
    colon, sep = (": ", "; ") if lang == "en" else ("：", "；")
    out = []
    for line in re.findall(r"^\s+-> (.*)$", stdout, re.M):
        line = re.sub(r"  \(.*\)$", "", line)  # the report note
        action, _, text = line.partition(colon)
        codes = []
        while text:  # a reason's words may hold the separator themselves: match the longest known
            words = max((w for w in why if text.startswith(w)), key=len)
            codes.append(why[words])
            text = text[len(words):].removeprefix(sep)
        out.append((actions[action], codes))
    return out


def test_the_scripted_demo_shows_every_path(gate):
    out = gate("demo", "--lang", "en", timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stderr == ""  # no warnings, no tracebacks
    assert "nobody planned" not in out.stdout  # every entry is one of the story's people
    assert printed_decisions(out.stdout, "en") == BEFORE + AFTER, out.stdout
    before, _, after = out.stdout.partition("The township sets the community to medium risk")
    assert after, out.stdout  # the change was pulled by the gate mid-run
    assert "Guard 赵* signs in with a PIN" in before
    assert "Too old, likely a screenshot" in before and "Not a health code or pass" in before
    assert re.search(r"temp 37\.\d → 36\.\d °C", before) and re.search(r"temp 37\.\d → 37\.\d °C", before)
    assert "Guard acknowledges alarm #1: Red code: report at once" in before
    handover = re.search(r"Handover: 赵\* \(leader 钱\*\) (\d+) checks this shift .* (\d+) reported at once, "
                         r"(\d+) alarms open", after)
    n = len(BEFORE) + len(AFTER)
    assert handover and handover.groups() == (str(n), "4", "3"), after
    # the township holds every entry; its report and alarm feed say what the gate decided
    assert f"Synced to the township: {n} / {n} entries" in after
    daily = re.search(r"Daily report demo-community: (\d+) \((.*)\)", after)
    assert daily and int(daily[1]) == n
    assert "Hold, register and hand over; report at once 1" in daily[2]
    assert after.count("ALARM ") == 4  # red code, fever, quarantine exit, risk-area arrival


def test_the_scripted_demo_speaks_chinese_by_default(gate):
    out = gate("demo", timeout=300, env={"GATE_LANG": ""})
    assert out.returncode == 0, out.stderr
    assert printed_decisions(out.stdout, "zh") == BEFORE + AFTER
    assert "镇防控办将本小区调为中风险" in out.stdout and "交接班" in out.stdout
    assert "报警" not in out.stdout  # the office's word for an immediate report is 立即上报


def headless(gate, people: int):
    seed = int(os.environ.get("GATE_DEMO_SEED") or random.randrange(2**31))
    print(f"GATE_DEMO_SEED={seed}")
    out = gate("demo", "--headless", "--people", str(people), "--json", "--seed", str(seed), timeout=900)
    assert out.returncode == 0, out.stderr
    assert f"seed {seed}" in out.stderr
    summary = json.loads(out.stdout)  # one JSON object, nothing else
    assert summary["seed"] == seed
    return summary


def check_summary(s: dict, people: int) -> None:
    assert s["unplanned"] == []  # no decision the story did not ask for (a timeout, a re-read code)
    assert s["stray_codes"] == 0  # every code the gate read was the phone held up at that moment
    assert s["people"] == people and s["decided"] == people
    assert s["entries_written"] == s["decided"]
    assert s["entries_synced"] == s["entries_written"]
    assert sum(s["by_action"].values()) == s["entries_written"]
    assert sum(s["by_kind"].values()) == people
    assert sum(s["by_reason"].values()) >= s["entries_written"]  # every entry names a reason
    assert "abandoned" not in s["by_action"]  # nobody walked away from the simulated gate
    assert s["risk_change"]["level"] == "medium" and s["risk_change"]["after_people"] == people // 2
    assert s["handover"]["entries"] == people and s["handover"]["open_alarms"] == 0


def test_headless_runs_people_and_prints_one_json_summary(gate):
    s = headless(gate, 30)
    check_summary(s, 30)


@pytest.mark.slow  # about 2-3 minutes on a loaded 2-core machine
def test_headless_runs_200_people_clean(gate):
    s = headless(gate, 200)
    check_summary(s, 200)
    # the kinds that a level changes: after medium, strangers and couriers are turned away
    assert s["by_kind"].get("green", 0) > 50


def test_ctrl_c_stops_everything_cleanly(tmp_path):
    p = subprocess.Popen([sys.executable, "-m", "kiosk.cli", "demo", "--lang", "en"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}, cwd=tmp_path)
    try:
        seen = ""
        while "-> " not in seen:  # mid-run: the township, the gate and its API are up, people are coming
            line = p.stdout.readline()
            assert line, p.stderr.read()
            seen += line
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=90)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    # 130, or killed by SIGINT as Python reports an interrupt (the shell shows 130 either way)
    assert p.returncode in (0, 130, -signal.SIGINT), err
    assert "Traceback" not in err and "ERROR" not in err, err
    assert "Interrupted; the simulated gate is stopped" in err
    # nothing the demo started is left: no process in its group (multiprocessing's resource
    # tracker and the camera's worker see their parent gone and exit within a moment)
    def group() -> list[str]:
        left = []
        for d in os.listdir("/proc"):
            try:
                stat = Path(f"/proc/{d}/stat").read_text()
            except (OSError, ValueError):
                continue
            if d.isdigit() and stat.rsplit(") ", 1)[1].split()[2] == str(p.pid):
                left.append(d)
        return left

    deadline = time.monotonic() + 10
    while group() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert group() == []


def test_demo_sample_cases(gate):
    out = gate("demo", "--cases")
    assert out.returncode == 0, out.stderr
    cases = len((ROOT / "docs" / "cases.jsonl").read_text().splitlines())
    assert f"{cases} entries logged" in out.stdout and out.stdout.count("\n     -> ") == cases
    assert "放行" in out.stdout


def test_a_run_leaves_no_thread_behind(capsys):
    """In this process: after the run, every thread the gate, its API, the uploader and the
    township started has ended (the daemon joins the uploader before closing its store)."""
    import argparse
    import threading

    from kiosk import demo
    before = set(threading.enumerate())
    args = argparse.Namespace(cases=False, db=None, risk_level="low", lang="en", headless=True, people=3,
                              seed=int(os.environ.get("GATE_DEMO_SEED") or 3), json=True)
    assert demo.run(args) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["entries_synced"] == summary["entries_written"] == 3
    left = [t.name for t in set(threading.enumerate()) - before if t.is_alive()]
    assert left == []
