"""Contact tracing: who passed a gate, or any gate of a community, between two times.

For the health office: masked names and person references (the keyed hash of the ID
number, kiosk/people.py), a vehicle's plate, never more of the entry. Township roles only,
and every search is written to the audit log (routers/reports.py). The window is at
most MAX_WINDOW_DAYS: the gates keep entries 28 days, the question is about days.
"""
from __future__ import annotations

import datetime as dt
from typing import Any

from kiosk import clock
from sync.server.db import Database, Rejected

MAX_WINDOW_DAYS = 31
MAX_ROWS = 5000         # one page; page on with `after` = the last id


def trace(db: Database, start: dt.datetime, end: dt.datetime, community: str, gate: str | None = None,
          after: int = 0, limit: int = 1000) -> list[dict[str, Any]]:
    if end <= start:
        raise Rejected(422, "invalid_window", "the end of the window must be after its start")
    if end - start > dt.timedelta(days=MAX_WINDOW_DAYS):
        raise Rejected(422, "invalid_window", f"a window of at most {MAX_WINDOW_DAYS} days")
    where, params = ("community = ? AND corrected_utc >= ? AND corrected_utc < ? AND id > ?",
                     [community, clock.iso(start), clock.iso(end), after])
    if gate is not None:
        where += " AND gate = ?"
        params.append(gate)
    with db.tx() as t:
        rows = t.all(f"SELECT id, corrected_utc, gate, batch_id, batch_index FROM entries WHERE {where} "
                     f"ORDER BY id LIMIT {int(min(limit, MAX_ROWS))}", params)
        records = Database._records(t, rows, batch_at=3)
    out = []
    for (i, at, g, _, _), e in zip(rows, records, strict=True):
        vehicle = e.get("vehicle") or {}
        out.append({"id": i, "at_utc": at, "community": community, "gate": g,
                    "direction": e.get("direction"), "subject_kind": e.get("subject_kind"),
                    "masked_name": e.get("masked_name"), "person_ref": e.get("person_ref"),
                    "plate": vehicle.get("plate") if isinstance(vehicle, dict) else None,
                    "action": e.get("action")})
    return out  # in id order, so `after` pages on
