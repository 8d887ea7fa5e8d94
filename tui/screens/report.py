"""日报预览: today's daily report as the township will read it (GET /v1/today/report),
every line with its zero, in the console's language."""
from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from tui.client import Refused, Unreachable
from tui.words import refusal, w

if TYPE_CHECKING:
    from tui.app import GateConsole


def report_table(r: dict) -> Table:
    """The report's lines in two columns (16 lines in 8 rows: it fits 80x24)."""
    table = Table.grid(padding=(0, 2))
    table.add_column()
    table.add_column()
    lines = [(f"[b]{x['text']}[/]" if x.get("count") else x["text"]) for x in r.get("lines") or []]
    half = (len(lines) + 1) // 2
    for left, right in zip(lines[:half], [*lines[half:], ""], strict=False):
        table.add_row(left, right)
    return table


def refusals_table(r: dict, lang: str) -> Group:
    """Refusals by their deciding reason: the count, then the reason (wrapped under itself)."""
    table = Table.grid(padding=(0, 1))
    table.add_column(justify="right", no_wrap=True)
    table.add_column(overflow="fold")
    rows = r.get("refusals_by_reason") or []
    for x in rows:
        table.add_row(w("count_only", lang, n=x["count"]), x["text"])
    head = w("report_refusals", lang) + ("：" if lang == "zh" else ": ") + ("" if rows else w("none", lang))
    return Group(Text(head), table)


class ReportScreen(ModalScreen[None]):
    CSS_PATH = ["form.tcss", "report.tcss"]
    BINDINGS = [Binding("escape", "close", show=False), Binding("enter", "close", show=False)]

    @property
    def gate(self) -> GateConsole:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        lang = self.gate.lang
        with Vertical(id="form"):
            yield Static(w("report_title", lang), id="title")
            with VerticalScroll(id="report"):
                yield Static(w("loading", lang), id="outcomes")
                yield Static("", id="lines")
                yield Static("", id="refusals")
            yield Static(w("report_hint", lang), id="hint")

    async def on_mount(self) -> None:
        self.query_one("#report").can_focus = True  # arrow keys scroll a long list of refusals
        lang = self.gate.lang
        try:
            r = await self.gate.client.report(lang)
        except Refused as exc:
            self.query_one("#outcomes", Static).update(f"[red]{refusal(exc, lang)}[/]")
            return
        except Unreachable:
            self.query_one("#outcomes", Static).update(f"[red]{w('reconnecting', lang, s='…')}[/]")
            return
        self.show(r)

    def show(self, r: dict) -> None:
        lang = self.gate.lang
        self.query_one("#title", Static).update(w("report_title_day", lang, day=r.get("day", "")))
        total = w("today_total_short", lang, n=r.get("entries", 0))
        self.query_one("#outcomes", Static).update(f"{total}  {r.get('outcomes_text') or ''}")
        self.query_one("#lines", Static).update(report_table(r))
        self.query_one("#refusals", Static).update(refusals_table(r, lang))

    def action_close(self) -> None:
        self.dismiss(None)
