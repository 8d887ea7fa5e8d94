"""The local store: one SQLite file on the Pi's SD card.

The entries table is also the sync outbox (write-ahead: no record, no opening).
Each entry gets the next per-device sequence number in the same transaction as
its row, so seqs are gap-free and the township server can acknowledge "everything
up to N". Durability over speed: WAL with synchronous=FULL (entries are few and
precious), and an integrity check at open that moves a corrupt file aside rather
than stopping the gate. Only a failed integrity check of a SQLite file is corruption:
a lock, a full disk or a file that is not a store is an error, and nothing is moved.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import errno
import json
import logging
import math
import os
import shutil
import sqlite3
import stat
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any
from urllib.parse import quote

from kiosk import clock, reasons
from kiosk.wire import LISTS as LISTS  # re-exported: the list names live in kiosk/wire.py
from kiosk.wire import WireError, check_entry, check_rows

log = logging.getLogger("gate.store")

BUSY_TIMEOUT_MS = 5000
SQLITE_MAGIC = b"SQLite format 3\x00"  # the first 16 bytes of every SQLite database
PRIVATE = 0o600  # entries hold masked names, person references and temperatures
MAX_RETENTION_DAYS = 3650
MAX_SEQ = 2**63 - 1  # SQLite's INTEGER
# Below this much free space an I/O error while writing is taken as a full disk.
FULL_DISK_BYTES = 1 << 20

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
    ALTER TABLE guards ADD COLUMN leader INTEGER;  -- 1: may lead a shift
    ALTER TABLE shifts ADD COLUMN leader_id TEXT;
    ALTER TABLE alarms ADD COLUMN acknowledged_by TEXT;
    CREATE INDEX residents_household ON residents (household_id);
    CREATE INDEX passes_person ON passes (person_ref);
    CREATE INDEX households_address ON households (address);
    CREATE INDEX entries_vehicle_plate ON entries (json_extract(vehicle, '$.plate'), created_utc)
        WHERE vehicle IS NOT NULL;
    """,
]

# Lists the township pushes down (names and row schemas: kiosk/wire.py), replaced whole
# and atomically by the sync client.

JSON_FIELDS = ("readings", "answers", "vehicle", "details", "reasons")


def _say(zh: str, en: str) -> str:
    """One line in the user's language (GATE_LANG: Chinese by default, English available)."""
    return en if reasons.default_lang() == "en" else zh


class StoreError(Exception):
    """The store could not do what was asked; the message says why in plain words."""


class StoreFull(StoreError):
    """The disk is full: nothing can be recorded, so the gate must not open. No file moved."""


class StoreBusy(StoreError):
    """Another process held the store's lock for longer than busy_timeout. No file moved."""


class NotAStore(StoreError):
    """The path is a folder, not a SQLite file, or another program's database: left alone."""


class StoreMissing(StoreError):
    """No store at that path, and the caller (a read-only command) does not create one."""


class StoreCorrupt(StoreError):
    """The file failed its integrity check; the caller (a read-only command) replaces nothing."""


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


# SQLite's primary result codes (the low byte of the extended code Python reports).
SQLITE_BUSY, SQLITE_LOCKED, SQLITE_IOERR, SQLITE_CORRUPT, SQLITE_FULL, SQLITE_NOTADB = 5, 6, 10, 11, 13, 26


def _uri(path: Path, mode: str = "rw") -> str:
    """mode=rw: SQLite never creates the file by itself; a new store is made on purpose, 0600."""
    return f"file:{quote(str(path.absolute()))}?mode={mode}"


