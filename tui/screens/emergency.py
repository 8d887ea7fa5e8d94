"""紧急外出 (急危重症): the guard lets someone out for the fever clinic, an acute illness, a
birth, dialysis; one number chooses which, recorded and reported at once by the gate."""
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

# the gate's emergencies (kiosk/rules.py EMERGENCIES), in the order the guard chooses them
EMERGENCIES = ("fever_clinic", "acute_illness", "pregnancy", "dialysis", "other")


class EmergencyScreen(ModalScreen[dict | None]):
    CSS_PATH = "form.tcss"
    BINDINGS = [*(Binding(str(i), f"choose('{e}')", show=False) for i, e in enumerate(EMERGENCIES, 1)),
                Binding("escape", "back", show=False)]

    @property
    def gate(self) -> GateConsole:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        lang = self.gate.lang
        with Vertical(id="form"):
            yield Static(w("emergency_title", lang), id="title")
            yield Static("\n".join(f"[reverse] {i} [/reverse] {w('emergency_' + e, lang)}"
                                   for i, e in enumerate(EMERGENCIES, 1)), id="choices")
            yield Static("", id="message")
            yield Static(w("choose_hint", lang), id="hint")

    async def action_choose(self, emergency: str) -> None:
        try:
            result = await self.gate.client.command("emergency_exit", emergency=emergency)
        except Refused as exc:
            self.query_one("#message", Static).update(f"[red]{refusal(exc, self.gate.lang)}[/]")
            return
        except Unreachable:
            self.query_one("#message", Static).update(f"[red]{w('reconnecting', self.gate.lang, s='…')}[/]")
            return
        self.dismiss(result)

    def action_back(self) -> None:
        self.dismiss(None)

