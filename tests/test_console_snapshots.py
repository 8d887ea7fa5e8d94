"""SVG snapshots of the console's main screen in both languages, at 80x24 (pytest-textual-snapshot).

The state is fixed here, not read from a gate, and nothing on the screen depends on the
clock, so a snapshot changes only when the screen does. After a deliberate change to the
screen: `pytest tests/test_console_snapshots.py --snapshot-update`, and look at the new SVGs.
"""
from __future__ import annotations

import pytest

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
