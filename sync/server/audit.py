"""The audit log: every change made through the township server, with who made it and when.

A change and its audit row are one transaction: stored both, or neither. The functions
that change something take `audit=step(actor, action, community, detail)` and write the
row inside their own transaction (a crash between the two never loses the audit).
`audit(db, ...)` writes a row on its own, for what changes nothing (signed in, a trace).
Actions in use (docs/township.md, "Accounts and roles"): risk_level, list_upload,
enrollment_token, device_revoked, user_added, user_disabled, user_enabled, password_set,
signed_in, signed_out; other areas add their own (alarm_acknowledged, report_submitted,
contact_trace)."""
from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from kiosk import clock
from sync.server.accounts import Actor
from sync.server.db import AuditStep, Database, Tx

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


def step(actor: Actor, action: str, community: str | None = None,
         detail: dict[str, Any] | Callable[[Any], dict[str, Any]] | None = None) -> AuditStep:
    """The audit row as the last step of the change's own transaction. `detail` may be a
    function of what the change answers (a version known only inside the transaction)."""
    def write(t: Tx, done: Any) -> None:
        audit(t, actor, action, community, detail(done) if callable(detail) else detail)
    return write


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
