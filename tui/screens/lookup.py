"""查询: a person without a phone, by ID number, or by name within a household."""
from __future__ import annotations

from typing import Any

from textual.widgets import OptionList
from textual.widgets.option_list import Option

from tui.client import Refused, Unreachable
from tui.screens import checks
from tui.screens.form import Field, FormScreen
from tui.words import refusal, w

DIRECTIONS = {"": "in", "进": "in", "入": "in", "in": "in", "出": "out", "out": "out"}


class LookupScreen(FormScreen):
    TITLE_KEY = "lookup_title"

    def fields(self) -> list[Field]:
        lang = self.lang
        return [Field("id_number", w("lookup_id", lang), checks.id_number(lang), max_length=20),
                Field("name", w("lookup_name", lang), max_length=32),
                Field("household", w("lookup_household", lang), max_length=64),
                Field("direction", w("lookup_direction", lang), self.check_direction, placeholder="进", max_length=3)]

    def check_direction(self, value: str) -> str | None:
        return None if value.lower() in DIRECTIONS else w("direction_bad", self.lang)

    async def send(self, values: dict[str, str]) -> Any:
        direction = DIRECTIONS.get(values.get("direction", "").lower(), "in")
        if values.get("id_number"):
            await self.gate.client.command("look_up", id_number=values["id_number"], direction=direction)
            return True
        if not (values.get("name") and values.get("household")):
            self.say(w("lookup_need", self.lang))
            return None
        found = await self.gate.client.people(values["name"], values["household"])
        if not found:
            self.say(w("lookup_none", self.lang))
            return None
        self.direction = direction
        for old in self.query(OptionList):
            await old.remove()
        sep = "：" if self.lang == "zh" else ": "
        options = OptionList(*[Option(f"{p['masked_name']}  {w('household', self.lang)}{sep}{p['household_id']}",
                                      id=p["person_ref"]) for p in found[:20]], id="found")
        await self.query_one("#fields").mount(options)
        options.focus()
        self.say(w("lookup_found", self.lang, n=len(found)), ok=True)
        return None

    async def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        try:
            await self.gate.client.command("look_up", person_ref=event.option.id,
                                           direction=getattr(self, "direction", "in"))
        except Refused as exc:
            self.say(refusal(exc, self.lang))
            return
        except Unreachable:
            self.say(w("reconnecting", self.lang, s="…"))
            return
        self.dismiss(True)
