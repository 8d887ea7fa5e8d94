"""Recent entries from the decision events: time, masked name, outcome, reason."""
from __future__ import annotations

import collections
import datetime as dt

from rich.table import Table
from textual.widgets import Static

from kiosk import reasons
from tui.words import w

KEEP = 50


def local_time(at: str | None, fmt: str = "%H:%M:%S") -> str:
    """A gate's UTC time on this machine's clock face."""
    try:
        return dt.datetime.fromisoformat(str(at).replace("Z", "+00:00")).astimezone().strftime(fmt)
    except ValueError:
        return "--:--:--"


class RecentEntries(Static):
    """The last decisions, newest first; names are masked by the gate."""

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.entries: collections.deque[dict] = collections.deque(maxlen=KEEP)
        self.lang = "zh"
        self.show_time = True  # off in snapshot tests: the clock is not deterministic

    def add(self, decision: dict) -> None:
        if any(e.get("seq") == decision.get("seq") for e in self.entries):
            return  # the same entry seen again after a reconnect
        self.entries.appendleft(decision)
        self.redraw()

    def redraw(self) -> None:
        lang = self.lang
        table = Table.grid(padding=(0, 1))
        for _ in range(4 if self.show_time else 3):
            table.add_column(no_wrap=True)
        table.columns[-1].overflow = "ellipsis"
        if not self.entries:
            self.update(w("recent_none", lang))
            return
        for e in list(self.entries)[: max(1, self.size.height or 10)]:
            action = e.get("action", "")
            style = {"admit": "green", "retest": "yellow", "abandoned": "dim"}.get(action, "red")
            row = [e.get("masked_name") or "—", f"[{style}]{reasons.action_text(action, lang)}[/]",
                   reasons.reason_text((e.get("reasons") or [""])[0], lang)]
            table.add_row(*([local_time(e.get("at"))] if self.show_time else []), *row)
        self.update(table)

    def on_resize(self) -> None:
        self.redraw()
