"""人工放行: the guard lets the person through against the rules, with a reason and a confirmation."""
from __future__ import annotations

from typing import Any

from textual.binding import Binding

from tui.client import Refused, Unreachable
from tui.screens.form import Field, FormScreen
from tui.words import refusal, w

MAX_REASON = 200  # as the gate's API bounds it


class OverrideScreen(FormScreen):
    TITLE_KEY = "override_title"
    BINDINGS = [*FormScreen.BINDINGS, Binding("y", "confirm", "confirm", show=False)]

    def __init__(self) -> None:
        super().__init__()
        self.pending: str | None = None  # the reason awaiting the guard's y

    def fields(self) -> list[Field]:
        return [Field("reason", w("override_reason", self.lang), max_length=MAX_REASON)]

    async def send(self, values: dict[str, str]) -> Any:
        if not values.get("reason"):
            self.say(w("override_need_reason", self.lang))
            return None
        self.pending = values["reason"]
        self.say(w("override_confirm", self.lang), ok=True)
        self.set_focus(None)  # so that y confirms instead of typing into the reason
        return None

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return self.pending is not None if action == "confirm" else True

    async def action_confirm(self) -> None:
        if self.pending is None:
            return
        try:
            result = await self.gate.client.command("override", reason=self.pending)
        except Refused as exc:
            self.pending = None
            self.say(refusal(exc, self.lang))
            return
        except Unreachable:
            self.say(w("reconnecting", self.lang, s="…"))
            return
        self.dismiss(result)
