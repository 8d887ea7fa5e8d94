"""SVG snapshots of the console's main screen in both languages, at 80x24 (pytest-textual-snapshot).

The state is fixed here, not read from a gate, and nothing on the screen depends on the
clock, so a snapshot changes only when the screen does. After a deliberate change to the
screen: `pytest tests/test_console_snapshots.py --snapshot-update`, and look at the new SVGs.
"""
from __future__ import annotations

import datetime as dt

import pytest

from kiosk import today
from kiosk.lookup import CHINA_STANDARD_TIME
from kiosk.store import Entry, Store
from tui.app import GateConsole
from tui.widgets.recent import RecentEntries

STATE = {
    "phase": "decided",
    "subject": None,
    "last": {"seq": 7, "action": "retest", "reasons": ["fever_retest"], "report": "none", "masked_name": "王*明",
             "readings_c": [37.6], "code_colour": "green", "subject_kind": "resident", "overridden_action": None},
    "status": {"risk_level": "medium", "thermometer": {"status": "ok", "connected": True},
               "camera": {"status": "ok", "frames": 1200, "scans": 9},
               "shift": {"guard_id": "g7", "guard_name": "赵*", "leader_name": "钱*"},
               "sync": {"enrolled": True, "online": False, "backlog": 12},
               "lists_fetched": {"residents": "2026-11-30T06:00:00Z", "passes": "2026-11-30T06:00:00Z",
                                 "quarantine_orders": "2026-11-30T06:00:00Z"},
               "utc": "2026-11-30T09:30:00Z", "clock_synchronised": True},
}
RECENT = [
    {"seq": 5, "action": "admit", "reasons": ["all_checks_passed"], "masked_name": "李*"},
    {"seq": 6, "action": "refuse", "reasons": ["red_code"], "masked_name": "张*"},
    {"seq": 7, "action": "retest", "reasons": ["fever_retest"], "masked_name": "王*明"},
]
ALARMS = [{"id": 3, "kind": "red_code", "message": "#6 张* 不予放行：红码：立即上报"}]


async def fixed_state(pilot) -> None:
    app: GateConsole = pilot.app
    app.connected = True
    app.take_state(STATE)
    app.alarms = ALARMS
    recent = app.main.query_one(RecentEntries)
    for entry in RECENT:
        recent.add(entry)
    app.redraw()
    await pilot.pause()


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_the_main_screen(snap_compare, lang):
    app = GateConsole("/nonexistent/api.sock", lang, show_clock=False, follow=False)
    assert snap_compare(app, terminal_size=(80, 24), run_before=fixed_state)


# Today's figures and the report preview, as kiosk/today.py counts them from a real store
# with a fixed day's entries (the API answers the same for GET /v1/today, /v1/today/report).
NOW = dt.datetime(2026, 11, 30, 9, 30, tzinfo=dt.UTC)
DAY = [("in", "resident", "admit", "none", ["all_checks_passed"], None),
       ("in", "resident", "refuse", "immediate", ["red_code"], None),
       ("in", "resident", "refuse", "daily", ["yellow_code"], None),
       ("in", "resident", "isolate", "immediate", ["fever_confirmed"], None),
       ("in", "visitor", "admit", "none", ["visitor_registered"], None),
       ("out", "resident", "admit", "immediate", ["emergency_exit"], None),
       ("out", "resident", "admit", "none", ["vehicle_registered"], {"form": "vehicle", "plate": "苏A12345"}),
       ("in", "resident", "abandoned", "none", ["timeout_measuring"], None)]


@pytest.fixture
def store(tmp_path):
    with Store.open(tmp_path / "g.db") as s:
        for i, (direction, kind, action, report, why, vehicle) in enumerate(DAY):
            s.record(Entry(gate="east", direction=direction, subject_kind=kind, action=action, report=report,
                           reasons=why, vehicle=vehicle, masked_name="王*明"), device_id="east-1",
                     now=NOW - dt.timedelta(hours=1, minutes=10 * i))
        s.raise_alarm("red_code", "#2 王*明 不予放行：红码：立即上报", now=NOW)
        yield s


async def open_screen(pilot, key: str, data: dict) -> None:
    """Open the screen with its key; with no gate it says so, then it shows the day's data."""
    await fixed_state(pilot)
    await pilot.press(key)
    await pilot.pause()
    pilot.app.screen.show(data)
    await pilot.pause()


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_todays_figures(snap_compare, store, lang):
    figures = today.figures(store, NOW, CHINA_STANDARD_TIME)
    assert figures["entries"] == len(DAY) and figures["by_kind"]["vehicle"] == 1
    app = GateConsole("/nonexistent/api.sock", lang, show_clock=False, follow=False)
    assert snap_compare(app, terminal_size=(80, 24), run_before=lambda pilot: open_screen(pilot, "f", figures))


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_the_daily_report_preview(snap_compare, store, lang):
    preview = today.report_preview(store, NOW, CHINA_STANDARD_TIME, lang)
    lines = {x["key"]: x["count"] for x in preview["lines"]}
    assert (lines["entries_in"], lines["entries_out"], lines["refused"], lines["vehicles"]) == (5, 2, 3, 1)
    assert (lines["fevers"], lines["red_codes"], lines["not_completed"], lines["overrides"]) == (1, 1, 1, 0)
    app = GateConsole("/nonexistent/api.sock", lang, show_clock=False, follow=False)
    assert snap_compare(app, terminal_size=(80, 24), run_before=lambda pilot: open_screen(pilot, "b", preview))