def _connect(path: Path, busy_timeout_ms: int) -> sqlite3.Connection:
    conn = sqlite3.connect(_uri(path), uri=True, isolation_level=None,
                           timeout=busy_timeout_ms / 1000, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("PRAGMA foreign_keys = ON")
    return conn


def _has_sqlite_header(path: Path) -> bool:
    """Read the first 16 bytes. Only for a file SQLite itself refused (SQLITE_NOTADB): closing
    ANY descriptor of a file drops every POSIX lock this process holds on it, SQLite's
    included, and a store open elsewhere in the process would then look unused to other
    processes, which may checkpoint and delete its WAL under it. A file SQLite opens is
    never read this way."""
    try:
        with open(path, "rb") as f:
            return f.read(len(SQLITE_MAGIC)) == SQLITE_MAGIC
    except OSError as exc:
        raise StoreError(_say(f"无法读取 {path}：{exc.strerror}", f"cannot read {path}: {exc.strerror}")) from None


def _not_a_store(path: Path) -> NotAStore:
    return NotAStore(_say(f"{path} 不是数据库文件，未做任何改动", f"{path} is not a SQLite database; left as it is"))


def _integrity_problem(path: Path, busy_timeout_ms: int) -> str | None:
    """None when the file passes quick_check, else what is wrong. Only a damaged SQLite file
    is corruption: a file that is not SQLite at all is NotAStore (a mistyped --db must not be
    renamed aside), and a lock, a full disk or an I/O error is raised as what it is."""
    if path.is_dir():
        raise NotAStore(_say(f"{path} 是文件夹，不是门岗数据库", f"{path} is a folder, not a gate store"))
    try:
        conn = sqlite3.connect(_uri(path), uri=True, timeout=busy_timeout_ms / 1000)
        try:
            rows = conn.execute("PRAGMA quick_check").fetchall()
        finally:
            conn.close()
    except sqlite3.Error as exc:
        if _primary(exc) == SQLITE_NOTADB and not _has_sqlite_header(path):
            raise _not_a_store(path) from None
        if _primary(exc) in (SQLITE_CORRUPT, SQLITE_NOTADB):  # SQLite's header, damaged inside
            return str(exc)
        raise _named(exc, path) from exc
    result = "; ".join(str(r[0]) for r in rows)
    return None if result == "ok" else result


def _salvage_last_seqs(path: Path) -> dict[str, int]:
    """Best effort: the highest seq per device in a corrupt file, so seqs never repeat."""
    try:
        conn = sqlite3.connect(_uri(path, "ro"), uri=True)
        try:
            seqs = dict(conn.execute("SELECT device_id, last_seq FROM device_seq").fetchall())
            for device, top in conn.execute("SELECT device_id, MAX(seq) FROM entries GROUP BY 1"):
                seqs[device] = max(seqs.get(device, 0), top or 0)
            return {str(d): int(n) for d, n in seqs.items()}
        finally:
            conn.close()
    except (sqlite3.Error, TypeError, ValueError):
        return {}


def _note_path(path: Path) -> Path:
    """Written before a corrupt store is moved aside, removed once the new store has
    recorded the replacement: a crash in between still ends with the alarm."""
    return path.with_name(f"{path.name}.replaced")


def _set_aside(path: Path, problem: str) -> Path:
    salvaged = _salvage_last_seqs(path)
    target = _aside_name(path)
    note = {"moved_to": target.name, "problem": problem[:500], "salvaged": salvaged,
            "at": clock.iso(clock.utc_now())}
    try:
        _write_durably(_note_path(path), json.dumps(note, ensure_ascii=False))
    except OSError as exc:  # e.g. a full disk: nothing has moved yet
        raise _os_error(exc, path) from None
    moved = move_aside(path, target)
    log.error("store %s failed its integrity check (%s); moved aside to %s", path, problem, moved)
    return moved


def _read_note(note_path: Path) -> dict[str, Any]:
    try:
        note = json.loads(note_path.read_text(encoding="utf-8"))
        moved_to, problem = str(note["moved_to"])[:255], str(note.get("problem", ""))[:500]
        salvaged = {str(d): int(n) for d, n in dict(note.get("salvaged") or {}).items()}
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        log.error("the note %s is unreadable; taking the seq floor as unknown", note_path)
        return {"moved_to": note_path.name, "problem": "unreadable note", "salvaged": {}}
    return {"moved_to": moved_to, "problem": problem, "salvaged": salvaged}


class Store:
    """The gate's SQLite file. Open with `Store.open(path)`."""

    def __init__(self, path: Path, conn: sqlite3.Connection):
        self.path = path
        self.conn = conn
        self._db: Any = None

    @property
    def db(self) -> Any:
        """sqlite-utils over the same connection, for scripts and exports. Imported on first
        use: it pulls in numpy (~170 ms), which the gate's own path does not need."""
        if self._db is None:
            import sqlite_utils
            self._db = sqlite_utils.Database(self.conn)
        return self._db

    # -- opening, migrations, recovery --------------------------------------------
    @classmethod
    def open(cls, path: str | os.PathLike, *, create: bool = True,
             busy_timeout_ms: int = BUSY_TIMEOUT_MS) -> Store:
        """Open the store at `path`.

        create=True (the gate): a missing store is made (0600, folders too); a file that
        fails its integrity check is moved aside, a fresh store started and an alarm raised.
        create=False (commands that look): a missing file is StoreMissing, a corrupt one
        StoreCorrupt; nothing is made or moved. Either way a file that is not a gate store
        is NotAStore, a lock held past busy_timeout StoreBusy and a full disk StoreFull,
        and every file stays where it was."""
        path = Path(path)
        if path.exists() or path.is_symlink():
            problem = _integrity_problem(path, busy_timeout_ms)
            if problem and not create:
                raise StoreCorrupt(_say(
                    f"{path} 未通过完整性检查（{problem}）；门岗程序下次启动时会将其移至一旁并新建",
                    f"{path} failed its integrity check ({problem}); the gate moves it aside and "
                    "starts a fresh store when it next opens it"))
            if problem:
                _set_aside(path, problem)
        elif not create:
            raise StoreMissing(_say(f"没有数据库：{path}（查看类命令不会新建）",
                                    f"no store at {path} (commands that only look never create one)"))
        if create and not path.exists():
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:  # e.g. a file where a folder should be
                raise _os_error(exc, path.parent) from None
            try:
                os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE))
            except FileExistsError:
                pass  # another process made it first: open theirs
            except OSError as exc:
                raise _os_error(exc, path) from None
        elif not create and _empty(path):
            raise NotAStore(_say(f"{path} 是空文件，还不是门岗数据库", f"{path} is empty, not a gate store yet"))
        try:
            conn = _connect(path, busy_timeout_ms)
        except sqlite3.Error as exc:
            raise _named(exc, path) from exc
        store = cls(path, conn)
        try:
            store._prepare()
        except sqlite3.Error as exc:
            store.close()
            raise _named(exc, path) from exc
        except BaseException:
            store.close()
            raise
        return store

    def _prepare(self) -> None:
        """Ours or nobody's, migrated, its replacement recorded, its files private."""
        tables = {r[0] for r in self.conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if tables and "schema_versions" not in tables:  # checked before anything is written
            raise NotAStore(_say(f"{self.path} 是其他程序的数据库，不是门岗数据库，未做任何改动",
                                 f"{self.path} is another program's database, not a gate store; "
                                 "left as it is"))
        self.conn.execute("PRAGMA journal_mode = WAL")
        self.migrate()
        self._note_replacement(fresh=not tables)
        self._make_private()

    def _note_replacement(self, fresh: bool) -> None:
        """A store that was ever replaced raises its alarm and marks its seq floor, once.
        The note beside the file says so; without one, a new store next to files set aside
        (by a crash, or an older version) is taken as a replacement whose seqs are unknown."""
        note_path = _note_path(self.path)
        if note_path.exists():
            note = _read_note(note_path)
        elif fresh and (aside := _aside_stores(self.path)):
            note = {"moved_to": aside[-1].name, "salvaged": {},
                    "problem": "a new store beside one set aside, with no note of the move"}
        else:
            return
        key = f"replaced:{note['moved_to']}"
        salvaged, moved_to, problem = note["salvaged"], note["moved_to"], note["problem"]
        with self.transaction() as conn:
            if conn.execute("SELECT 1 FROM meta WHERE key = ?", (key,)).fetchone() is None:
                for device, top in salvaged.items():
                    conn.execute(
                        "INSERT INTO device_seq VALUES (?, ?) ON CONFLICT(device_id) "
                        "DO UPDATE SET last_seq = MAX(last_seq, excluded.last_seq)", (device, top))
                # "1" (unknown) is never lowered to "0" by a later, salvaged replacement.
                conn.execute("INSERT INTO meta VALUES ('seq_floor_unknown', ?) ON CONFLICT(key) "
                             "DO UPDATE SET value = MAX(value, excluded.value)", ("0" if salvaged else "1",))
                conn.execute("INSERT INTO meta VALUES (?, ?)", (key, clock.iso(clock.utc_now())))
                conn.execute(
                    "INSERT INTO alarms (created_utc, kind, message) VALUES (?, 'store_recovered', ?)",
                    (clock.iso(clock.utc_now()),
                     f"数据库损坏已移至 {moved_to} 并新建；未上传的记录可能丢失，请通知镇防控办。"
                     f" / The database was corrupt ({problem}); moved aside to {moved_to} "
                     f"and started fresh. Unsynced entries may be lost: tell the township."))
        note_path.unlink(missing_ok=True)
        _fsync_dir(self.path.parent)

    def _make_private(self) -> None:
        """0600 for the store and every file that holds its data (the WAL and the shared
        memory take the store's mode when SQLite makes them; the files set aside keep theirs)."""
        files = [Path(f"{self.path}{s}") for s in ("", "-wal", "-shm")]
        files += sorted(self.path.parent.glob(f"{_glob_escape(self.path.name)}.corrupt-*"))
        for f in files:
            try:
                mode = stat.S_IMODE(f.stat().st_mode)
                if mode & 0o077:
                    os.chmod(f, PRIVATE)
                    log.warning("%s was readable by others (%03o); now %03o", f, mode, PRIVATE)
            except FileNotFoundError:
                continue
            except OSError as exc:
                log.warning("cannot make %s private: %s", f, exc.strerror)

    def migrate(self) -> int:
        self.conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_versions (version INTEGER PRIMARY KEY, applied_utc TEXT)")
        current = self.schema_version()
        for version, script in enumerate(MIGRATIONS, start=1):
            if version <= current:
                continue
            with self.transaction():
                if self.schema_version() >= version:
                    continue  # another process opening the same new store got here first
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
            raise _named(exc, self.path) from exc
        try:
            yield self.conn
        except BaseException as exc:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            if isinstance(exc, sqlite3.OperationalError):
                raise _named(exc, self.path) from exc
            raise
        else:
            try:
                self.conn.execute("COMMIT")
            except sqlite3.Error as exc:  # e.g. a deferred foreign key, or the disk
                if self.conn.in_transaction:
                    self.conn.execute("ROLLBACK")
                raise (_named(exc, self.path) if isinstance(exc, sqlite3.OperationalError) else exc) from exc

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
            fields = dataclasses.asdict(e)
            del fields["synced_at"]
            try:  # what the township would refuse for good is never recorded (rolled back, seq unused)
                check_entry(fields)
            except WireError as exc:
                raise StoreError(str(exc)) from None
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

    def iter_entries(self, after_seq: int = 0) -> Iterator[Entry]:
        """Every entry with seq > after_seq, in seq order, read as it goes (gate db entries)."""
        if not 0 <= after_seq <= MAX_SEQ:
            raise StoreError(_say(f"序号须在 0 到 {MAX_SEQ} 之间", f"seq must be from 0 to {MAX_SEQ}"))
        for row in self.conn.execute("SELECT * FROM entries WHERE seq > ? ORDER BY seq, device_id",
                                     (after_seq,)):
            yield Entry.from_row(dict(row))

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
        if (isinstance(retention_days, bool) or not isinstance(retention_days, (int, float))
                or not math.isfinite(retention_days) or not 0 <= retention_days <= MAX_RETENTION_DAYS):
            raise StoreError(_say(f"保留天数须在 0 到 {MAX_RETENTION_DAYS} 之间，而不是 {retention_days!r}",
                                  f"retention days must be from 0 to {MAX_RETENTION_DAYS}, not {retention_days!r}"))
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
        try:  # the same schema the township checked at upload: a wrong column names itself
            lists = {n: (check_rows(n, rows), v, e) for n, (rows, v, e) in (lists or {}).items()}
        except WireError as exc:
            raise StoreError(f"{exc}; nothing applied") from None
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
                    _insert_rows(conn, name, rows)
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
        return int(cur.lastrowid or 0)

    def alarms(self, include_acknowledged: bool = False) -> list[dict]:
        where = "1" if include_acknowledged else "acknowledged_at IS NULL"
        return [dict(r) for r in self.conn.execute(f"SELECT * FROM alarms WHERE {where} ORDER BY id")]

    def acknowledge_alarm(self, alarm_id: int, now: dt.datetime | None = None, by: str | None = None) -> None:
        """Raises StoreError when there is no open alarm with that id; `by` is the guard on duty."""
        if not 0 < alarm_id <= MAX_SEQ:
            raise StoreError(_say(f"没有编号为 {alarm_id} 的未确认告警", f"no open alarm with id {alarm_id}"))
        with self.transaction() as conn:
            done = conn.execute("UPDATE alarms SET acknowledged_at = ?, acknowledged_by = ? "
                                "WHERE id = ? AND acknowledged_at IS NULL",
                                (clock.iso(now or clock.utc_now()), by, alarm_id)).rowcount
        if not done:
            raise StoreError(_say(f"没有编号为 {alarm_id} 的未确认告警", f"no open alarm with id {alarm_id}"))


def _aside_name(path: Path) -> Path:
    stamp = clock.utc_now().strftime("%Y%m%dT%H%M%S")
    target = path.with_name(f"{path.name}.corrupt-{stamp}")
    n = 1
    while target.exists():
        target = path.with_name(f"{path.name}.corrupt-{stamp}-{n}")
        n += 1
    return target


def _aside_stores(path: Path) -> list[Path]:
    """The stores once set aside from this path (main files, oldest first)."""
    return sorted(p for p in path.parent.glob(f"{_glob_escape(path.name)}.corrupt-*")
                  if not p.name.endswith(("-wal", "-shm")))


def move_aside(path: Path, target: Path | None = None) -> Path:
    """Rename a database and its -wal/-shm aside (kept 0600); return the new main file name."""
    target = target or _aside_name(path)
    for suffix in ("", "-wal", "-shm"):
        src = Path(str(path) + suffix)
        if src.exists():
            dst = Path(str(target) + suffix)
            src.rename(dst)
            with suppress(OSError):
                os.chmod(dst, PRIVATE)
    _fsync_dir(path.parent)
    return target


def _write_durably(target: Path, text: str) -> None:
    """Write, fsync, rename into place, fsync the folder: the file is there after a crash."""
    tmp = target.with_name(f"{target.name}.tmp")
    try:
        with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE), "wb") as f:
            f.write(text.encode("utf-8"))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except OSError:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(target.parent)


