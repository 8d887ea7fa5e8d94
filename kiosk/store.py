"""The local store: one SQLite file on the Pi's SD card.

The entries table is also the sync outbox (write-ahead: no record, no opening).
Each entry gets the next per-device sequence number in the same transaction as
its row, so seqs are gap-free and the township server can acknowledge "everything
up to N". Durability over speed: WAL with synchronous=FULL (entries are few and
precious), and an integrity check at open that moves a corrupt file aside rather
than stopping the gate.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlite_utils

from kiosk import clock

log = logging.getLogger(__name__)

BUSY_TIMEOUT_MS = 5000

# Append-only: a migration, once released, is never edited. Version = index + 1.
MIGRATIONS: list[str] = [
    """
    CREATE TABLE device_seq (device_id TEXT PRIMARY KEY, last_seq INTEGER NOT NULL);
    CREATE TABLE entries (
        device_id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        created_utc TEXT NOT NULL,
        boot_id TEXT NOT NULL,
        monotonic_ns INTEGER NOT NULL,
        clock_synced INTEGER NOT NULL,
        gate TEXT NOT NULL,
        guard TEXT,
        direction TEXT NOT NULL CHECK (direction IN ('in', 'out')),
        subject_kind TEXT NOT NULL,
        masked_name TEXT,
        person_ref TEXT,
        code_kind TEXT,
        code_colour TEXT,
        code_result TEXT,
        readings TEXT NOT NULL DEFAULT '[]',
        answers TEXT NOT NULL DEFAULT '{}',
        mask_confirmed INTEGER,
        vehicle TEXT,
        details TEXT,
        action TEXT NOT NULL,
        reasons TEXT NOT NULL DEFAULT '[]',
        override_reason TEXT,
        report TEXT NOT NULL CHECK (report IN ('none', 'daily', 'immediate')),
        synced_at TEXT,
        PRIMARY KEY (device_id, seq)
    );
    CREATE INDEX entries_unsynced ON entries (device_id, seq) WHERE synced_at IS NULL;
    CREATE INDEX entries_created ON entries (created_utc);

    CREATE TABLE households (
        id TEXT PRIMARY KEY, address TEXT NOT NULL, phone TEXT, note TEXT);
    CREATE TABLE residents (
        person_ref TEXT PRIMARY KEY, household_id TEXT REFERENCES households(id),
        masked_name TEXT, role TEXT CHECK (role IN ('owner', 'tenant', 'member')),
        phone TEXT, care_needs TEXT);
    CREATE TABLE passes (
        serial TEXT PRIMARY KEY, person_ref TEXT NOT NULL, household_id TEXT,
        valid_from TEXT NOT NULL, valid_until TEXT NOT NULL);
    CREATE TABLE revoked_passes (serial TEXT PRIMARY KEY, revoked_at TEXT, reason TEXT);
    CREATE TABLE quarantine_orders (
        id TEXT PRIMARY KEY, person_ref TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('home_quarantine', 'health_monitoring')),
        start TEXT NOT NULL, "end" TEXT NOT NULL);
    CREATE INDEX quarantine_person ON quarantine_orders (person_ref);
    CREATE TABLE vehicles (plate TEXT PRIMARY KEY, household_id TEXT);
    CREATE TABLE risk_areas (
        code TEXT PRIMARY KEY, name TEXT NOT NULL,
        level TEXT NOT NULL CHECK (level IN ('medium', 'high')), since TEXT);
    CREATE TABLE trust_keys (
        kid TEXT NOT NULL, entry TEXT NOT NULL, purposes TEXT,
        not_before TEXT, not_after TEXT);
    CREATE TABLE guards (id TEXT PRIMARY KEY, masked_name TEXT NOT NULL, phone TEXT);
    CREATE TABLE shifts (
        id INTEGER PRIMARY KEY, guard_id TEXT NOT NULL REFERENCES guards(id),
        gate TEXT NOT NULL, start TEXT NOT NULL, "end" TEXT);
    CREATE TABLE policy (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    -- Version and fetch time of each list pushed down from the township.
    CREATE TABLE list_versions (name TEXT PRIMARY KEY, version TEXT, etag TEXT, fetched_at TEXT);
    -- The gate's own state that is not a township list (e.g. recovery flags).
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT);
    CREATE TABLE alarms (
        id INTEGER PRIMARY KEY, created_utc TEXT NOT NULL, kind TEXT NOT NULL,
        message TEXT NOT NULL, acknowledged_at TEXT);
    """,
    # 2: the gate daemon. Guards sign in with a PIN (its scrypt hash comes with the guards
    # list); a shift has a leader (领导带班); the indexes the checkpoint's look-ups need.
    """
    ALTER TABLE guards ADD COLUMN pin_hash TEXT;
    ALTER TABLE guards ADD COLUMN leader INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE shifts ADD COLUMN leader_id TEXT;
    ALTER TABLE alarms ADD COLUMN acknowledged_by TEXT;
    CREATE INDEX residents_household ON residents (household_id);
    CREATE INDEX passes_person ON passes (person_ref);
    CREATE INDEX households_address ON households (address);
    CREATE INDEX entries_vehicle_plate ON entries (json_extract(vehicle, '$.plate'), created_utc)
        WHERE vehicle IS NOT NULL;
    """,
]

# Lists the township pushes down, replaced whole and atomically by the sync client.
LISTS = ("households", "residents", "passes", "revoked_passes", "quarantine_orders",
         "vehicles", "risk_areas", "trust_keys", "guards")

JSON_FIELDS = ("readings", "answers", "vehicle", "details", "reasons")


class StoreError(Exception):
    """The store could not do what was asked; the message says why in plain words."""


class StoreFull(StoreError):
    """The disk is full: nothing can be recorded, so the gate must not open."""


@dataclasses.dataclass
class Entry:
    """One person (or vehicle) at the gate, as recorded: 记."""
    gate: str
    direction: str
    subject_kind: str
    action: str
    report: str
    reasons: list[str] = dataclasses.field(default_factory=list)
    guard: str | None = None
    masked_name: str | None = None
    person_ref: str | None = None
    code_kind: str | None = None
    code_colour: str | None = None
    code_result: str | None = None
    readings: list[dict] = dataclasses.field(default_factory=list)
    answers: dict = dataclasses.field(default_factory=dict)
    mask_confirmed: bool | None = None
    vehicle: dict | None = None
    details: dict | None = None
    override_reason: str | None = None
    # Filled in by Store.record():
    device_id: str | None = None
    seq: int | None = None
    created_utc: str | None = None
    boot_id: str | None = None
    monotonic_ns: int | None = None
    clock_synced: bool | None = None
    synced_at: str | None = None

    def to_row(self) -> dict[str, Any]:
        row = dataclasses.asdict(self)
        for f in JSON_FIELDS:
            if row[f] is not None:
                row[f] = json.dumps(row[f], ensure_ascii=False, sort_keys=True)
        for f in ("mask_confirmed", "clock_synced"):
            if row[f] is not None:
                row[f] = int(row[f])
        return row

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Entry:
        row = dict(row)
        for f in JSON_FIELDS:
            if row.get(f) is not None:
                row[f] = json.loads(row[f])
        for f in ("mask_confirmed", "clock_synced"):
            if row.get(f) is not None:
                row[f] = bool(row[f])
        return cls(**row)


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000,
                           check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("PRAGMA foreign_keys = ON")
    return conn


def _healthy(path: Path) -> str | None:
    """None when the file opens and passes quick_check, else what is wrong."""
    try:
        conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000)
        try:
            rows = conn.execute("PRAGMA quick_check").fetchall()
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        return str(exc)
    result = "; ".join(r[0] for r in rows)
    return None if result == "ok" else result


def _salvage_last_seqs(path: Path) -> dict[str, int]:
    """Best effort: the highest seq per device in a corrupt file, so seqs never repeat."""
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            seqs = dict(conn.execute("SELECT device_id, last_seq FROM device_seq").fetchall())
            for device, top in conn.execute("SELECT device_id, MAX(seq) FROM entries GROUP BY 1"):
                seqs[device] = max(seqs.get(device, 0), top or 0)
            return seqs
        finally:
            conn.close()
    except sqlite3.DatabaseError:
        return {}


class Store:
    """The gate's SQLite file. Open with `Store.open(path)`."""

    def __init__(self, path: Path, conn: sqlite3.Connection):
        self.path = path
        self.conn = conn
        self.db = sqlite_utils.Database(conn)

    # -- opening, migrations, recovery --------------------------------------------
    @classmethod
    def open(cls, path: str | os.PathLike) -> Store:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        problem = _healthy(path) if path.exists() else None
        moved_to = salvaged = None
        if problem:
            salvaged = _salvage_last_seqs(path)
            moved_to = move_aside(path)
            log.error("store %s failed its integrity check (%s); moved aside to %s",
                      path, problem, moved_to)
        store = cls(path, _connect(path))
        store.migrate()
        if moved_to:
            with store.transaction():
                for device, top in (salvaged or {}).items():
                    store.conn.execute(
                        "INSERT INTO device_seq VALUES (?, ?) ON CONFLICT(device_id) "
                        "DO UPDATE SET last_seq = MAX(last_seq, excluded.last_seq)", (device, top))
                store.conn.execute(
                    "INSERT OR REPLACE INTO meta VALUES ('seq_floor_unknown', ?)",
                    ("0" if salvaged else "1",))
            store.raise_alarm(
                "store_recovered",
                f"数据库损坏已移至 {moved_to.name} 并新建；未上传的记录可能丢失，请通知镇防控办。"
                f" / The database was corrupt ({problem}); moved aside to {moved_to.name} "
                f"and started fresh. Unsynced entries may be lost: tell the township.")
        return store

    def migrate(self) -> int:
        self.conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_versions (version INTEGER PRIMARY KEY, applied_utc TEXT)")
        current = self.schema_version()
        for version, script in enumerate(MIGRATIONS, start=1):
            if version <= current:
                continue
            with self.transaction():
                for statement in _statements(script):
                    self.conn.execute(statement)
                self.conn.execute("INSERT INTO schema_versions VALUES (?, ?)",
                                  (version, clock.iso(clock.utc_now())))
        return self.schema_version()

    def schema_version(self) -> int:
        row = self.conn.execute("SELECT MAX(version) FROM schema_versions").fetchone()
        return row[0] or 0

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE: take the write lock first, so concurrent writers queue
        on busy_timeout instead of failing when they upgrade a read."""
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise _named(exc) from exc
        try:
            yield self.conn
        except BaseException as exc:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            if isinstance(exc, sqlite3.OperationalError):
                raise _named(exc) from exc
            raise
        else:
            try:
                self.conn.execute("COMMIT")
            except sqlite3.Error as exc:  # e.g. a deferred foreign key, or the disk
                if self.conn.in_transaction:
                    self.conn.execute("ROLLBACK")
                raise (_named(exc) if isinstance(exc, sqlite3.OperationalError) else exc) from exc

    # -- entries: the outbox --------------------------------------------------------
    def record(self, entry: Entry, *, device_id: str, now: dt.datetime | None = None) -> Entry:
        """Write one entry durably and return it with its seq. Raises StoreFull/StoreError:
        the caller must then keep the gate shut (no record, no opening)."""
        now = now or clock.utc_now()
        e = dataclasses.replace(
            entry, device_id=device_id, seq=None, created_utc=clock.iso(now),
            boot_id=entry.boot_id or clock.boot_id(),
            monotonic_ns=entry.monotonic_ns if entry.monotonic_ns is not None else clock.monotonic_ns(),
            clock_synced=entry.clock_synced if entry.clock_synced is not None else clock.clock_synchronised(),
            synced_at=None)
        with self.transaction() as conn:
            e.seq = self._next_seq(conn, device_id)
            row = e.to_row()
            cols = ", ".join(f'"{c}"' for c in row)
            conn.execute(f"INSERT INTO entries ({cols}) VALUES ({', '.join('?' * len(row))})",
                         list(row.values()))
        return e

    @staticmethod
    def _next_seq(conn: sqlite3.Connection, device_id: str) -> int:
        row = conn.execute("UPDATE device_seq SET last_seq = last_seq + 1 WHERE device_id = ? "
                           "RETURNING last_seq", (device_id,)).fetchone()
        if row:
            return row[0]
        conn.execute("INSERT INTO device_seq VALUES (?, 1)", (device_id,))
        return 1

    def last_seq(self, device_id: str) -> int:
        row = self.conn.execute("SELECT last_seq FROM device_seq WHERE device_id = ?",
                                (device_id,)).fetchone()
        return row[0] if row else 0

    def entries(self, where: str = "1", params: tuple = (), order: str = "device_id, seq",
                limit: int | None = None) -> list[Entry]:
        sql = f"SELECT * FROM entries WHERE {where} ORDER BY {order}"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return [Entry.from_row(dict(r)) for r in self.conn.execute(sql, params)]

    def unsynced(self, device_id: str, limit: int = 500, after_seq: int = 0) -> list[Entry]:
        return self.entries("device_id = ? AND synced_at IS NULL AND seq > ?",
                            (device_id, after_seq), order="seq", limit=limit)

    def stats(self) -> dict[str, Any]:
        row = self.conn.execute("SELECT COUNT(*), COUNT(*) - COUNT(synced_at) FROM entries").fetchone()
        seqs = dict(self.conn.execute("SELECT device_id, last_seq FROM device_seq").fetchall())
        return {"entries": row[0], "unsynced": row[1], "last_seq": seqs}

    def mark_synced(self, device_id: str, upto_seq: int, at: dt.datetime | None = None) -> int:
        """The server holds every seq <= upto_seq for this device."""
        with self.transaction() as conn:
            cur = conn.execute(
                "UPDATE entries SET synced_at = ? WHERE device_id = ? AND seq <= ? AND synced_at IS NULL",
                (clock.iso(at or clock.utc_now()), device_id, upto_seq))
        return cur.rowcount

    def mark_synced_seqs(self, device_id: str, seqs: list[int], at: dt.datetime | None = None) -> int:
        """The server holds these seqs (immediate reports sent ahead of the in-order stream)."""
        with self.transaction() as conn:
            cur = conn.executemany(
                "UPDATE entries SET synced_at = ? WHERE device_id = ? AND seq = ? AND synced_at IS NULL",
                [(clock.iso(at or clock.utc_now()), device_id, s) for s in seqs])
        return cur.rowcount

    def mark_unsynced_above(self, device_id: str, seq: int) -> int:
        """The server no longer holds seqs above `seq` (restored from a backup): send them again."""
        with self.transaction() as conn:
            cur = conn.execute("UPDATE entries SET synced_at = NULL WHERE device_id = ? AND seq > ? "
                               "AND synced_at IS NOT NULL", (device_id, seq))
        return cur.rowcount

    def unsynced_count(self, device_id: str) -> int:
        return self.conn.execute("SELECT COUNT(*) FROM entries WHERE device_id = ? AND synced_at IS NULL",
                                 (device_id,)).fetchone()[0]

    def renumber_above(self, device_id: str, floor: int) -> int:
        """After a corrupt store was replaced and its seqs could not be salvaged, the
        server may hold seqs this store reuses: shift this device's entries (none of
        them synced yet) to start above `floor`, the server's highest seq, and clear
        the seq_floor_unknown flag, in one transaction. Returns how many moved."""
        if floor < 0:
            raise StoreError("floor must be >= 0")
        with self.transaction() as conn:
            synced = conn.execute("SELECT COUNT(*) FROM entries WHERE device_id = ? AND synced_at IS NOT NULL",
                                  (device_id,)).fetchone()[0]
            if synced:
                raise StoreError(f"{synced} entries of {device_id} are already synced; not renumbering")
            moved = 0
            if floor:
                # Two steps (negate, then shift) so no row collides with a not-yet-moved one.
                moved = conn.execute("UPDATE entries SET seq = -seq WHERE device_id = ?",
                                     (device_id,)).rowcount
                conn.execute("UPDATE entries SET seq = ? - seq WHERE device_id = ?", (floor, device_id))
                conn.execute("INSERT INTO device_seq VALUES (?, ?) ON CONFLICT(device_id) "
                             "DO UPDATE SET last_seq = last_seq + ?", (device_id, floor, floor))
            conn.execute("DELETE FROM meta WHERE key = 'seq_floor_unknown'")
        return moved

    def purge(self, retention_days: float, now: dt.datetime | None = None) -> int:
        """Delete entries older than the retention period that the server has acknowledged.
        An unacknowledged entry is never purged, however old."""
        if retention_days < 0:
            raise StoreError("retention_days must be >= 0")
        cutoff = clock.iso((now or clock.utc_now()) - dt.timedelta(days=retention_days))
        with self.transaction() as conn:
            cur = conn.execute(
                "DELETE FROM entries WHERE created_utc < ? AND synced_at IS NOT NULL", (cutoff,))
        return cur.rowcount

    # -- lists and policy -------------------------------------------------------------
    def replace_list(self, name: str, rows: list[dict], *, version: str | None = None,
                     etag: str | None = None, fetched_at: dt.datetime | None = None) -> None:
        """Replace a township list whole, atomically: the gate never sees half a list."""
        self.apply_township(lists={name: (rows, version, etag)}, fetched_at=fetched_at)

    def apply_township(self, *, policy: dict[str, Any] | None = None,
                       lists: dict[str, tuple[list[dict], str | None, str | None]] | None = None,
                       policy_version: tuple[str | None, str | None] | None = None,
                       meta: dict[str, str] | None = None, fetched_at: dt.datetime | None = None) -> None:
        """Apply what the sync client pulled, in ONE transaction: the policy (the township's
        document replaces the table whole: local settings belong in gate.toml),
        whole lists {name: (rows, version, etag)} and meta values. The gate sees all of it
        or none of it; foreign keys are checked at commit, across the lists."""
        unknown = [n for n in (lists or {}) if n not in LISTS]
        if unknown:
            raise StoreError(f"unknown list {unknown[0]!r}; known: {', '.join(LISTS)}")
        at = clock.iso(fetched_at or clock.utc_now())
        with self.transaction() as conn:
            conn.execute("PRAGMA defer_foreign_keys = ON")
            if policy is not None:
                conn.execute("DELETE FROM policy")
                conn.executemany("INSERT INTO policy VALUES (?, ?)",
                                 [(k, json.dumps(v)) for k, v in policy.items()])
                version, etag = policy_version or (None, None)
                conn.execute("INSERT OR REPLACE INTO list_versions VALUES ('policy', ?, ?, ?)",
                             (version, etag, at))
            for name, (rows, version, etag) in (lists or {}).items():
                conn.execute(f"DELETE FROM {name}")
                if rows:
                    self.db[name].insert_all(rows)
                conn.execute("INSERT OR REPLACE INTO list_versions VALUES (?, ?, ?, ?)",
                             (name, version, etag, at))
            for key, value in (meta or {}).items():
                conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))
            enforced = conn.execute("PRAGMA foreign_keys").fetchone()[0]
            broken = enforced and conn.execute("PRAGMA foreign_key_check").fetchone()
            if broken:  # refuse here, so the rollback is ours and not a failed COMMIT's
                raise StoreError(f"township lists disagree: a row of {broken[0]} refers to a "
                                 f"missing {broken[2]} row; nothing applied")

    def meta(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def list_version(self, name: str) -> dict | None:
        row = self.conn.execute("SELECT * FROM list_versions WHERE name = ?", (name,)).fetchone()
        return dict(row) if row else None

    def set_policy(self, **values: Any) -> None:
        with self.transaction():
            for key, value in values.items():
                self.conn.execute("INSERT OR REPLACE INTO policy VALUES (?, ?)",
                                  (key, json.dumps(value)))

    def policy(self) -> dict[str, Any]:
        return {r["key"]: json.loads(r["value"]) for r in self.conn.execute("SELECT * FROM policy")}

    # -- alarms -----------------------------------------------------------------------
    def raise_alarm(self, kind: str, message: str, now: dt.datetime | None = None) -> int:
        with self.transaction() as conn:
            cur = conn.execute("INSERT INTO alarms (created_utc, kind, message) VALUES (?, ?, ?)",
                               (clock.iso(now or clock.utc_now()), kind, message))
        return cur.lastrowid

    def alarms(self, include_acknowledged: bool = False) -> list[dict]:
        where = "1" if include_acknowledged else "acknowledged_at IS NULL"
        return [dict(r) for r in self.conn.execute(f"SELECT * FROM alarms WHERE {where} ORDER BY id")]

    def acknowledge_alarm(self, alarm_id: int, now: dt.datetime | None = None, by: str | None = None) -> None:
        with self.transaction() as conn:
            conn.execute("UPDATE alarms SET acknowledged_at = ?, acknowledged_by = ? WHERE id = ?",
                         (clock.iso(now or clock.utc_now()), by, alarm_id))


def move_aside(path: Path) -> Path:
    """Rename a database and its -wal/-shm aside; return the new main file name."""
    stamp = clock.utc_now().strftime("%Y%m%dT%H%M%S")
    target = path.with_name(f"{path.name}.corrupt-{stamp}")
    n = 1
    while target.exists():
        target = path.with_name(f"{path.name}.corrupt-{stamp}-{n}")
        n += 1
    for suffix in ("", "-wal", "-shm"):
        src = Path(str(path) + suffix)
        if src.exists():
            src.rename(Path(str(target) + suffix))
    return target


def _statements(script: str) -> list[str]:
    """Split a migration into statements (ours have no ';' inside literals or comments)."""
    return [s.strip() for s in script.split(";") if s.strip()]


def _named(exc: sqlite3.OperationalError) -> StoreError:
    text = str(exc)
    if "full" in text:
        return StoreFull("磁盘已满，无法记录 / disk full: cannot record")
    if "locked" in text or "busy" in text:
        return StoreError(f"数据库忙 / database busy: {text}")
    return StoreError(text)
