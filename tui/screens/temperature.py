"""手测体温: a reading from the hand-held gun when the module is down or the guard re-tests."""
from __future__ import annotations

from typing import Any

from tui.screens.form import Field, FormScreen
from tui.words import w

LOW_C, HIGH_C = 30.0, 45.0  # what the gate accepts as a body temperature


class TemperatureScreen(FormScreen):
    TITLE_KEY = "temperature_title"

    def fields(self) -> list[Field]:
        return [Field("body_c", w("temperature_field", self.lang), self.check, placeholder="36.5", max_length=5)]

    def check(self, value: str) -> str | None:
        try:
            ok = LOW_C <= float(value) <= HIGH_C
        except ValueError:
            ok = False
        return None if ok else w("temperature_bad", self.lang)

    async def send(self, values: dict[str, str]) -> Any:
        if not values.get("body_c"):
            self.say(w("temperature_bad", self.lang))
            return None
        return await self.gate.client.command("manual_temperature", body_c=float(values["body_c"]))
