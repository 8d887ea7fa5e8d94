"""问: the person's answers, as the guard hears them; a number toggles one, Enter sends."""
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

QUESTIONS = ("symptoms", "risk_area_travel", "case_contact")


class AnswersScreen(ModalScreen[dict | None]):
    CSS_PATH = "form.tcss"
    BINDINGS = [Binding("1", "flip(0)", show=False), Binding("2", "flip(1)", show=False),
                Binding("3", "flip(2)", show=False), Binding("enter", "send", show=False),
                Binding("escape", "dismiss_form", show=False)]

    def __init__(self) -> None:
        super().__init__(classes="form")
        self.answers = dict.fromkeys(QUESTIONS, False)

    @property
    def lang(self) -> str:
        return self.app.lang  # type: ignore[attr-defined]

    def compose(self) -> ComposeResult:
        with Vertical(id="form"):
            yield Static(w("answers_title", self.lang), id="title")
            yield Static(self.render_answers(), id="answers")
            yield Static("", id="message")
            yield Static(w("submit_hint", self.lang), id="hint")

    def render_answers(self) -> str:
        lines = []
        for i, q in enumerate(QUESTIONS, 1):
            yes = self.answers[q]
            word = f"[b red]{w('yes', self.lang)}[/]" if yes else w("no", self.lang)
            lines.append(f"[reverse] {i} [/reverse] {w('q_' + q, self.lang)}：{word}")
        return "\n".join(lines)

    def action_flip(self, index: int) -> None:
        q = QUESTIONS[index]
        self.answers[q] = not self.answers[q]
        self.query_one("#answers", Static).update(self.render_answers())

    async def action_send(self) -> None:
        gate: GateConsole = self.app  # type: ignore[assignment]
        try:
            result = await gate.client.command("answers", **self.answers)
        except Refused as exc:
            self.query_one("#message", Static).update(f"[red]{refusal(exc, self.lang)}[/]")
            return
        except Unreachable:
            self.query_one("#message", Static).update(f"[red]{w('reconnecting', self.lang, s='…')}[/]")
            return
        self.dismiss(result)

    def action_dismiss_form(self) -> None:
        self.dismiss(None)