def _fsync_dir(folder: Path) -> None:
    with suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _glob_escape(name: str) -> str:
    return "".join(f"[{c}]" if c in "*?[" else c for c in name)


def _empty(path: Path) -> bool:
    """No data at all: a 0-byte file with no WAL (a new store may live in its WAL alone)."""
    def size(p: Path) -> int:
        try:
            return p.stat().st_size
        except FileNotFoundError:
            return 0
    return size(path) == 0 and size(Path(f"{path}-wal")) == 0


def _insert_rows(conn: sqlite3.Connection, table: str, rows: list[dict]) -> None:
    """Insert whole rows. Column names go into the SQL, so each must be one of the table's;
    lists and objects are stored as JSON text (as sqlite-utils did)."""
    known = [r[1] for r in conn.execute(f"PRAGMA table_info({table})")]
    columns: dict[str, None] = {}
    for row in rows:
        if not isinstance(row, dict):
            raise StoreError(f"list {table}: each row must be an object, not {type(row).__name__}")
        columns.update(dict.fromkeys(row))
    unknown = [c for c in columns if c not in known]
    if unknown:
        raise StoreError(f"list {table}: unknown column {unknown[0]!r}; its columns are {', '.join(known)}")
    names = ", ".join(f'"{c}"' for c in columns)
    conn.executemany(f"INSERT INTO {table} ({names}) VALUES ({', '.join('?' * len(columns))})",
                     ([_cell(row.get(c)) for c in columns] for row in rows))


