"""今日统计: today's figures at this gate (GET /v1/today), refreshed while open."""
from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static

from kiosk import reasons
from tui.client import Refused, Unreachable
from tui.words import refusal, w

if TYPE_CHECKING:
    from tui.app import GateConsole

REFRESH_S = 2.0
TOP_REASONS = 6  # the reasons given most often today; the daily report preview has them all


def figures_text(f: dict, lang: str) -> Group:
    sep, comma = ("：", "，") if lang == "zh" else (": ", ", ")
    by_action = comma.join(w("count", lang, action=reasons.action_text(a, lang), n=n)
                           for a, n in sorted((f.get("by_action") or {}).items()))
    kinds = comma.join(w("count", lang, action=w(f"kind_{k}", lang), n=n)
                       for k, n in sorted((f.get("by_kind") or {}).items()))
    top = sorted((f.get("by_reason") or {}).items(), key=lambda rn: (-rn[1], rn[0]))[:TOP_REASONS]
    lines = [w("today_total", lang, day=f.get("day", ""), n=f.get("entries", 0)),
             f"{w('today_outcomes', lang)}{sep}{by_action or '—'}",
             f"{w('today_kinds', lang)}{sep}{kinds or '—'}",
             "  ".join((w("today_fevers", lang, n=f.get("fevers", 0)),
                        w("handover_immediate", lang, n=f.get("immediate_reports", 0)),
                        w("handover_open", lang, n=f.get("open_alarms", 0)))),
             f"{w('today_reasons', lang)}{sep}{'' if top else '—'}"]
    table = Table.grid(padding=(0, 1))  # the count, then the reason wrapped under itself
    table.add_column(justify="right", no_wrap=True)
    table.add_column(overflow="fold")
    for r, n in top:
        table.add_row(w("count_only", lang, n=n), reasons.reason_text(r, lang))
    return Group(Text.from_markup("\n".join(lines)), table)


class TodayScreen(ModalScreen[None]):
    CSS_PATH = ["form.tcss", "today.tcss"]
    BINDINGS = [Binding("escape", "close", show=False), Binding("enter", "close", show=False)]

    @property
    def gate(self) -> GateConsole:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        lang = self.gate.lang
        with Vertical(id="form"):
            yield Static(w("today_title", lang), id="title")
            yield Static(w("loading", lang), id="figures")
            yield Static(w("close_hint", lang), id="hint")

    async def on_mount(self) -> None:
        await self.load()
        if self.gate.follow:
            self.set_interval(REFRESH_S, self.load)

    async def load(self) -> None:
        lang = self.gate.lang
        try:
            figures = await self.gate.client.today()
        except Refused as exc:
            self.query_one("#figures", Static).update(f"[red]{refusal(exc, lang)}[/]")
            return
        except Unreachable:
            self.query_one("#figures", Static).update(f"[red]{w('reconnecting', lang, s='…')}[/]")
            return
        self.show(figures)

    def show(self, figures: dict) -> None:
        self.query_one("#figures", Static).update(figures_text(figures, self.gate.lang))

    def action_close(self) -> None:
        self.dismiss(None)
