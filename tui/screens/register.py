"""登记: a visitor, courier, first return or vehicle, with the fields of the gate's forms."""
from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static

from kiosk import reasons, records
from tui.screens import checks
from tui.screens.form import Field, FormScreen
from tui.screens.shift import YES_NO
from tui.words import w

FORMS = ("visitor", "courier", "returnee", "vehicle")
YES_NO_FIELDS = ("boot_checked", "from_abroad")
PLACEHOLDERS = {"arrival_date": "2026-11-30", "last_test_date": "2026-11-29", "from_county": "420106",
                "plate": "苏A12345", "phone": "13912345678", "passengers": "1"}


def transport_code(typed: str) -> str | None:
    """The form's transport code for what the guard typed: a code, a choice's words in either
    language, or a part of one that names it alone (火车, 高铁: 火车或高铁)."""
    t = typed.strip().lower()
    if not t:
        return None
    words = {code: [code, *(v.lower() for v in names.values())] for code, names in records.TRANSPORT.items()}
    exact = [code for code, ws in words.items() if t in ws]
    if exact:
        return exact[0]
    partial = [code for code, ws in words.items() if any(t in x for x in ws)]
    return partial[0] if len(partial) == 1 else None


class RegisterChoiceScreen(ModalScreen[str | None]):
    """Which form: 1 visitor, 2 courier, 3 returnee, 4 vehicle."""
    CSS_PATH = "form.tcss"
    BINDINGS = [*(Binding(str(i), f"choose('{f}')", show=False) for i, f in enumerate(FORMS, 1)),
                Binding("escape", "choose('')", show=False)]

    def compose(self) -> ComposeResult:
        with Vertical(id="form"):
            yield Static(w("register_title", self.app.lang), id="title")  # type: ignore[attr-defined]

    def action_choose(self, form: str) -> None:
        self.dismiss(form or None)


class RegisterScreen(FormScreen):
    def __init__(self, form: str) -> None:
        super().__init__()
        self.form = form

    def title_text(self) -> str:
        return w(f"form_{self.form}", self.lang)

    def fields(self) -> list[Field]:
        lang, form = self.lang, self.form
        out = []
        for name in records.RECORDS[form].FIELDS:
            check = checks.id_number(lang) if name == "id_number" else checks.record_field(form, name, lang)
            if name == "transport":
                check = self.check_transport
            placeholder = PLACEHOLDERS.get(name, "")
            if name == "transport":
                placeholder = "/".join(reasons.text(records.TRANSPORT, t, lang) for t in ("walk", "private_car", "bus"))
            elif name in YES_NO_FIELDS:
                placeholder = w("no", lang)
            out.append(Field(name, reasons.text(records.FIELD_TEXT, name, lang), check, placeholder,
                             max_length=records.MAX_REASON))
        if form == "visitor":
            out.append(Field("approved", w("approved", lang), self.check_yes_no, w("no", lang), max_length=3))
        return out

    def check_transport(self, value: str) -> str | None:
        """Not one of the choices: say which there are."""
        if transport_code(value) is not None:
            return None
        lang = self.lang
        sep, (left, right) = ("、", "（）") if lang == "zh" else (", ", "()")
        choices = sep.join(reasons.text(records.TRANSPORT, t, lang) for t in records.TRANSPORT)
        return f"{records.FieldError('transport', 'transport').text(lang)}{left}" \
               f"{w('transport_choices', lang)}{choices}{right}"

    def check_yes_no(self, value: str) -> str | None:
        return None if value.lower() in YES_NO else w("yes_no_bad", self.lang)

    async def send(self, values: dict[str, str]) -> Any:
        fields: dict[str, Any] = {k: v for k, v in values.items() if v and k != "approved"}
        if fields.get("transport"):
            fields["transport"] = transport_code(fields["transport"]) or fields["transport"]
        for name in YES_NO_FIELDS:
            if name in records.RECORDS[self.form].FIELDS:
                fields[name] = YES_NO.get(values.get(name, "").lower(), values.get(name))
        if self.form == "returnee" and fields.get("from_abroad") is False:
            fields.pop("from_abroad")
        approved = YES_NO.get(values.get("approved", "").lower(), False)
        return await self.gate.client.command("register", form=self.form, fields=fields, approved=approved)
