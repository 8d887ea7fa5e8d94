"""Field checks for the forms, as the guard types: the records' own rules (kiosk/records.py),
worded in the guard's language. Nothing here decides: the gate checks the form again."""
from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from kiosk import records


def id_number(lang: str) -> Callable[[str], str | None]:
    def check(value: str) -> str | None:
        try:
            records.check_id_number(value)
        except ValueError as exc:
            return records.FieldError("id_number", exc.args[0]).text(lang)
        return None
    return check


def record_field(form: str, field: str, lang: str) -> Callable[[str], str | None]:
    """The error the gate's form would give this one field, or None."""
    def check(value: str) -> str | None:
        try:
            if form == "returnee":
                records.ReturneeRecord.from_form({field: value}, salt="-", today=dt.date.today(), lang=lang)
            else:
                records.RECORDS[form].from_form({field: value}, lang=lang)  # type: ignore[attr-defined]
        except records.RecordInvalid as exc:
            mine = [e for e in exc.errors if e.field == field and e.code != "required"]
            return mine[0].text(lang) if mine else None
        return None
    return check
