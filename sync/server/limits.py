"""Each gate's share of the township server: one upload at a time, requests a minute
(with the nonces), parsed bytes. With one worker they live in this process's memory;
when several workers share one database (`gate server --workers N`; on PostgreSQL also
several machines) they live in the database, and the upload lane in a PostgreSQL
advisory lock or a lock on a file beside the SQLite file, so a gate cannot multiply its
share by reaching another worker. `Server.build` (deps.py) picks one set or the other."""
from __future__ import annotations

import fcntl
import hashlib
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from sync import auth
from sync.server.db import QUICK_COMMIT, Database, StorageError
from sync.server.errors import Problem


def _busy_uploading() -> Problem:
    return Problem(429, "upload_in_progress", "this device already has an upload in progress; "
                   "wait for its answer", {"Retry-After": "1"})


def _too_many_bytes(wait_s: float) -> Problem:
    wait = max(1, int(wait_s + 0.999))
    return Problem(429, "too_many_bytes", f"this device sent more than the server parses for one "
                   f"gate; retry in {wait} s", {"Retry-After": str(wait)})


# -- one upload per device at a time --------------------------------------------------------

class Lanes:
    """This process's uploads in progress, by device."""

    def __init__(self) -> None:
        self._busy: set[str] = set()
        self._lock = threading.Lock()

    @contextmanager
    def hold(self, device_id: str) -> Iterator[None]:
        with self._lock:
            if device_id in self._busy:
                raise _busy_uploading()
            self._busy.add(device_id)
        try:
            yield
        finally:
            with self._lock:
                self._busy.discard(device_id)


class FileLanes:
    """SQLite with several workers: a lock on one byte of a file beside the database,
    the byte chosen by the device's hash. POSIX record locks belong to the process, so
    this process's own uploads are told apart first (`Lanes`); a worker that dies
    releases its locks with it."""

    def __init__(self, path: str):
        self._local = Lanes()
        try:
            self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise StorageError(f"cannot open {path} ({exc.strerror})") from None

    @contextmanager
    def hold(self, device_id: str) -> Iterator[None]:
        byte = int.from_bytes(hashlib.sha256(device_id.encode()).digest()[:5], "big")
        with self._local.hold(device_id):
            try:
                fcntl.lockf(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, byte)
            except OSError:  # held by another worker
                raise _busy_uploading() from None
            try:
                yield
            finally:
                fcntl.lockf(self._fd, fcntl.LOCK_UN, 1, byte)

    def close(self) -> None:
        os.close(self._fd)


class DatabaseLanes:
    """A PostgreSQL advisory lock per device, held by this thread's connection while
    the upload is parsed and stored: every worker sees it, and a worker that dies
    releases it with its connection (no lane is left taken by a crash)."""

    def __init__(self, db: Database):
        self.db = db

    @contextmanager
    def hold(self, device_id: str) -> Iterator[None]:
        lane = self.db.take_lane(device_id)
        if lane is None:
            raise _busy_uploading()
        try:
            yield
        finally:
            self.db.leave_lane(lane)


# -- parsed bytes per device ----------------------------------------------------------------

class ByteBudget:
    """A token bucket of parsed bytes per device: the server's parsing time (which holds
    the GIL) is shared between gates, so one gate cannot crowd out the others."""

    def __init__(self, burst: int, per_s: float):
        self.burst, self.per_s = burst, per_s
        self._left: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def charge(self, device_id: str, nbytes: int, *, refuse: bool = True) -> None:
        """Take `nbytes` from the device's bucket; with `refuse`, raise 429 (taking
        nothing) when the bucket does not hold them."""
        now = time.monotonic()
        with self._lock:
            left, then = self._left.get(device_id, (float(self.burst), now))
            left = min(float(self.burst), left + (now - then) * self.per_s)
            if refuse and nbytes > left:
                self._left[device_id] = (left, now)
                raise _too_many_bytes((nbytes - left) / self.per_s)
            self._left[device_id] = (left - nbytes, now)


class DatabaseBudget:
    """The same bucket in the database, as one time per device (GCRA): `full_at`, when
    the bucket would be full again. Taking n bytes moves it n/rate later; the bytes are
    refused (nothing taken) when that lands more than burst/rate past now. One statement
    on its own transaction, no read first; a row per enrolled device at most."""

    def __init__(self, db: Database, burst: int, per_s: float):
        self.db, self.burst, self.per_s = db, burst, per_s

    def charge(self, device_id: str, nbytes: int, *, refuse: bool = True) -> None:
        now, cost, depth = time.time(), nbytes / self.per_s, self.burst / self.per_s
        with self.db.tx(write=True, single=True) as t:
            # PostgreSQL: a charge lost in a crash only refills one gate's bucket early (no
            # fsync at commit, asked for inside the statement: one round trip fewer)
            quick = f"WITH quick AS (SELECT {QUICK_COMMIT}) " if t.pg else ""
            later = "CASE WHEN byte_budgets.full_at > ? THEN byte_budgets.full_at ELSE ? END + ?"
            charged = t.one(
                f"{quick}INSERT INTO byte_budgets (device_id, full_at) SELECT ?, ?"
                f"{' FROM quick' if t.pg else ''} WHERE NOT ? OR ? <= ? OR EXISTS "
                "(SELECT 1 FROM byte_budgets WHERE device_id = ?) "
                f"ON CONFLICT (device_id) DO UPDATE SET full_at = {later} "
                f"WHERE NOT ? OR {later} <= ? RETURNING full_at",
                (device_id, now + cost, refuse, cost, depth, device_id,
                 now, now, cost, refuse, now, now, cost, now + depth))
        if charged is None:
            with self.db.tx() as t:
                held = t.one("SELECT full_at FROM byte_budgets WHERE device_id = ?", (device_id,))
            raise _too_many_bytes(max(held[0] if held else now, now) + cost - now - depth)


# -- nonces, and requests a minute ----------------------------------------------------------

class DatabaseNonces:
    """The nonce store in the township database, shared by every worker: a row per nonce
    until its timestamp leaves the window, and a count per device and signed minute
    (at most `per_device`, else 429 `too_many_requests`, as auth.NonceCache)."""

    def __init__(self, db: Database, per_device: int = 600):
        self.db, self.per_device = db, per_device

    def add(self, device_id: str, nonce: str, timestamp: float, now: float | None = None) -> bool:
        now = time.time() if now is None else now
        return self.db.add_nonce(device_id, nonce, timestamp + auth.SKEW_S, now,
                                 minute=int(timestamp // 60), per_minute=self.per_device)
