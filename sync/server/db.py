"""The township database: SQLite (a file, no set-up) or PostgreSQL, same behaviour.

SQL is written once with `?` placeholders in the subset both speak (ON CONFLICT,
RETURNING, partial indexes); only the DDL differs in one place. Each worker thread
keeps its own connection. Storage trouble becomes one of three named errors the
API turns into 503 + Retry-After, so a gate simply tries again later.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import fcntl
import hashlib
import json
import logging
import os
import re
import sqlite3
import stat
import threading
import zlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kiosk import clock
from kiosk.wire import LISTS

log = logging.getLogger("gate.server")

SCHEMA = """
CREATE TABLE IF NOT EXISTS communities (
    community TEXT PRIMARY KEY, version BIGINT NOT NULL DEFAULT 0, created_utc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS devices (
    device_id TEXT PRIMARY KEY, community TEXT NOT NULL, gate TEXT NOT NULL, public_key TEXT,
    status TEXT NOT NULL, enrolled_utc TEXT, revoked_utc TEXT, last_seen_utc TEXT,
    acked_seq BIGINT NOT NULL DEFAULT 0, max_seq BIGINT NOT NULL DEFAULT 0,
    clock_offset_s DOUBLE PRECISION, clock_checked_utc TEXT);
CREATE TABLE IF NOT EXISTS enrollments (
    token_hash TEXT PRIMARY KEY, device_id TEXT NOT NULL, community TEXT NOT NULL,
    gate TEXT NOT NULL, created_utc TEXT NOT NULL, expires_utc TEXT NOT NULL, used_utc TEXT);
CREATE TABLE IF NOT EXISTS entries (
    {id_pk}, device_id TEXT NOT NULL, seq BIGINT NOT NULL, community TEXT NOT NULL,
    gate TEXT NOT NULL, created_utc TEXT NOT NULL, corrected_utc TEXT NOT NULL,
    time_source TEXT NOT NULL, boot_id TEXT NOT NULL, monotonic_ns BIGINT NOT NULL,
    action TEXT NOT NULL, report TEXT NOT NULL, received_utc TEXT NOT NULL,
    batch_id BIGINT NOT NULL, batch_index INTEGER NOT NULL, UNIQUE (device_id, seq));
-- Each batch's JSON exactly as received, once: the gzip the gate sent (body_gz, about a
-- sixteenth of the text), or the text when it came uncompressed (body, empty beside body_gz).
-- An entry's full record is entries[batch_index] of its batch (`batch_entries`).
-- Re-serialising every entry cost a quarter of ingest, and storing the text a tenth.
CREATE TABLE IF NOT EXISTS batches (
    {id_pk}, device_id TEXT NOT NULL, received_utc TEXT NOT NULL, body TEXT NOT NULL,
    body_gz {blob});
