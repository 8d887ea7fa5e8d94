"""The main screen: status line, alarm banner, the subject in large type, recent entries,
and the key bar. Every action is one key; the forms open as modal screens."""
from __future__ import annotations

from typing import TYPE_CHECKING

from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen

from tui.widgets.alarm_banner import AlarmBanner
from tui.widgets.key_bar import KeyBar
from tui.widgets.narration import Narration
from tui.widgets.recent import RecentEntries
from tui.widgets.status_line import StatusLine
from tui.widgets.subject import SubjectPanel
from tui.words import w

if TYPE_CHECKING:
    from tui.app import GateConsole


class MainScreen(Screen):
    CSS_PATH = ["main.tcss", "../widgets/status_line.tcss", "../widgets/alarm_banner.tcss",
                "../widgets/subject.tcss", "../widgets/recent.tcss", "../widgets/key_bar.tcss",
                "../widgets/narration.tcss"]
    BINDINGS = [
        Binding("c", "app.look_up", show=False), Binding("d", "app.register", show=False),
        Binding("t", "app.temperature", show=False), Binding("w", "app.answers", show=False),
        Binding("m", "app.mask", show=False), Binding("o", "app.override", show=False),
        Binding("a", "app.acknowledge", show=False), Binding("s", "app.start_shift", show=False),
        Binding("e", "app.end_shift", show=False), Binding("x", "app.cancel", show=False),
        Binding("r", "app.refused", show=False), Binding("j", "app.emergency", show=False),
        Binding("f", "app.today", show=False), Binding("b", "app.report", show=False),
    ]

    def compose(self) -> ComposeResult:
        yield StatusLine(id="status")
        yield AlarmBanner(id="alarm")
        yield SubjectPanel(id="subject")
        yield RecentEntries(id="recent")
        yield Narration(id="narration")
        yield KeyBar(id="keys")

    def on_mount(self) -> None:
        gate: GateConsole = self.app  # type: ignore[assignment]
        self.query_one(KeyBar).show(gate.lang)
        self.query_one(AlarmBanner).show([], gate.lang)
        recent = self.query_one(RecentEntries)
        recent.lang, recent.show_time = gate.lang, gate.show_clock
        recent.border_title = w("recent", gate.lang)
        gate.redraw()
