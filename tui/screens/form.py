"""What every form shares: labelled inputs checked as the guard types, a line for the
gate's answer, Enter to send and Esc to go back."""
from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Static

from tui.client import Refused, Unreachable
from tui.words import refusal, w

if TYPE_CHECKING:
    from tui.app import GateConsole


@dataclasses.dataclass(frozen=True)
class Field:
    name: str
    label: str
    check: Callable[[str], str | None] | None = None  # the error for a value, in the guard's words
    placeholder: str = ""
    password: bool = False
    max_length: int = 64


class FormScreen(ModalScreen[Any]):
    """A title, fields, a message line. Subclasses give `fields()` and `send(values)`."""

    CSS_PATH = "form.tcss"
    BINDINGS = [Binding("escape", "dismiss_form", "back", show=False)]
    TITLE_KEY = ""

    @property
    def gate(self) -> GateConsole:
        return self.app  # type: ignore[return-value]

    @property
    def lang(self) -> str:
        return self.gate.lang

    def fields(self) -> list[Field]:
        return []

    def compose(self) -> ComposeResult:
        with Vertical(id="form"):
            yield Static(self.title_text(), id="title")
            with VerticalScroll(id="fields"):
                yield from self.compose_fields()
            yield Static("", id="message")
            yield Static(w("submit_hint", self.lang), id="hint")

    def on_mount(self) -> None:
        self.query_one("#fields").can_focus = False  # Tab goes from field to field
        self.focus_first()

    def focus_first(self) -> None:
        """The first field takes the keys; a form that starts with a choice leaves them to it."""
        inputs = self.query(Input)
        if inputs:
            inputs.first().focus()

    def title_text(self) -> str:
        return w(self.TITLE_KEY, self.lang)

    def compose_fields(self) -> ComposeResult:
        for f in self.fields():
            with Horizontal(classes="row"):
                yield Label(f.label, classes="label")
                yield Input(placeholder=f.placeholder, password=f.password, max_length=f.max_length,
                            id=f"f-{f.name}")
            error = Static("", id=f"e-{f.name}", classes="error")
            error.display = False
            yield error

    def values(self) -> dict[str, str]:
        return {i.id[2:]: i.value.strip() for i in self.query(Input) if i.id and i.id.startswith("f-")}

    def on_input_changed(self, event: Input.Changed) -> None:
        """Validate as the guard types: only fields with something in them."""
        name = (event.input.id or "")[2:]
        f = next((f for f in self.fields() if f.name == name), None)
        if f is None:
            return
        error = f.check(event.value.strip()) if f.check and event.value.strip() else None
        self.show_error(name, error)
        self.query_one("#message", Static).update("")

    def errors(self, values: dict[str, str]) -> dict[str, str]:
        """Every field's error at sending time (required fields included); {} when all is well."""
        out = {}
        for f in self.fields():
            if f.check and values.get(f.name):
                error = f.check(values[f.name])
                if error:
                    out[f.name] = error
        return out

    def show_error(self, name: str, error: str | None) -> None:
        label = self.query_one(f"#e-{name}", Static)
        label.update(error or "")
        label.display = bool(error)

    def say(self, text: str, ok: bool = False) -> None:
        message = self.query_one("#message", Static)
        message.set_class(not ok, "-bad")
        message.update(text)

    async def on_input_submitted(self, event: Input.Submitted) -> None:
        await self.submit()

    async def submit(self) -> None:
        values = self.values()
        errors = self.errors(values)
        for f in self.fields():
            self.show_error(f.name, errors.get(f.name))
        if errors:
            self.say(next(iter(errors.values())))
            return
        try:
            result = await self.send(values)
        except Refused as exc:
            self.say(refusal(exc, self.lang))
            return
        except Unreachable:
            self.say(w("reconnecting", self.lang, s="…"))
            return
        if result is not None:
            self.dismiss(result)

    async def send(self, values: dict[str, str]) -> Any:
        """Send the form; a value to close the form with, or None to stay open."""
        raise NotImplementedError

    def action_dismiss_form(self) -> None:
        self.dismiss(None)
