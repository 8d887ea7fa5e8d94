"""紧急外出 (急危重症): the guard lets someone out for the fever clinic, an acute illness, a
birth, dialysis: one number chooses which, then the person's ID number if the guard has
it (the entry records who; left empty, it records the exit alone), then Enter. The gate
records it and reports it at once."""
from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Input, Static

from tui.screens import checks
from tui.screens.form import Field, FormScreen
from tui.words import w

# the gate's emergencies (kiosk/rules.py EMERGENCIES), in the order the guard chooses them
EMERGENCIES = ("fever_clinic", "acute_illness", "pregnancy", "dialysis", "other")


class EmergencyScreen(FormScreen):
    TITLE_KEY = "emergency_title"
    AUTO_FOCUS = ""  # none: the number keys choose first (None would take the app's, "*")
    # digits choose while no field has the focus; once the ID number field has it, they type
    BINDINGS = [*FormScreen.BINDINGS,
                *(Binding(str(i), f"choose('{e}')", show=False) for i, e in enumerate(EMERGENCIES, 1))]

    def __init__(self) -> None:
        super().__init__()
        self.emergency: str | None = None

    def fields(self) -> list[Field]:
        return [Field("id_number", w("emergency_id", self.lang), checks.id_number(self.lang), max_length=20)]

    def compose_fields(self) -> ComposeResult:
        yield Static(self.choices(), id="choices")
        yield from super().compose_fields()

    def choices(self) -> str:
        return "\n".join((f"[reverse] {i} [/reverse] [b]{w('emergency_' + e, self.lang)}{w('chosen', self.lang)}[/b]"
                          if e == self.emergency else f"[reverse] {i} [/reverse] {w('emergency_' + e, self.lang)}")
                         for i, e in enumerate(EMERGENCIES, 1))

    def focus_first(self) -> None:
        self.set_focus(None)  # the number keys choose first; then the ID number field takes them
        self.say(w("choose_hint", self.lang), ok=True)

    def action_choose(self, emergency: str) -> None:
        self.emergency = emergency
        self.query_one("#choices", Static).update(self.choices())
        self.query_one("#f-id_number", Input).focus()
        self.say(w("emergency_id_hint", self.lang), ok=True)

    async def send(self, values: dict[str, str]) -> Any:
        if self.emergency is None:
            self.say(w("choose_hint", self.lang))
            return None
        body: dict[str, Any] = {"emergency": self.emergency}
        if values.get("id_number"):
            body["id_number"] = values["id_number"]
        return await self.gate.client.command("emergency_exit", **body)
