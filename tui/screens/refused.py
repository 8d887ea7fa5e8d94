"""拒绝查验: the person will not be measured or questioned; y confirms, and the gate refuses
and reports at once."""
from __future__ import annotations

from typing import TYPE_CHECKING

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static

from tui.client import Refused, Unreachable
from tui.words import refusal, w

if TYPE_CHECKING:
    from tui.app import GateConsole


class RefusedScreen(ModalScreen[dict | None]):
    CSS_PATH = "form.tcss"
    BINDINGS = [Binding("y", "confirm", show=False), Binding("escape", "back", show=False)]

    @property
    def gate(self) -> GateConsole:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        with Vertical(id="form"):
            yield Static(w("refused_confirm", self.gate.lang), id="title")
            yield Static("", id="message")

    async def action_confirm(self) -> None:
        try:
            result = await self.gate.client.command("refused")
        except Refused as exc:
            self.query_one("#message", Static).update(f"[red]{refusal(exc, self.gate.lang)}[/]")
            return
        except Unreachable:
            self.query_one("#message", Static).update(f"[red]{w('reconnecting', self.gate.lang, s='…')}[/]")
            return
        self.dismiss(result)

    def action_back(self) -> None:
        self.dismiss(None)
