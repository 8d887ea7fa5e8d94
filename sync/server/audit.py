"""The audit log: every change made through the township server, with who made it and when.

`audit(db, actor, action, community, detail)` writes one row; pass a `Tx` to write it in
the same transaction as the change itself, or the `Database` to write it on its own right
after the change. Actions in use (docs/township.md, "Accounts and roles"):
risk_level, list_upload, enrollment_token, device_revoked, user_added, user_disabled,
user_enabled, password_set, signed_in, signed_out; other areas add their own
(alarm_acknowledged, report_submitted, contact_trace)."""
from __future__ import annotations

import json
from typing import Any

from kiosk import clock
from sync.server.accounts import Actor
from sync.server.db import Database, Tx

MAX_DETAIL = 2000    # characters of JSON per row
MAX_ACTION = 64

COLUMNS = ("id", "at_utc", "actor", "role", "action", "community", "detail")


def audit(db: Database | Tx, actor: Actor, action: str, community: str | None = None,
          detail: dict[str, Any] | None = None) -> None:
    """Record that `actor` did `action` (to `community`) now. `detail` is a small JSON
    object saying what changed; never put a password or a token in it."""
    text = json.dumps(detail or {}, ensure_ascii=False, sort_keys=True, default=str)
    if len(text) > MAX_DETAIL:  # keep the row, cut the detail (still JSON)
        text = json.dumps({"cut": text[:MAX_DETAIL - 100]}, ensure_ascii=False)
    row = (clock.iso(clock.utc_now()), actor.name, actor.role, action[:MAX_ACTION], community, text)
    sql = "INSERT INTO audit_log (at_utc, actor, role, action, community, detail) VALUES (?, ?, ?, ?, ?, ?)"
    if isinstance(db, Tx):
        db.all(sql, row)
    else:
        with db.tx(write=True) as t:
            t.all(sql, row)


def records(db: Database, *, before: int | None = None, limit: int = 100,
            community: str | None = None) -> list[dict]:
    """Audit rows newest first, below id `before` when given (the next page), of one
    community when given."""
    where, params = "1 = 1", list[Any]()
    if before is not None:
        where += " AND id < ?"
        params.append(before)
    if community is not None:
        where += " AND community = ?"
        params.append(community)
    with db.tx() as t:
        rows = t.all(f"SELECT {', '.join(COLUMNS)} FROM audit_log WHERE {where} ORDER BY id DESC "
                     f"LIMIT {int(limit)}", params)
    return [{**dict(zip(COLUMNS, r, strict=True)), "detail": json.loads(r[6])} for r in rows]
