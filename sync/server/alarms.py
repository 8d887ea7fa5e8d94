"""Alarms: the immediate reports (立即上报: fever, red code, quarantine breach, arrivals
held, overrides...) as the gates sent them, each listed until someone acknowledges it,
with who and when.

An alarm is an entry with report = 'immediate' (the partial index entries_immediate finds
them); its acknowledgement is a row in alarm_acks. The live feed (routers/reports.py,
GET /v1/admin/alarms/stream) asks `since()` as soon as the commit of an immediate report
rings `Database.alarm_bell` (LISTEN/NOTIFY across workers on PostgreSQL), and every POLL_S
in any case: every worker reads the same database, so an alarm a gate posted to any
worker reaches every open dashboard.
"""
from __future__ import annotations

from typing import Any

from kiosk import clock
from sync.server.db import AuditStep, Database, Rejected

POLL_S = 0.5            # an open stream looks this often even when no commit woke it
MAX_STREAMS = 100       # open streams per worker (each polls the database)
MAX_NOTE = 200


def since(db: Database, after_id: int = 0, limit: int = 100, *, open_only: bool = False,
          communities: frozenset[str] | None = None) -> list[dict[str, Any]]:
    """Alarms with id > after_id in id order, with their acknowledgement; `communities`
    limits them to those (community staff see their own community only)."""
    where, params = "e.report = 'immediate' AND e.id > ?", list[Any]([after_id])
    if open_only:
        where += " AND a.entry_id IS NULL"
    if communities is not None:
        if not communities:
            return []
        where += f" AND e.community IN ({', '.join('?' * len(communities))})"
        params += sorted(communities)
    with db.tx() as t:
        rows = t.all("SELECT e.id, e.community, e.gate, e.device_id, e.seq, e.corrected_utc, e.action, "
                     "e.batch_id, e.batch_index, a.acknowledged_by, a.acknowledged_utc, a.note "
                     "FROM entries e LEFT JOIN alarm_acks a ON a.entry_id = e.id "
                     f"WHERE {where} ORDER BY e.id LIMIT {int(limit)}", params)
        records = Database._records(t, rows, batch_at=7)
    out = []
    for (i, community, gate, device_id, seq, at, action, _, _, by, when, note), e in zip(rows, records,
                                                                                       strict=True):
        out.append({"id": i, "community": community, "gate": gate, "device_id": device_id, "seq": seq,
                    "at_utc": at, "action": action, "reasons": e.get("reasons", []),
                    "subject_kind": e.get("subject_kind"), "code_colour": e.get("code_colour"),
                    "masked_name": e.get("masked_name"), "readings": e.get("readings", []),
                    "acknowledged_by": by, "acknowledged_utc": when, "note": note})
    return out


def community_of(db: Database, alarm_id: int) -> str | None:
    with db.tx() as t:
        row = t.one("SELECT community FROM entries WHERE id = ? AND report = 'immediate'", (alarm_id,))
    return row[0] if row else None


def acknowledge(db: Database, alarm_id: int, by: str, note: str | None = None,
                audit: AuditStep | None = None) -> dict[str, Any]:
    """Record who acknowledged the alarm and when; the first acknowledgement stands
    (acknowledging again answers the one recorded)."""
    if note is not None and len(note) > MAX_NOTE:
        raise Rejected(422, "invalid_note", f"the note: at most {MAX_NOTE} characters")
    now = clock.iso(clock.utc_now())
    with db.tx(write=True) as t:
        if t.one("SELECT 1 FROM entries WHERE id = ? AND report = 'immediate'", (alarm_id,)) is None:
            raise Rejected(404, "unknown_alarm", f"no alarm #{alarm_id}")
        t.all("INSERT INTO alarm_acks VALUES (?, ?, ?, ?) ON CONFLICT (entry_id) DO NOTHING",
              (alarm_id, by, now, note))
        by, when, note = t.row("SELECT acknowledged_by, acknowledged_utc, note FROM alarm_acks "
                               "WHERE entry_id = ?", (alarm_id,))
        done = {"id": alarm_id, "acknowledged_by": by, "acknowledged_utc": when, "note": note}
        if audit:
            audit(t, done)
    return done


def newest(db: Database) -> int:
    """The id of the newest alarm (0: none yet): a stream opened now starts after it."""
    with db.tx() as t:
        row = t.one("SELECT MAX(id) FROM entries WHERE report = 'immediate'")
    return int(row[0]) if row and row[0] is not None else 0
