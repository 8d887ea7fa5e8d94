"""What the township office's pages show about communities and gates, read from small
tables only (communities, devices, documents, gate_fetches): never a scan of the
entries, so the communities page stays fast with millions of them (bench/bench_office.py).

Also what each gate last fetched: the policy version it holds (so the office sees when a
risk level change reached each gate) and the software version it says it runs."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from kiosk import clock
from sync.server.db import Database

SOFTWARE = re.compile(r"^gate/([0-9A-Za-z.+_-]{1,32})")  # from the gate's User-Agent


@dataclass
class GateRow:
    device_id: str
    community: str
    gate: str
    status: str
    enrolled_utc: str | None
    revoked_utc: str | None
    last_seen_utc: str | None
    acked_seq: int
    max_seq: int
    clock_offset_s: float | None
    policy_version: int | None = None    # the policy version the gate last fetched
    policy_fetched_utc: str | None = None
    software: str | None = None

    @property
    def backlog(self) -> int:
        """Seqs the gate has numbered (the server saw a higher one, sent ahead as an
        immediate report) but not yet delivered in order: a lower bound of its backlog."""
        return max(0, self.max_seq - self.acked_seq)


@dataclass
class CommunityRow:
    community: str
    risk_level: str | None = None
    policy_version: int | None = None
    policy_updated_utc: str | None = None
    gates: list[GateRow] = field(default_factory=list)

    @property
    def active_gates(self) -> list[GateRow]:
        return [g for g in self.gates if g.status == "active"]

    @property
    def last_sync_utc(self) -> str | None:
        seen = [g.last_seen_utc for g in self.active_gates if g.last_seen_utc]
        return max(seen) if seen else None

    @property
    def backlog(self) -> int:
        return sum(g.backlog for g in self.active_gates)

    @property
    def gates_behind(self) -> list[GateRow]:
        """Active gates that have not fetched the current policy yet."""
        if self.policy_version is None:
            return []
        return [g for g in self.active_gates if (g.policy_version or 0) < self.policy_version]


GATE_COLUMNS = ("d.device_id", "d.community", "d.gate", "d.status", "d.enrolled_utc", "d.revoked_utc",
                "d.last_seen_utc", "d.acked_seq", "d.max_seq", "d.clock_offset_s",
                "f.policy_version", "f.policy_fetched_utc", "f.software")


def gates(db: Database, community: str | None = None) -> list[GateRow]:
    where, params = ("WHERE d.community = ?", (community,)) if community else ("", ())
    with db.tx() as t:
        rows = t.all(f"SELECT {', '.join(GATE_COLUMNS)} FROM devices d LEFT JOIN gate_fetches f "
                     f"ON f.device_id = d.device_id {where} ORDER BY d.community, d.gate", params)
    return [GateRow(*r) for r in rows]


def communities(db: Database, only: str | None = None) -> list[CommunityRow]:
    """Every known community (enrolled gates or anything published), with its risk level
    and gates; `only` keeps one (community staff see theirs alone)."""
    one = " WHERE community = ?" if only else ""
    params = (only,) * 2 if only else ()
    with db.tx() as t:
        names = [c for (c,) in t.all(f"SELECT community FROM communities{one} UNION "
                                     f"SELECT community FROM devices{one}", params)]
        policies = t.all(f"SELECT community, version, body, updated_utc FROM documents WHERE name = 'policy'"
                         f"{' AND community = ?' if only else ''}", (only,) if only else ())
    out = {c: CommunityRow(c) for c in sorted(names)}
    for community, version, body, updated in policies:
        row = out.setdefault(community, CommunityRow(community))
        try:
            row.risk_level = json.loads(body).get("risk_level")
        except (ValueError, AttributeError):
            row.risk_level = None
        row.policy_version, row.policy_updated_utc = version, updated
    for g in gates(db, only):
        out.setdefault(g.community, CommunityRow(g.community)).gates.append(g)
    return list(out.values())


def note_policy_fetch(db: Database, device_id: str, version: int) -> None:
    """The gate was handed (200) or already held (304) this policy version."""
    now = clock.iso(clock.utc_now())
    with db.tx(write=True) as t:
        t.all("INSERT INTO gate_fetches (device_id, policy_version, policy_fetched_utc) VALUES (?, ?, ?) "
              "ON CONFLICT (device_id) DO UPDATE SET policy_version = excluded.policy_version, "
              "policy_fetched_utc = excluded.policy_fetched_utc "
              "WHERE gate_fetches.policy_version IS NULL OR gate_fetches.policy_version <> excluded.policy_version",
              (device_id, version, now))


def note_software(db: Database, device_id: str, user_agent: str | None) -> None:
    """Keep the software version a gate names in its User-Agent (`gate/0.1.0`); a write
    only when it changed, so polling the manifest costs a read."""
    found = SOFTWARE.match(user_agent or "")
    if not found:
        return
    version = found.group(1)
    with db.tx() as t:
        held = t.one("SELECT software FROM gate_fetches WHERE device_id = ?", (device_id,))
    if held is not None and held[0] == version:
        return
    now = clock.iso(clock.utc_now())
    with db.tx(write=True) as t:
        t.all("INSERT INTO gate_fetches (device_id, software, software_seen_utc) VALUES (?, ?, ?) "
              "ON CONFLICT (device_id) DO UPDATE SET software = excluded.software, "
              "software_seen_utc = excluded.software_seen_utc", (device_id, version, now))


def enrollments(db: Database, community: str | None = None, limit: int = 200) -> list[dict]:
    """Recent enrollment tokens (their hashes are never shown): made, expires, used."""
    where, params = ("WHERE community = ?", (community,)) if community else ("", ())
    cols = ("device_id", "community", "gate", "created_utc", "expires_utc", "used_utc")
    with db.tx() as t:
        rows = t.all(f"SELECT {', '.join(cols)} FROM enrollments {where} ORDER BY created_utc DESC "
                     f"LIMIT {int(limit)}", params)
    return [dict(zip(cols, r, strict=True)) for r in rows]


def open_alarms(db: Database, community: str | None = None) -> dict[str, int]:
    """Immediate reports not yet acknowledged, per community: the partial index of
    immediate entries and the small table of acknowledgements, never the whole entries."""
    one = " AND e.community = ?" if community is not None else ""
    with db.tx() as t:
        rows = t.all("SELECT e.community, COUNT(*) FROM entries e LEFT JOIN alarm_acks a ON a.entry_id = e.id "
                     f"WHERE e.report = 'immediate' AND a.entry_id IS NULL{one} GROUP BY e.community",
                     (community,) if community is not None else ())
    return dict(rows)