def _cell(value: Any) -> Any:
    return json.dumps(value, ensure_ascii=False) if isinstance(value, (dict, list, tuple)) else value


def _statements(script: str) -> list[str]:
    """Split a migration into statements (ours have no ';' inside literals or comments)."""
    return [s.strip() for s in script.split(";") if s.strip()]


def _primary(exc: sqlite3.Error) -> int:
    return int(getattr(exc, "sqlite_errorcode", 0) or 0) & 0xFF


def _disk_nearly_full(path: Path) -> bool:
    try:
        return shutil.disk_usage(path.parent).free < FULL_DISK_BYTES
    except OSError:
        return False


def _full(path: Path | None) -> StoreFull:
    where = f"（{path}）" if path else ""
    return StoreFull(_say(f"磁盘已满，无法记录{where}", f"disk full: cannot record{f' ({path})' if path else ''}"))


def _os_error(exc: OSError, path: Path) -> StoreError:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return _full(path)
    return StoreError(_say(f"无法使用 {path}：{exc.strerror}", f"cannot use {path}: {exc.strerror}"))


def _named(exc: sqlite3.Error, path: Path | None = None) -> StoreError:
    """A SQLite error as the StoreError that names it (by result code, not by its words)."""
    code = _primary(exc)
    if code == SQLITE_FULL or (code == SQLITE_IOERR and path is not None and _disk_nearly_full(path)):
        return _full(path)
    if code in (SQLITE_BUSY, SQLITE_LOCKED):
        return StoreBusy(_say(f"数据库被其他程序占用，等待后仍未释放：{path or ''}",
                              f"the store is locked by another process and stayed locked: {path or ''}"))
    return StoreError(_say(f"数据库错误（{path or ''}）：{exc}", f"store error ({path or ''}): {exc}"))