CREATE INDEX IF NOT EXISTS entries_day ON entries (corrected_utc);
CREATE INDEX IF NOT EXISTS entries_immediate ON entries (id) WHERE report = 'immediate';
CREATE TABLE IF NOT EXISTS seq_losses (
    device_id TEXT NOT NULL, from_seq BIGINT NOT NULL, to_seq BIGINT NOT NULL,
    declared_utc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS documents (
    community TEXT NOT NULL, name TEXT NOT NULL, version BIGINT NOT NULL, etag TEXT NOT NULL,
    body TEXT NOT NULL, updated_utc TEXT NOT NULL, PRIMARY KEY (community, name));
-- office-auth: township staff accounts, their sessions, failed logins, the audit log
-- (queries in sync/server/accounts.py and sync/server/audit.py).
CREATE TABLE IF NOT EXISTS users (
    username TEXT PRIMARY KEY, role TEXT NOT NULL, community TEXT, password_hash TEXT NOT NULL,
    created_utc TEXT NOT NULL, password_changed_utc TEXT NOT NULL, disabled_utc TEXT);
CREATE TABLE IF NOT EXISTS sessions (
    id_hash TEXT PRIMARY KEY, username TEXT NOT NULL, csrf TEXT NOT NULL, created_utc TEXT NOT NULL,
    expires DOUBLE PRECISION NOT NULL, idle_until DOUBLE PRECISION NOT NULL);
CREATE INDEX IF NOT EXISTS sessions_user ON sessions (username);
CREATE TABLE IF NOT EXISTS login_failures (
    key TEXT NOT NULL, at DOUBLE PRECISION NOT NULL);
CREATE INDEX IF NOT EXISTS login_failures_key ON login_failures (key, at);
CREATE TABLE IF NOT EXISTS audit_log (
    {id_pk}, at_utc TEXT NOT NULL, actor TEXT NOT NULL, role TEXT NOT NULL, action TEXT NOT NULL,
    community TEXT, detail TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS audit_community ON audit_log (community, id);
-- dashboard: what each gate last fetched (sync/server/overview.py): the policy version it
-- holds, so the office sees when a risk level change reached it, and its software version.
CREATE TABLE IF NOT EXISTS gate_fetches (
    device_id TEXT PRIMARY KEY, policy_version BIGINT, policy_fetched_utc TEXT,
    software TEXT, software_seen_utc TEXT);
-- The open immediate reports per community, counted from the index alone (only immediate
-- entries are in it: a few per thousand, nothing for ingest to speak of).
CREATE INDEX IF NOT EXISTS entries_open_alarms ON entries (community, id) WHERE report = 'immediate';
-- office-reports: each community's daily report as submitted (signed by the shift leader,
-- the figures as they were then), and who acknowledged each alarm (sync/server/reports.py,
-- sync/server/alarms.py).
CREATE TABLE IF NOT EXISTS report_submissions (
    community TEXT NOT NULL, day TEXT NOT NULL, submitted_by TEXT NOT NULL, leader TEXT NOT NULL,
    note TEXT, submitted_utc TEXT NOT NULL, late INTEGER NOT NULL, figures TEXT NOT NULL,
    PRIMARY KEY (community, day));
CREATE TABLE IF NOT EXISTS alarm_acks (
    entry_id BIGINT PRIMARY KEY, acknowledged_by TEXT NOT NULL, acknowledged_utc TEXT NOT NULL,
    note TEXT);
"""
# Each gate's share, seen by every worker (sync/server/limits.py): request nonces inside
# the signature window, requests per device and signed minute, and when its parsed-bytes
# bucket is full again. In the township database on PostgreSQL; on SQLite with several
# workers in a file of their own beside it (`Database.open(..., shares_only=True)`), so
# these small writes never wait behind an upload's commit.
SHARES_SCHEMA = """
CREATE TABLE IF NOT EXISTS nonces (
    device_id TEXT NOT NULL, nonce TEXT NOT NULL, expires DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (device_id, nonce));
CREATE INDEX IF NOT EXISTS nonces_expiry ON nonces (expires);
CREATE TABLE IF NOT EXISTS request_counts (
    device_id TEXT NOT NULL, minute BIGINT NOT NULL, n INTEGER NOT NULL,
    PRIMARY KEY (device_id, minute));
CREATE TABLE IF NOT EXISTS byte_budgets (
    device_id TEXT PRIMARY KEY, full_at DOUBLE PRECISION NOT NULL);
"""
ID_PK = {"sqlite": "id INTEGER PRIMARY KEY",
         "postgres": "id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY"}
BLOB = {"sqlite": "BLOB", "postgres": "BYTEA"}
ENTRY_COLUMNS = ("device_id", "seq", "community", "gate", "created_utc", "corrected_utc",
                 "time_source", "boot_id", "monotonic_ns", "action", "report", "received_utc",
                 "batch_index", "batch_id")
INSERT_ENTRIES = f"INSERT INTO entries ({', '.join(ENTRY_COLUMNS)})"
ENTRY_VALUES = "(" + ", ".join("?" * len(ENTRY_COLUMNS)) + ")"
# SQLite: rows per INSERT statement. One statement stores many rows in one step, which
# releases the GIL once: row by row, the writer (holding the file lock) waited for the
# GIL after every row while other threads parsed.
ROWS_PER_INSERT = 500
# PostgreSQL: a batch's entry rows in one statement, as one JSON array of rows, the batch's
# id (`batch`) added as the last column: at the CPU of COPY, in one round trip rather than
# three, and a part of a larger statement if need be (`_store_next`). (Arrays a column
# cost the server five times the CPU of COPY to adapt.)
PG_ENTRIES = (f"{INSERT_ENTRIES} SELECT "
              + ", ".join(f"(r->>{i})::{kind}" for i, kind in enumerate((
                  "text", "bigint", "text", "text", "text", "text", "text", "text", "bigint", "text", "text",
                  "text", "integer")))
              + ", {batch} FROM {source}jsonb_array_elements(?::jsonb) AS r")
DOCUMENTS = ("policy",) + LISTS
NONCE_PRUNE_S = 30.0  # delete expired nonces in bulk at most this often
# PostgreSQL: this transaction's commit does not wait for the disk (SET LOCAL inside a
# statement, saving a round trip); for what a crash may lose: a nonce, a byte budget. (On
# SQLite they are in a file of their own that never waits for the disk: `durable`.)
QUICK_COMMIT = "set_config('synchronous_commit', 'off', true)"
CLOCK_TRUST_S = 60.0  # a "synchronised" entry further than this from the monotonic estimate is re-dated


def batch_entries(t: Tx, ids: Sequence[int]) -> dict[int, list[dict]]:
    """The entries of the stored batches `ids`, by batch id (from body_gz, or body when
    the batch came uncompressed)."""
    return {bid: json.loads(zlib.decompress(gz, wbits=31) if gz is not None else body)["entries"]
            for bid, body, gz in t.all(f"SELECT id, body, body_gz FROM batches WHERE id IN "
                                       f"({', '.join('?' * len(ids))})", ids)}


class StorageError(Exception):
    """The database cannot take the request now; the gate should retry later."""
    reason = "storage_unavailable"


class StorageBusy(StorageError):
    reason = "storage_busy"


class StorageFull(StorageError):
    reason = "storage_full"


class Rejected(Exception):
    """The request is wrong and retrying it unchanged will not help (a 4xx)."""

    def __init__(self, status: int, reason: str, detail: str):
        super().__init__(detail)
        self.status, self.reason, self.detail = status, reason, detail


@dataclass(frozen=True)
class Device:
    device_id: str
    community: str
    gate: str
    public_key: str | None
    status: str
    acked_seq: int
    max_seq: int


def _pg_idle():
    from psycopg import pq
    return pq.TransactionStatus.IDLE


class Tx:
    """A transaction: `?` placeholders on every backend."""

    def __init__(self, cur, dialect: str):
        self.cur = cur
        self.pg = dialect == "postgres"

    def _sql(self, sql: str) -> str:
        return sql.replace("?", "%s") if self.pg else sql

    def _rows_back(self) -> bool:
        """The statement answered rows. (psycopg builds the description's column objects
        at every look: 15-20 µs of CPU for a statement of seven columns, six a gate's post.)"""
        return self.cur.rownumber is not None if self.pg else self.cur.description is not None

    def all(self, sql: str, params: Sequence = ()) -> list[tuple]:
        self.cur.execute(self._sql(sql), params)
        return self.cur.fetchall() if self._rows_back() else []

    def one(self, sql: str, params: Sequence = ()) -> tuple | None:
        self.cur.execute(self._sql(sql), params)
        return self.cur.fetchone() if self._rows_back() else None

    def row(self, sql: str, params: Sequence = ()) -> tuple:
        """One row that must exist (an UPDATE ... RETURNING of a known row)."""
        found = self.one(sql, params)
        if found is None:
            raise StorageError("the township database lost a row it had just read")
        return found

    def many(self, sql: str, rows: Sequence[Sequence]) -> None:
        if rows:
            self.cur.executemany(self._sql(sql), rows)


# The audit row of a change, written inside the change's transaction with what the change
# answers (sync/server/audit.py `step`): both are stored, or neither.
AuditStep = Callable[[Tx, Any], None]


@dataclass
class _Upload:
    """One batch on its way into the database, checked and turned into rows."""
    device: Device
    batch: Any
    now: dt.datetime
    raw: bytes
    gz: bytes | None
    rows: list[tuple]
    lo: int
    hi: int
    answer: dict | None = None
    error: BaseException | None = None
    done: threading.Event = field(default_factory=threading.Event)
    lead: bool = False  # woken to commit the next group

    @property
    def contiguous(self) -> bool:
        """Its seqs run from lo to hi without a hole (they are unique: `ingest`)."""
        return self.hi - self.lo + 1 == len(self.rows)


class GroupCommit:
    """SQLite: batches that arrive while another commit is under way are stored together
    in the next transaction, with one fsync for all. Each batch is still all or nothing:
    when one is refused the group is rolled back and stored again, each batch in a
    savepoint of its own (the refused one rolls back to it and gets its own answer). No
    batch is answered before the commit that holds it (FULL synchronous). The first to
    arrive leads: it commits the queue, answers everyone, and hands the lead to the first
    of those that arrived meanwhile."""

    MAX_GROUP = 64  # batches in one transaction (a group of 500-entry batches: ~30,000 entries)

    def __init__(self, db: Database):
        self.db = db
        self._queue: list[_Upload] = []
        self._leading = False
        self._lock = threading.Lock()
        self.largest = 0  # the most batches one commit has held (tests and benchmarks)

    def submit(self, job: _Upload) -> dict:
        with self._lock:
            self._queue.append(job)
            job.lead = not self._leading
            self._leading = True
        while not job.lead:
            job.done.wait()
            if job.answer is not None or job.error is not None:
                break
            job.done.clear()  # woken to lead: the queue is ours now
        if job.lead:
            self._lead()
        if job.error is not None:
            raise job.error
        assert job.answer is not None
        return job.answer

    def _lead(self) -> None:
        with self._lock:
            group, self._queue = self._queue[:self.MAX_GROUP], self._queue[self.MAX_GROUP:]
        try:
            try:
                self._commit(group, savepoints=False)
            except Rejected as exc:  # all rolled back: a batch alone was its own transaction,
                if len(group) == 1:  # else again, each batch in a savepoint of its own
                    group[0].error = exc
                else:
                    self._commit(group, savepoints=True)
            self.largest = max(self.largest, len(group))
        except BaseException as exc:  # noqa: BLE001 - handed to every waiter: nothing of the group was stored
            for job in group:  # each waiter raises its own copy of a storage error
                job.answer = None
                job.error = type(exc)(str(exc)) if isinstance(exc, StorageError) else exc
        finally:
            with self._lock:
                if self._queue:
                    self._queue[0].lead = True
                    self._queue[0].done.set()
                else:
                    self._leading = False
            for job in group:
                job.lead = False
                job.done.set()

    def _commit(self, group: list[_Upload], savepoints: bool) -> None:
        """The group in one transaction. Without savepoints (two statements fewer a batch,
        each of which hands the GIL away while the file lock is held) a refused batch
        raises, rolling the whole group back, to be tried again with them."""
        with self.db.tx(write=True) as t:
            for job in group:
                job.answer = job.error = None
                if not savepoints:
                    job.answer = self.db._store(t, job)
                    continue
                t.all("SAVEPOINT upload")
                try:
                    job.answer = self.db._store(t, job)
                except Rejected as exc:
                    t.all("ROLLBACK TO upload")
                    job.error = exc
                t.all("RELEASE upload")


class AlarmBell:
    """Wakes this process's open alarm streams as soon as an immediate report is committed:
    here (SQLite: one process), or by any worker (PostgreSQL: LISTEN/NOTIFY on ALARM_CHANNEL,
    heard by one listening connection per worker, opened with the first stream). The streams
    still look every alarms.POLL_S, in case a notification is lost with a connection."""

    def __init__(self) -> None:
        self._waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()
        self._lock = threading.Lock()
        self.rung = 0  # times rung: a stream notes it before looking, so no ring is missed

    def ring(self) -> None:
        with self._lock:
            self.rung += 1
            waiters = list(self._waiters)
        for loop, event in waiters:
            try:
                loop.call_soon_threadsafe(event.set)
            except RuntimeError:  # that loop has closed; its stream is gone
                pass

    async def wait(self, timeout_s: float, seen: int) -> None:
        """Until the bell rings (at once if it rang since `seen`) or timeout_s passes."""
        me = (asyncio.get_running_loop(), asyncio.Event())
        with self._lock:
            if self.rung != seen:
                return
            self._waiters.add(me)
        try:
            async with asyncio.timeout(timeout_s):
                await me[1].wait()
        except TimeoutError:
            pass
        finally:
            with self._lock:
                self._waiters.discard(me)


ALARM_CHANNEL = "gate_alarm"


class Database:
    """Open with `Database.open(url)`: a file path, `sqlite:///path` or `postgresql://...`."""

    def __init__(self, url: str, *, busy_timeout_ms: int = 5000, max_db_mb: float | None = None,
                 durable: bool = True):
        self.url = url
        # SQLite: every commit waits for the disk (FULL), or not (NORMAL, in WAL mode: a power
        # cut may lose the last commits, a crash of the process none): the gates' shares only.
        self.durable = durable
        self.dialect = "postgres" if url.startswith(("postgresql://", "postgres://")) else "sqlite"
        self.busy_timeout_ms = busy_timeout_ms
        self.max_db_mb = max_db_mb
        self._local = threading.local()
        self._all_conns: list = []
        self._lock = threading.Lock()
        # SQLite has one writer at a time; queue this process's writers on a fair lock
        # instead of SQLite's sleep-and-poll busy handler, which starves some under load,
        # and the processes' leaders on a file lock (`gate server --workers N`).
        self._write_lock = threading.Lock()
        # SQLite with several workers (deps.Server.build): a write transaction takes turns
        # with the parsing of large batches in this process, so the writer, holding the file
        # lock every worker waits on, does not wait for the interpreter lock after each of
        # its statements while a batch is parsed (milliseconds, without letting go of it).
        self.turn: AbstractContextManager[Any] = nullcontext()
        self._write_file: int | None = None
        self._nonce_pruned = 0.0
        self._group = GroupCommit(self)
        self.alarm_bell = AlarmBell()
        self._listening = False
        self._closed = threading.Event()
        if self.dialect == "sqlite":
            self.path = Path(re.sub(r"^sqlite:/{0,2}", "", url) if url.startswith("sqlite:") else url)
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._private_file()
            try:
                self._write_file = os.open(f"{self.path}-writer", os.O_RDWR | os.O_CREAT, 0o600)
            except OSError as exc:
                raise StorageError(f"cannot open {self.path}-writer ({exc.strerror})") from None

    def _private_file(self) -> None:
        """The township's file holds masked names and person references: owner only (0600).
        Created so; an existing file open to others is tightened, with a warning. SQLite
        creates -wal and -shm with the main file's mode; those are tightened too."""
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600)
            os.close(fd)
            for path in (self.path, Path(f"{self.path}-wal"), Path(f"{self.path}-shm")):
                if not path.exists():
                    continue
                mode = stat.S_IMODE(path.stat().st_mode)
                if mode & 0o077:
                    os.chmod(path, mode & 0o700)
                    log.warning("%s was readable by others (mode %04o); now %04o", path, mode, mode & 0o700)
        except OSError as exc:
            raise StorageError(f"cannot make {self.path} private to this user ({exc.strerror})") from None

    @classmethod
    def open(cls, url: str, *, shares_only: bool = False, **kw) -> Database:
        """The database at `url`, its tables made. `shares_only`: the file beside a SQLite
        database that holds the gates' shares for several workers (SHARES_SCHEMA)."""
        db = cls(url, durable=not shares_only, **kw)
        schema = SHARES_SCHEMA if shares_only else SCHEMA + SHARES_SCHEMA
        with db.tx(write=True) as t:
            for statement in schema.format(id_pk=ID_PK[db.dialect], blob=BLOB[db.dialect]).split(";"):
                if statement.strip():
                    t.all(statement)
            if not shares_only:
                t.all("SELECT * FROM batches LIMIT 0")
                if "body_gz" not in [c[0] for c in t.cur.description]:  # a database made before it
                    t.all(f"ALTER TABLE batches ADD COLUMN body_gz {BLOB[db.dialect]}")
        if db.dialect == "postgres" and not shares_only:
            db._fast_compression()
        return db

    def _fast_compression(self) -> None:
        """PostgreSQL compresses each batch's JSON (TOAST): with lz4 rather than the
        default pglz, PostgreSQL spends about a third less CPU per entry stored. Asked once
        (the ALTER locks the table, so only when not so already); a server built without
        lz4 keeps pglz."""
        try:
            with self.tx(write=True) as t:
                row = t.one("SELECT attcompression FROM pg_attribute WHERE attrelid = 'batches'::regclass "
                            "AND attname = 'body'")
                if row and row[0] != "l":
                    t.all("ALTER TABLE batches ALTER COLUMN body SET COMPRESSION lz4")
        except StorageError as exc:
            log.info("batches stay compressed with pglz: %s", exc)

    # -- connections ----------------------------------------------------------------
    def _connect(self):
        if self.dialect == "postgres":
            import psycopg
            conn = psycopg.connect(self.url, autocommit=False)
            with conn.cursor() as cur:
                cur.execute(f"SET lock_timeout = {int(self.busy_timeout_ms)}")
                cur.execute("SET synchronous_commit = on")
            conn.commit()
        else:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False,
                                   timeout=self.busy_timeout_ms / 1000)
            conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_ms)}")
            conn.execute("PRAGMA journal_mode = WAL")
            # An acknowledged entry may be purged on the gate: it must survive power loss here.
            conn.execute(f"PRAGMA synchronous = {'FULL' if self.durable else 'NORMAL'}")
            if self.max_db_mb:
                page = conn.execute("PRAGMA page_size").fetchone()[0]
                conn.execute(f"PRAGMA max_page_count = {int(self.max_db_mb * 1024 * 1024 / page)}")
        with self._lock:
            self._all_conns.append(conn)
        return conn

    def _conn(self):
        conn = getattr(self._local, "conn", None)
        if conn is None or (self.dialect == "postgres" and conn.closed):
            conn = self._local.conn = self._connect()
        return conn

    def _forget(self) -> None:
        """Drop this thread's connection, closed: a PostgreSQL session's advisory locks
        (an upload's lane) go with it, rather than staying taken by a forgotten object."""
        conn = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is None:
            return
        with self._lock:
            if conn in self._all_conns:
                self._all_conns.remove(conn)
        try:
            conn.close()
        except Exception:  # noqa: BLE001 - already broken; nothing more to release
            pass

    def close(self) -> None:
        self._closed.set()
        if self._write_file is not None:
            os.close(self._write_file)
            self._write_file = None
        with self._lock:
            for conn in self._all_conns:
                try:
                    conn.close()
                except Exception:  # noqa: BLE001 - closing at shutdown, nothing to do
                    pass
            self._all_conns.clear()
        self._local = threading.local()

    @contextmanager
    def tx(self, write: bool = False, single: bool = False) -> Iterator[Tx]:
        """A transaction. SQLite writers take this process's lock (with the busy timeout),
        then the file lock every worker of the file takes: only a process's one leading
        writer ever waits on the file lock, in the kernel. `single`: the transaction is
        one statement, run without BEGIN and COMMIT (two round trips fewer on PostgreSQL,
        two steps fewer on SQLite); a statement that fails keeps nothing all the same."""
        if write and self.dialect == "sqlite":
            if not self._write_lock.acquire(timeout=self.busy_timeout_ms / 1000):
                raise StorageBusy("the township database is busy")
            try:
                if self._write_file is None:
                    raise StorageError("the township database is closed")
                with self.turn:
                    fcntl.flock(self._write_file, fcntl.LOCK_EX)
                    try:
                        with self._tx(write, single) as t:
                            yield t
                    finally:
                        fcntl.flock(self._write_file, fcntl.LOCK_UN)
            finally:
                self._write_lock.release()
        else:
            with self._tx(write, single) as t:
                yield t

    @contextmanager
    def _tx(self, write: bool, single: bool = False) -> Iterator[Tx]:
        try:
            conn = self._conn()
        except Exception as exc:
            raise self._named(exc) from exc
        # PostgreSQL reads run without BEGIN and COMMIT (two round trips fewer): under READ
        # COMMITTED each statement takes its own snapshot inside a transaction anyway.
        if self.dialect == "postgres":
            bare = (single or not write) and conn.info.transaction_status == _pg_idle()
        else:
            bare = single and not conn.in_transaction
        try:
            if self.dialect == "sqlite":
                if not bare:
                    conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
                cur = conn.cursor()
            else:
                if bare:
                    conn.autocommit = True
                cur = conn.cursor()
            yield Tx(cur, self.dialect)
            if not bare:
                conn.commit() if self.dialect == "postgres" else conn.execute("COMMIT")
        except BaseException as exc:
            try:
                if self.dialect == "postgres":
                    conn.rollback()
                elif conn.in_transaction:
                    conn.execute("ROLLBACK")
            except Exception:  # noqa: BLE001 - a dead connection is dropped
                self._forget()
            if isinstance(exc, (Rejected, StorageError)) or not self._is_db_error(exc):
                raise
            raise self._named(exc) from exc
        finally:
            if bare and self.dialect == "postgres" and not conn.closed:
                conn.autocommit = False

    def _is_db_error(self, exc: BaseException) -> bool:
        if isinstance(exc, sqlite3.Error):
            return True
        if self.dialect == "postgres":
            import psycopg
            return isinstance(exc, psycopg.Error)
        return False

    def _named(self, exc: BaseException) -> BaseException:
        text = str(exc).lower()
        if "full" in text or "no space" in text or type(exc).__name__ == "DiskFull":
            return StorageFull("the township database is full")
        if "locked" in text or "busy" in text or type(exc).__name__ in ("LockNotAvailable",
                                                                          "DeadlockDetected"):
            return StorageBusy("the township database is busy")
        if isinstance(exc, sqlite3.IntegrityError) or type(exc).__name__.endswith("Violation"):
            return exc  # a bug, not an outage: let it surface as a 500
        if self.dialect == "postgres":
            self._forget()  # reconnect next time
        return StorageError(f"the township database is unavailable ({type(exc).__name__})")

    # -- devices and enrollment -----------------------------------------------------
    def device(self, device_id: str) -> Device | None:
        with self.tx() as t:
            row = t.one("SELECT device_id, community, gate, public_key, status, acked_seq, max_seq "
                        "FROM devices WHERE device_id = ?", (device_id,))
        return Device(*row) if row else None

    def devices(self) -> list[dict]:
        cols = ("device_id", "community", "gate", "status", "enrolled_utc", "revoked_utc",
                "last_seen_utc", "acked_seq", "max_seq", "clock_offset_s", "clock_checked_utc")
        with self.tx() as t:
            rows = t.all(f"SELECT {', '.join(cols)} FROM devices ORDER BY community, gate")
        return [dict(zip(cols, r, strict=True)) for r in rows]

    def _touch_community(self, t: Tx, community: str, now: str, bump: bool) -> int:
        row = t.row("INSERT INTO communities (community, version, created_utc) VALUES (?, ?, ?) "
                    "ON CONFLICT (community) DO UPDATE SET version = communities.version + ? "
                    "RETURNING version", (community, 1 if bump else 0, now, 1 if bump else 0))
        return row[0]

    @staticmethod
    def _same_device(t: Tx, device_id: str, community: str, gate: str) -> None:
        """A device id names one community's gate for good: refuse to hand it to another."""
        for table in ("devices", "enrollments"):
            row = t.one(f"SELECT community, gate FROM {table} WHERE device_id = ? AND "
                        "(community <> ? OR gate <> ?) LIMIT 1", (device_id, community, gate))
            if row:
                raise Rejected(409, "device_id_taken", f"device id {device_id!r} belongs to gate "
                               f"{row[1]!r} of {row[0]!r}; choose another device id")

    def create_enrollment(self, token_hash: str, device_id: str, community: str, gate: str,
                          expires: dt.datetime, audit: AuditStep | None = None) -> None:
        now = clock.iso(clock.utc_now())
        with self.tx(write=True) as t:
            self._same_device(t, device_id, community, gate)
            self._touch_community(t, community, now, bump=False)
            t.all("INSERT INTO enrollments VALUES (?, ?, ?, ?, ?, ?, NULL)",
                  (token_hash, device_id, community, gate, now, clock.iso(expires)))
            if audit:
                audit(t, None)

    def enroll(self, token_hash: str, public_key: str) -> Device:
        """Use an enrollment token once; (re-)register the device with its key."""
        now = clock.iso(clock.utc_now())
        with self.tx(write=True) as t:
            row = t.one("UPDATE enrollments SET used_utc = ? WHERE token_hash = ? AND used_utc IS NULL "
                        "AND expires_utc > ? RETURNING device_id, community, gate",
                        (now, token_hash, now))
            if not row:
                raise Rejected(401, "invalid_enrollment_token",
                               "enrollment token unknown, expired or already used")
            device_id, community, gate = row
            # A token re-keys only the device it was made for (same community and gate).
            self._same_device(t, device_id, community, gate)
            t.all("INSERT INTO devices (device_id, community, gate, public_key, status, enrolled_utc) "
                  "VALUES (?, ?, ?, ?, 'active', ?) ON CONFLICT (device_id) DO UPDATE SET "
                  "community = excluded.community, gate = excluded.gate, "
                  "public_key = excluded.public_key, status = 'active', revoked_utc = NULL, "
                  "enrolled_utc = excluded.enrolled_utc",
                  (device_id, community, gate, public_key, now))
        device = self.device(device_id)
        assert device is not None  # just written
        return device

    def revoke(self, device_id: str, audit: AuditStep | None = None) -> bool:
        with self.tx(write=True) as t:
            row = t.one("UPDATE devices SET status = 'revoked', revoked_utc = ? WHERE device_id = ? "
                        "RETURNING device_id", (clock.iso(clock.utc_now()), device_id))
            if row is not None and audit:
                audit(t, device_id)
        return row is not None

    # -- entries --------------------------------------------------------------------
    def ingest(self, device: Device, batch, now: dt.datetime, raw: bytes = b"",
               gz: bytes | None = None) -> dict:
        """Store a batch all or nothing; answer the highest contiguous seq held.
        `raw` is the batch's JSON as received, kept as the entries' full record, or `gz`,
        the same gzipped, as the gate sent it, in its place.
        On SQLite, batches that arrive together share one commit (`GroupCommit`)."""
        foreign = next((e for e in batch.entries if e.device_id != device.device_id), None)
        if foreign:
            raise Rejected(403, "foreign_entry", f"seq {foreign.seq} belongs to device "
                           f"{foreign.device_id!r}; a gate may send only its own entries")
        seqs = [e.seq for e in batch.entries]
        if len(set(seqs)) != len(seqs):
            raise Rejected(422, "duplicate_seq_in_batch", "a seq appears twice in the batch")
        if batch.priority and any(e.report != "immediate" for e in batch.entries):
            raise Rejected(422, "priority_not_immediate",
                           "a priority batch may carry only report='immediate' entries")
        job = _Upload(device, batch, now, raw, gz, self._rows(device, batch, now), min(seqs), max(seqs))
        if self.dialect == "sqlite":
            answer = self._group.submit(job)
            if answer["stored"] and any(e.report == "immediate" for e in batch.entries):
                self.alarm_bell.ring()  # committed: the open streams read it now
            return answer
        if job.contiguous:
            usual = self._store_next(job)
            if usual is not None:
                return usual
        with self.tx(write=True) as t:
            return self._store(t, job)

    def _store_next(self, job: _Upload) -> dict | None:
        """PostgreSQL's usual batch, contiguous seqs right after the device's ack with none
        stored before, in one statement: one round trip and one commit, against six round
        trips for `_store`. None, having stored nothing, when the device's state is not
        that (a resend, a gap, a priority batch ahead): `_store` then sorts it out."""
        seen, seen_params = self._seen(job)
        with self.tx(write=True, single=True) as t:
            stored, _ = t.row(
                f"WITH dev AS (UPDATE devices SET {seen}, acked_seq = ?, max_seq = ? "
                "WHERE device_id = ? AND acked_seq = ? AND max_seq < ? RETURNING device_id), "
                "b AS (INSERT INTO batches (device_id, received_utc, body, body_gz) "
                "SELECT device_id, ?, ?, ? FROM dev RETURNING id), "
                f"e AS ({PG_ENTRIES.format(batch='b.id', source='b, ')} RETURNING report) "
                # heard by every worker at the commit, when the batch holds an immediate report
                "SELECT (SELECT COUNT(*) FROM e), (SELECT COUNT(*) FROM (SELECT pg_notify(?, '') "
                "FROM e WHERE report = 'immediate' LIMIT 1) bell)",
                (*seen_params, job.hi, job.hi, job.device.device_id, job.lo - 1, job.lo,
                 clock.iso(job.now), self._body_text(job), job.gz, json.dumps(job.rows), ALARM_CHANNEL))
        if not stored:
            return None
        return {"acked_seq": job.hi, "stored": stored, "duplicates": 0}

    def _seen(self, job: _Upload) -> tuple[str, tuple]:
        """The device's row as an upload leaves it: when seen, and its clock's offset."""
        now_text, batch = clock.iso(job.now), job.batch
        return ("last_seen_utc = ?, clock_offset_s = COALESCE(?, clock_offset_s), "
                "clock_checked_utc = COALESCE(?, clock_checked_utc)",
                (now_text, self._offset(batch, job.now), now_text if batch.clock else None))

    @staticmethod
    def _body_text(job: _Upload) -> str:
        """The batch's JSON text to keep, empty when its gzip is kept instead."""
        if job.gz is not None:
            return ""
        return job.raw.decode("utf-8", "replace") if job.raw else job.batch.model_dump_json()

    def _store(self, t: Tx, job: _Upload) -> dict:
        """The batch's transaction body (its own transaction, or a savepoint of a group)."""
        device, batch, rows, lo, hi = job.device, job.batch, job.rows, job.lo, job.hi
        now_text = clock.iso(job.now)
        # The UPDATE takes the device's row lock: one batch per device at a time, so what
        # the SELECT below finds held is all that is held until this transaction ends.
        seen, seen_params = self._seen(job)
        acked, max_seq = t.row(f"UPDATE devices SET {seen} WHERE device_id = ? RETURNING acked_seq, max_seq",
                               (*seen_params, device.device_id))
        # max_seq is the highest seq ever stored for the device: a batch wholly above it (the
        # usual next batch) holds nothing already here, and no read is needed to know it.
        held = {} if lo > max_seq else {s: (b, m) for s, b, m in t.all(
            "SELECT seq, boot_id, monotonic_ns FROM entries WHERE device_id = ? "
            "AND seq >= ? AND seq <= ?", (device.device_id, lo, hi))}
        clash = next((e.seq for e in batch.entries
                      if e.seq in held and held[e.seq] != (e.boot_id, e.monotonic_ns)), None)
        if clash is not None:
            raise Rejected(409, "seq_conflict",
                           f"seq {clash} is already held with a different entry; the gate's "
                           "numbering restarted (see docs/sync.md, recovery)")
        new = [r for r in rows if r[1] not in held]
        if new:
            (batch_id,) = t.row("INSERT INTO batches (device_id, received_utc, body, body_gz) "
                                "VALUES (?, ?, ?, ?) RETURNING id",
                                (device.device_id, now_text, self._body_text(job), job.gz))
            if t.pg:
                # No ON CONFLICT needed: under the device's row lock nothing but `held` can
                # be there (a clash would still fail the whole transaction, never store half
                # a batch).
                t.all(PG_ENTRIES.format(batch="?", source=""), (batch_id, json.dumps(new)))
                if any(r[10] == "immediate" for r in new):  # heard by every worker at the commit
                    t.all(f"NOTIFY {ALARM_CHANNEL}")
            else:
                new = [r + (batch_id,) for r in new]
                for start in range(0, len(new), ROWS_PER_INSERT):
                    chunk = new[start:start + ROWS_PER_INSERT]
                    t.all(f"{INSERT_ENTRIES} VALUES "
                          + ", ".join([ENTRY_VALUES] * len(chunk))
                          + " ON CONFLICT (device_id, seq) DO NOTHING", [v for r in chunk for v in r])
        if max_seq < lo and lo == acked + 1 and job.contiguous:
            acked = hi  # the usual batch: the next seqs, none held before, nothing beyond
        else:
            acked = self._advance(t, device.device_id, acked, hi, beyond=max_seq > hi)
        if not batch.priority and acked < hi:
            raise Rejected(409, "seq_gap", f"seq {acked + 1} is missing: the server holds every "
                           f"seq up to {acked}; send from {acked + 1} on")
        t.all("UPDATE devices SET acked_seq = ?, max_seq = ? WHERE device_id = ?",
              (acked, max(max_seq, hi), device.device_id))
        return {"acked_seq": acked, "stored": len(new), "duplicates": len(rows) - len(new)}

    @staticmethod
    def _advance(t: Tx, device_id: str, acked: int, hint: int | None = None, page: int = 2000,
                 beyond: bool = True) -> int:
        """The highest contiguous seq held from `acked` on. With `hint` (a batch's highest
        seq), first count (acked, hint]: seqs are unique, so a full count means contiguous,
        and the usual batch moves the ack without reading its seqs back. `beyond` False:
        nothing above `hint` is stored (the device's max_seq), so a full count is the answer."""
        if hint is not None and hint > acked:
            (n,) = t.row("SELECT COUNT(*) FROM entries WHERE device_id = ? AND seq > ? AND seq <= ?",
                         (device_id, acked, hint))
            if n == hint - acked:
                if not beyond:
                    return hint
                acked = hint
        nxt = acked + 1
        while True:
            found = t.all("SELECT seq FROM entries WHERE device_id = ? AND seq >= ? ORDER BY seq "
                          f"LIMIT {page}", (device_id, nxt))
            for (seq,) in found:
                if seq != nxt:
                    return nxt - 1
                nxt += 1
            if len(found) < page:
                return nxt - 1

    @staticmethod
    def _offset(batch, now: dt.datetime) -> float | None:
        if not batch.clock:
            return None
        return round((now - clock.parse_iso(batch.clock.wall_utc)).total_seconds(), 3)

    @staticmethod
    def _rows(device: Device, batch, now: dt.datetime) -> list[tuple]:
        """Entry rows with a corrected time: for entries of the boot the batch was sent
        from, the monotonic clock dates them against the server's clock."""
        sample = batch.clock
        received = clock.iso(now)
        rows = []
        for i, e in enumerate(batch.entries):  # times are checked and in our form (kiosk/wire.py)
            corrected, source = e.created_utc, "device"
            if sample and e.boot_id == sample.boot_id and e.monotonic_ns <= sample.monotonic_ns:
                estimate = now - dt.timedelta(microseconds=(sample.monotonic_ns - e.monotonic_ns) // 1000)
                if not e.clock_synced or abs(
                        (estimate - clock.parse_iso(e.created_utc)).total_seconds()) > CLOCK_TRUST_S:
                    corrected, source = clock.iso(estimate), "monotonic"
            elif not e.clock_synced:
                source = "unverified"
            rows.append((e.device_id, e.seq, device.community, device.gate, e.created_utc,
                         corrected, source, e.boot_id, e.monotonic_ns, e.action, e.report,
                         received, i))
        return rows

    def declare_lost(self, device: Device, upto: int) -> dict:
        """The gate lost seqs (acked, upto] for good (a corrupt SD card): record the loss
        for the township and let the contiguous ack pass over it."""
        now = clock.iso(clock.utc_now())
        with self.tx(write=True) as t:
            acked, max_seq = t.row("UPDATE devices SET last_seen_utc = ? WHERE device_id = ? "
                                   "RETURNING acked_seq, max_seq", (now, device.device_id))
            if upto > max_seq:
                raise Rejected(422, "beyond_max_seq",
                               f"the server holds nothing above seq {max_seq}; cannot lose {upto}")
            if upto > acked:
                # The missing ranges are the gaps between the seqs held: work in proportion
                # to the entries stored, never to the width of the range (seq may be 2^40).
                held = t.all("SELECT seq FROM entries WHERE device_id = ? AND seq > ? AND seq <= ? "
                             "ORDER BY seq", (device.device_id, acked, upto))
                lost, nxt = [], acked + 1
                for (s,) in held:
                    if s > nxt:
                        lost.append((device.device_id, nxt, s - 1, now))
                    nxt = s + 1
                if nxt <= upto:
                    lost.append((device.device_id, nxt, upto, now))
                t.many("INSERT INTO seq_losses VALUES (?, ?, ?, ?)", lost)
                acked = self._advance(t, device.device_id, upto)
                t.all("UPDATE devices SET acked_seq = ? WHERE device_id = ?", (acked, device.device_id))
        return {"acked_seq": acked}

    def entries(self, device_id: str | None = None, after_seq: int = 0, limit: int = 1000) -> list[dict]:
        where, params = "seq > ?", list[Any]([after_seq])
        if device_id:
            where += " AND device_id = ?"
            params.append(device_id)
        with self.tx() as t:
            rows = t.all(f"SELECT id, created_utc, corrected_utc, time_source, received_utc, batch_id, "
                         f"batch_index FROM entries WHERE {where} ORDER BY device_id, seq "
                         f"LIMIT {int(limit)}", params)
            records = self._records(t, rows, batch_at=5)
        return [{**rec, "created_utc": created, "server_id": i, "corrected_utc": c, "time_source": s,
                 "received_utc": r} for (i, created, c, s, r, _, _), rec in zip(rows, records, strict=True)]

    @staticmethod
    def _records(t: Tx, rows: list[tuple], batch_at: int) -> list[dict]:
        """The full entry records for rows holding (batch_id, batch_index) at `batch_at`."""
        ids = sorted({r[batch_at] for r in rows})
        bodies: dict[int, list] = {}
        for start in range(0, len(ids), 200):
            bodies.update(batch_entries(t, ids[start:start + 200]))
        return [bodies[r[batch_at]][r[batch_at + 1]] for r in rows]

    # -- alarms committed by any worker (PostgreSQL) ------------------------------------------
    def listen_for_alarms(self) -> None:
        """Ring `alarm_bell` when any worker commits an immediate report: one thread and
        connection per process, started once (with the first open stream), reconnecting
        after a lost connection. SQLite rings it from `ingest` (one process)."""
        if self.dialect != "postgres":
            return
        with self._lock:
            if self._listening:
                return
            self._listening = True
        threading.Thread(target=self._listen, name="alarm-listener", daemon=True).start()

    def _listen(self) -> None:
        import psycopg
        while not self._closed.is_set():
            try:
                with psycopg.connect(self.url, autocommit=True) as conn:
                    conn.execute(f"LISTEN {ALARM_CHANNEL}")
                    self.alarm_bell.ring()  # anything committed while not listening: look now
                    while not self._closed.is_set():  # close() ends it within a second
                        for _ in conn.notifies(timeout=1.0):
                            self.alarm_bell.ring()
            except psycopg.Error as exc:
                if not self._closed.is_set():
                    log.warning("alarm listener: %s; the streams poll until it is back", type(exc).__name__)
            self._closed.wait(1.0)

    # -- request nonces shared between workers ----------------------------------------
    def add_nonce(self, device_id: str, nonce: str, expires: float, now: float,
                  minute: int | None = None, per_minute: int | None = None) -> bool:
        """Remember a request's nonce until `expires` (epoch s); False when this device
        already used it. With `per_minute`, count the device's requests in its signed
        `minute` too: past the bound, 429 `too_many_requests` and the nonce is not kept.
        Expired nonces and counts are deleted in bulk every NONCE_PRUNE_S."""
        if now - self._nonce_pruned > NONCE_PRUNE_S:
            with self.tx(write=True) as t:
                t.all("DELETE FROM nonces WHERE expires < ?", (now,))
                t.all("DELETE FROM request_counts WHERE minute < ?", (int(now // 60) - 60,))
            self._nonce_pruned = now
        with self.tx(write=True, single=self.dialect == "postgres") as t:
            counting = per_minute is not None and minute is not None
            if t.pg:
                # One statement on its own (a round trip, not three): the nonce, the count when
                # it is new, and no fsync at commit: a nonce lost in a crash only reopens its
                # own window. A refused request's nonce is deleted below (its count stays).
                _, fresh, n = t.row(
                    f"WITH quick AS (SELECT {QUICK_COMMIT}), fresh AS (INSERT INTO nonces VALUES (?, ?, ?) "
                    "ON CONFLICT (device_id, nonce) DO NOTHING RETURNING 1), counted AS (INSERT INTO "
                    "request_counts SELECT ?, ?, 1 FROM fresh WHERE ? ON CONFLICT (device_id, minute) "
                    "DO UPDATE SET n = request_counts.n + 1 RETURNING n) "
                    "SELECT (SELECT COUNT(*) FROM quick), EXISTS (SELECT 1 FROM fresh), (SELECT n FROM counted)",
                    (device_id, nonce, expires, device_id, minute or 0, counting))
            else:
                fresh = t.one("INSERT INTO nonces VALUES (?, ?, ?) ON CONFLICT (device_id, nonce) DO NOTHING "
                              "RETURNING 1", (device_id, nonce, expires)) is not None
                n = (t.row("INSERT INTO request_counts VALUES (?, ?, 1) ON CONFLICT (device_id, minute) "
                           "DO UPDATE SET n = request_counts.n + 1 RETURNING n", (device_id, minute))[0]
                     if fresh and counting else None)
            if n is not None and per_minute is not None and n > per_minute:
                if t.pg:
                    t.all("DELETE FROM nonces WHERE device_id = ? AND nonce = ?", (device_id, nonce))
                raise Rejected(429, "too_many_requests", f"more than {per_minute} requests from "
                               "this device in 60 s; slow down")
        return bool(fresh)

    # -- one upload per device at a time, across workers (PostgreSQL) ----------------------
    def take_lane(self, device_id: str) -> tuple | None:
        """Take the device's upload lane: a session advisory lock on this thread's
        connection (released by leave_lane, or by PostgreSQL when the connection goes).
        None when another upload of this device holds it, in any worker."""
        key = int.from_bytes(hashlib.sha256(b"gate upload lane\0" + device_id.encode()).digest()[:8],
                             "big", signed=True)
        with self.tx() as t:
            (got,) = t.row("SELECT pg_try_advisory_lock(?)", (key,))
        return (self._local.conn, key) if got else None

    def leave_lane(self, lane: tuple) -> None:
        conn, key = lane
        if conn.closed:
            return  # the lock went with the connection
        try:
            idle = conn.info.transaction_status == _pg_idle()
            if idle:
                conn.autocommit = True  # one round trip: no BEGIN or COMMIT around it
            with conn.cursor() as cur:
                cur.execute("SELECT pg_advisory_unlock(%s)", (key,))
            if idle:
                conn.autocommit = False
            else:
                conn.commit()
        except Exception:  # noqa: BLE001 - closing the connection releases the lock too
            if getattr(self._local, "conn", None) is conn:
                self._forget()
            else:
                conn.close()

    # -- policy and lists -----------------------------------------------------------
    def publish(self, community: str, name: str, body: Any, audit: AuditStep | None = None) -> dict:
        if name not in DOCUMENTS:
            raise Rejected(404, "unknown_list", f"unknown list {name!r}; known: {', '.join(LISTS)}")
        text = json.dumps(body, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
        now = clock.iso(clock.utc_now())
        with self.tx(write=True) as t:
            cversion = self._touch_community(t, community, now, bump=True)
            old = t.one("SELECT version FROM documents WHERE community = ? AND name = ?",
                        (community, name))
            version = (old[0] if old else 0) + 1
            etag = f'"{name}-{version}-c{cversion}"'
            t.all("INSERT INTO documents VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (community, name) DO "
                  "UPDATE SET version = excluded.version, etag = excluded.etag, body = excluded.body, "
                  "updated_utc = excluded.updated_utc", (community, name, version, etag, text, now))
            published = {"community": community, "name": name, "version": version, "etag": etag}
            if audit:
                audit(t, published)
        return published

    def manifest(self, community: str) -> dict:
        with self.tx() as t:
            row = t.one("SELECT version FROM communities WHERE community = ?", (community,))
            docs = t.all("SELECT name, version, etag FROM documents WHERE community = ? ORDER BY name",
                         (community,))
        version = row[0] if row else 0
        return {"community": community, "version": version, "etag": f'"m{version}"',
                "documents": {n: {"version": v, "etag": e} for n, v, e in docs}}

    def document(self, community: str, name: str) -> dict | None:
        with self.tx() as t:
            row = t.one("SELECT version, etag, body, updated_utc FROM documents "
                        "WHERE community = ? AND name = ?", (community, name))
        if not row:
            return None
        return {"version": row[0], "etag": row[1], "body": row[2], "updated_utc": row[3]}
