"""The local store on real files: gap-free seqs, hard kills, corruption, retention, a full disk."""
from __future__ import annotations

import datetime as dt
import errno
import json
import logging
import os
import random
import signal
import sqlite3
import stat
import subprocess
import sys
import time
from multiprocessing import get_context
from pathlib import Path

import pytest

from kiosk.store import (
    MIGRATIONS,
    SQLITE_MAGIC,
    Entry,
    NotAStore,
    Store,
    StoreBusy,
    StoreCorrupt,
    StoreError,
    StoreFull,
    StoreMissing,
)

from conftest import ROOT

DEVICE = "gate-test-1"


def entry(**kw) -> Entry:
    base = dict(gate="east", direction="in", subject_kind="resident", action="admit",
                report="none", reasons=["all_checks_passed"],
                readings=[{"object_c": 34.1, "ambient_c": 12.0, "body_c": 36.4}])
    base.update(kw)
    return Entry(**base)


def assert_consistent(path, device=DEVICE) -> list[int]:
    """The file passes its integrity check and seqs are exactly 1..N with last_seq == N."""
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        seqs = [r[0] for r in conn.execute("SELECT seq FROM entries WHERE device_id=? ORDER BY seq", (device,))]
        last = conn.execute("SELECT last_seq FROM device_seq WHERE device_id=?", (device,)).fetchone()
    finally:
        conn.close()
    assert seqs == list(range(1, len(seqs) + 1))
    assert (last[0] if last else 0) == len(seqs)
    return seqs


def test_record_roundtrip_and_pragmas(tmp_path):
    with Store.open(tmp_path / "g.db") as store:
        e = store.record(entry(masked_name="张*三", person_ref="p1:abc", answers={"symptoms": False},
                               vehicle={"plate": "苏A12345", "resident": True}, mask_confirmed=True),
                         device_id=DEVICE)
        assert e.seq == 1 and e.created_utc.endswith("Z") and e.boot_id and e.monotonic_ns > 0
        assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert store.conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        assert store.conn.execute("PRAGMA busy_timeout").fetchone()[0] >= 1000
        [back] = store.unsynced(DEVICE)
        assert back == e and back.vehicle["plate"] == "苏A12345" and back.mask_confirmed is True
        assert store.schema_version() == len(MIGRATIONS)
    with Store.open(tmp_path / "g.db") as store:  # reopening does not re-run migrations
        assert store.schema_version() == len(MIGRATIONS) and store.last_seq(DEVICE) == 1


def _writer(path: str, n: int) -> None:
    with Store.open(path) as store:
        for _ in range(n):
            store.record(entry(guard=f"w{os.getpid()}"), device_id=DEVICE)


def test_seq_gap_free_under_concurrent_writers(tmp_path):
    path = str(tmp_path / "g.db")
    Store.open(path).close()
    ctx = get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(path, 150)) for _ in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    assert len(assert_consistent(path)) == 600


def test_processes_making_the_same_new_store_at_once_all_get_it(tmp_path):
    path = str(tmp_path / "new" / "g.db")
    ctx = get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(path, 20)) for _ in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    assert len(assert_consistent(path)) == 80
    with Store.open(path) as store:
        assert store.schema_version() == len(MIGRATIONS) and store.alarms() == []


WRITER = """
import sys
from kiosk.store import Entry, Store
store = Store.open(sys.argv[1])
print("ready", flush=True)
while True:
    store.record(Entry(gate="east", direction="in", subject_kind="resident", action="admit",
                       report="none", reasons=["all_checks_passed"]), device_id="gate-test-1")
"""


def test_writer_killed_mid_transaction_leaves_a_consistent_store(tmp_path):
    path = tmp_path / "g.db"
    rng = random.Random(7)
    total = 0
    for _ in range(6):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], cwd=ROOT,
                                stdout=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(ROOT)})
        assert proc.stdout.readline().strip() == b"ready"
        time.sleep(rng.uniform(0.05, 0.4))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        seqs = assert_consistent(path)
        assert len(seqs) >= total  # nothing committed was lost
        total = len(seqs)
    assert total > 0
    with Store.open(path) as store:  # and the gate goes on from there
        assert store.record(entry(), device_id=DEVICE).seq == total + 1


def damage(path, at: int = len(SQLITE_MAGIC), size: int = 512) -> None:
    """Scribble over a SQLite file after its header's magic: still SQLite, but corrupt."""
    with open(path, "r+b") as f:
        f.seek(at)
        f.write(b"\x00garbage" * (size // 8))


def siblings(path) -> list[str]:
    return sorted(p.name for p in path.parent.iterdir() if p.name != path.name)


def test_corrupt_file_is_moved_aside_and_the_gate_goes_on(tmp_path):
    path = tmp_path / "g.db"
    with Store.open(path) as store:
        for _ in range(3):
            store.record(entry(), device_id=DEVICE)
    damage(path)
    with pytest.raises(StoreCorrupt):  # a command that only looks replaces nothing
        Store.open(path, create=False)
    assert not [n for n in siblings(path) if ".corrupt-" in n]
    with Store.open(path) as store:
        [alarm] = store.alarms()
        assert alarm["kind"] == "store_recovered" and "数据库损坏" in alarm["message"]
        assert store.record(entry(), device_id=DEVICE).seq >= 1
        assert store.meta("seq_floor_unknown") == "1"
    aside = [n for n in siblings(path) if ".corrupt-" in n]
    assert aside and all(n.startswith("g.db.corrupt-") for n in aside)
    assert not (tmp_path / "g.db.replaced").exists()  # the note is gone once recorded
    with Store.open(path) as store:  # raised once, not at every start
        assert len(store.alarms()) == 1


def test_damaged_page_keeps_seqs_above_what_was_salvaged(tmp_path):
    path = tmp_path / "g.db"
    with Store.open(path) as store:
        for _ in range(400):
            store.record(entry(details={"pad": "x" * 200}), device_id=DEVICE)
        store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        page = store.conn.execute("PRAGMA page_size").fetchone()[0]
        root = store.conn.execute(
            "SELECT rootpage FROM sqlite_master WHERE name='entries_created'").fetchone()[0]
    with open(path, "r+b") as f:  # break one index page; the table itself stays readable
        f.seek((root - 1) * page)
        f.write(b"\xff" * page)
    with Store.open(path) as store:
        assert store.alarms()[0]["kind"] == "store_recovered"
        assert store.record(entry(), device_id=DEVICE).seq == 401
        assert store.conn.execute("SELECT value FROM meta WHERE key='seq_floor_unknown'").fetchone()[0] == "0"


def test_retention_never_purges_unacknowledged(tmp_path):
    now = dt.datetime(2026, 11, 25, tzinfo=dt.UTC)
    with Store.open(tmp_path / "g.db") as store:
        for days_ago in (60, 40, 30, 5, 1):
            store.record(entry(), device_id=DEVICE, now=now - dt.timedelta(days=days_ago))
        store.mark_synced(DEVICE, 2, at=now)  # the server holds the two oldest
        assert store.purge(28, now=now) == 2
        left = [e.seq for e in store.entries()]
        assert left == [3, 4, 5]  # seq 3 is 30 days old but the server never acknowledged it
        assert store.purge(0, now=now + dt.timedelta(days=1)) == 0
        store.mark_synced(DEVICE, 5, at=now)
        assert store.purge(28, now=now) == 1 and [e.seq for e in store.entries()] == [4, 5]
        # seqs never repeat after a purge
        assert store.record(entry(), device_id=DEVICE).seq == 6
        with pytest.raises(StoreError):
            store.purge(-1)


def test_full_disk_is_a_named_error_and_loses_nothing(tmp_path):
    with Store.open(tmp_path / "g.db") as store:
        store.record(entry(), device_id=DEVICE)
        pages = store.conn.execute("PRAGMA page_count").fetchone()[0]
        store.conn.execute(f"PRAGMA max_page_count = {pages + 2}")
        written = 1
        with pytest.raises(StoreFull):
            for _ in range(10_000):
                store.record(entry(details={f"pad{i}": "x" * 400 for i in range(5)}), device_id=DEVICE)
                written += 1
        assert store.last_seq(DEVICE) == written == len(store.entries())
        store.conn.execute("PRAGMA max_page_count = 1073741823")  # space freed
        assert store.record(entry(), device_id=DEVICE).seq == written + 1
    assert_consistent(tmp_path / "g.db")


def test_replace_list_is_atomic(tmp_path):
    with Store.open(tmp_path / "g.db") as store:
        store.replace_list("risk_areas", [{"code": "320100", "name": "南京市某区", "level": "high"}],
                          version="7")
        with pytest.raises(StoreError, match="risk_areas: row 1: column 'level'"):  # the old list survives
            store.replace_list("risk_areas", [{"code": "1", "name": "a", "level": "medium"},
                                              {"code": "2", "name": "b", "level": "extreme"}])
        rows = [dict(r) for r in store.conn.execute("SELECT code, level FROM risk_areas")]
        assert rows == [{"code": "320100", "level": "high"}]
        assert store.list_version("risk_areas")["version"] == "7"
        with pytest.raises(StoreError):
            store.replace_list("entries", [])


def test_policy_and_alarms(tmp_path):
    with Store.open(tmp_path / "g.db") as store:
        store.set_policy(risk_level="medium", fever_c=37.3)
        assert store.policy() == {"risk_level": "medium", "fever_c": 37.3}
        a = store.raise_alarm("fever", "东门 发热 38.1")
        store.acknowledge_alarm(a)
        assert store.alarms() == [] and len(store.alarms(include_acknowledged=True)) == 1


def test_gate_db_commands(gate, tmp_path):
    db = tmp_path / "g.db"
    with Store.open(db) as store:
        store.record(entry(), device_id=DEVICE)
    out = gate("db", "--db", str(db), "stats")
    assert out.returncode == 0 and '"unsynced": 1' in out.stdout
    out = gate("db", "--db", str(db), "purge", "--days", "0")
    assert out.returncode == 0 and '"purged": 0' in out.stdout


# -- a healthy store is never set aside ---------------------------------------------------

def snapshot(folder) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def test_a_file_that_is_not_sqlite_is_refused_and_left_alone(tmp_path):
    notes = tmp_path / "notes.md"
    notes.write_text("# 值班记录\n东门 08:00 交接\n", encoding="utf-8")
    before = snapshot(tmp_path)
    for create in (True, False):
        with pytest.raises(NotAStore, match="notes.md"):
            Store.open(notes, create=create)
    assert snapshot(tmp_path) == before  # not renamed, not rewritten, nothing beside it
    with pytest.raises(NotAStore):
        Store.open(tmp_path, create=True)  # a folder


def test_another_programs_database_is_refused_and_not_converted(tmp_path):
    other = tmp_path / "photos.sqlite"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE photos (id INTEGER PRIMARY KEY, name TEXT)")
    conn.execute("INSERT INTO photos (name) VALUES ('门口.jpg')")
    conn.commit()
    conn.close()
    before = snapshot(tmp_path)
    with pytest.raises(NotAStore, match="photos.sqlite"):
        Store.open(other)
    assert snapshot(tmp_path) == before  # still in its own journal mode, nothing added
    conn = sqlite3.connect(other)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    conn.close()


HOLDER = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("PRAGMA locking_mode = EXCLUSIVE")  # no reader or writer gets in
conn.execute("BEGIN EXCLUSIVE")
conn.execute("INSERT INTO alarms (created_utc, kind, message) VALUES ('2026-11-30T00:00:00Z', 'x', 'held')")
print("holding", flush=True)
sys.stdin.readline()
conn.execute("ROLLBACK")
"""


def test_a_lock_held_by_another_process_waits_then_fails_and_moves_nothing(tmp_path):
    path = tmp_path / "g.db"
    with Store.open(path) as store:
        for _ in range(5):
            store.record(entry(), device_id=DEVICE)
    before = snapshot(tmp_path)
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(path)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "holding"
        for create in (True, False):
            started = time.monotonic()
            with pytest.raises(StoreBusy, match="g.db"):
                Store.open(path, create=create, busy_timeout_ms=400)
            assert time.monotonic() - started >= 0.35  # it waited for the lock first
        assert not [n for n in siblings(path) if ".corrupt-" in n or n.endswith(".replaced")]
    finally:
        holder.communicate("\n", timeout=30)
    assert holder.returncode == 0
    assert snapshot(tmp_path).keys() == before.keys()
    with Store.open(path) as store:  # the same store, whole, no alarm
        assert store.last_seq(DEVICE) == 5 and len(store.entries()) == 5 and store.alarms() == []


WRITE_HOLDER = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN IMMEDIATE")
conn.execute("UPDATE device_seq SET last_seq = last_seq")
print("holding", flush=True)
sys.stdin.readline()
conn.execute("COMMIT")
"""


def test_a_writer_elsewhere_lets_the_store_open_and_a_write_wait_then_fail(tmp_path):
    path = tmp_path / "g.db"
    with Store.open(path) as store:
        store.record(entry(), device_id=DEVICE)
    holder = subprocess.Popen([sys.executable, "-c", WRITE_HOLDER, str(path)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "holding"
        with Store.open(path, busy_timeout_ms=300) as store:  # WAL: reading is never blocked
            assert store.last_seq(DEVICE) == 1
            with pytest.raises(StoreBusy):
                store.record(entry(), device_id=DEVICE)
    finally:
        holder.communicate("\n", timeout=30)
    with Store.open(path) as store:
        assert store.record(entry(), device_id=DEVICE).seq == 2 and store.alarms() == []


LOCK_PROBE = """
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
try:  # SQLite's shared-lock bytes: every open connection holds a read lock on them
    fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 510, 0x40000002, os.SEEK_SET)
    print("free")
except OSError:
    print("held")
"""


def test_opening_the_store_again_in_the_same_process_keeps_the_first_ones_locks(tmp_path):
    """Closing any descriptor of a file drops all of the process's POSIX locks on it. If a
    second open read the header with open()/close(), another process could take the store
    for unused and checkpoint or delete its WAL under the first (a fault-suite run did)."""
    path = tmp_path / "g.db"

    def probe() -> str:
        return subprocess.run([sys.executable, "-c", LOCK_PROBE, str(path)], capture_output=True,
                              text=True, check=True).stdout.strip()

    with Store.open(path) as first:
        first.record(entry(), device_id=DEVICE)
        assert probe() == "held"
        with Store.open(path) as second:  # e.g. the sync thread's own connection
            assert probe() == "held"
            second.record(entry(), device_id=DEVICE)
        assert probe() == "held"
        Store.open(path, create=False).close()
        assert probe() == "held"
        assert first.record(entry(), device_id=DEVICE).seq == 3
    assert probe() == "free"  # and nothing is held once every store is closed
    other = sqlite3.connect(path)  # a handle that is not a Store (a script, a test helper)
    other.execute("SELECT COUNT(*) FROM entries").fetchone()
    assert probe() == "held"
    with Store.open(path) as third:
        assert probe() == "held"
        third.record(entry(), device_id=DEVICE)
    assert probe() == "held"
    other.close()
    assert probe() == "free"
    notes = tmp_path / "notes.md"
    notes.write_text("not a store")
    with pytest.raises(NotAStore):  # the header is still read for a file not open here
        Store.open(notes)


@pytest.fixture
def small_disk(tmp_path):
    """A real 1 MiB filesystem (tmpfs), so the disk really fills. Needs root to mount."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs", str(mnt)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here ({done.stderr.strip()}); "
                    "test_full_disk_is_a_named_error_and_loses_nothing covers SQLITE_FULL")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=True)


def fill_disk(folder) -> None:
    with open(folder / "filler", "wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 4096)
                f.flush()
        except OSError as exc:
            assert exc.errno == errno.ENOSPC


def test_a_full_disk_fails_with_store_full_and_leaves_the_store_where_it_was(small_disk):
    path = small_disk / "g.db"
    with Store.open(path) as store:
        for _ in range(20):
            store.record(entry(details={"pad": "x" * 500}), device_id=DEVICE)
        store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        fill_disk(small_disk)
        with pytest.raises(StoreFull):  # the running gate: no record, so no opening
            store.record(entry(), device_id=DEVICE)
    for _ in range(3):  # the gate restarting on a full disk, again and again
        try:
            with Store.open(path) as store, pytest.raises(StoreFull):
                store.record(entry(), device_id=DEVICE)
        except StoreFull:
            pass  # or it cannot even open: either way a named error
        assert not [n for n in siblings(path) if ".corrupt-" in n or n.endswith(".replaced")]
    with pytest.raises(StoreFull):  # a new store cannot be made either
        Store.open(small_disk / "new.db")
    (small_disk / "filler").unlink()  # space freed
    with Store.open(path) as store:  # the same store: every entry, no alarm, seqs go on
        assert store.alarms() == [] and store.meta("seq_floor_unknown") is None
        assert len(store.entries()) == 20 == store.last_seq(DEVICE)
        assert store.record(entry(), device_id=DEVICE).seq == 21
    assert_consistent(path)


def test_a_corrupt_store_on_a_full_disk_stays_put_until_there_is_room(small_disk):
    path = small_disk / "g.db"
    with Store.open(path) as store:
        for _ in range(3):
            store.record(entry(), device_id=DEVICE)
        store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    damage(path)
    fill_disk(small_disk)
    with pytest.raises(StoreFull):  # the note of the move cannot be written: nothing moves
        Store.open(path)
    assert sorted(snapshot(small_disk)) == ["filler", "g.db"]
    (small_disk / "filler").unlink()
    with Store.open(path) as store:
        assert [a["kind"] for a in store.alarms()] == ["store_recovered"]


CRASH_AFTER_MOVE = """
import os, sys
import kiosk.store as s
def crash(*args, **kw):
    os._exit(9)  # power cut: the store was moved aside, the new one has no table yet
s._connect = crash
s.Store.open(sys.argv[1])
"""


def test_a_crash_between_the_move_and_the_new_store_still_ends_with_the_alarm(tmp_path):
    path = tmp_path / "g.db"
    with Store.open(path) as store:
        for _ in range(7):
            store.record(entry(), device_id=DEVICE)
        store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        page = store.conn.execute("PRAGMA page_size").fetchone()[0]
        root = store.conn.execute("SELECT rootpage FROM sqlite_master WHERE name='entries_created'").fetchone()[0]
    with open(path, "r+b") as f:  # an index page broken: the seqs can still be read
        f.seek((root - 1) * page)
        f.write(b"\xff" * page)
    crashed = subprocess.run([sys.executable, "-c", CRASH_AFTER_MOVE, str(path)], cwd=ROOT,
                             env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert crashed.returncode == 9
    assert path.exists() and path.stat().st_size == 0  # the empty leftover
    note = tmp_path / "g.db.replaced"
    assert stat.S_IMODE(note.stat().st_mode) == 0o600
    with pytest.raises(NotAStore):  # a look at the leftover does not make it a store
        Store.open(path, create=False)
    with Store.open(path) as store:
        assert [a["kind"] for a in store.alarms()] == ["store_recovered"]
        assert store.record(entry(), device_id=DEVICE).seq == 8  # salvaged: no seq repeats
        assert store.meta("seq_floor_unknown") == "0"
    assert not note.exists()


def test_an_empty_file_beside_a_store_set_aside_is_a_replacement(tmp_path):
    """What an older version left after a full disk: the entries in .corrupt-*, an empty
    file in their place, and no note. It must not become a new store silently."""
    path = tmp_path / "g.db"
    with Store.open(path) as store:
        for _ in range(4):
            store.record(entry(), device_id=DEVICE)
    path.rename(tmp_path / "g.db.corrupt-20261101T000000")
    path.write_bytes(b"")
    with Store.open(path) as store:
        [alarm] = store.alarms()
        assert alarm["kind"] == "store_recovered" and "g.db.corrupt-20261101T000000" in alarm["message"]
        assert store.meta("seq_floor_unknown") == "1"  # the sync client asks the server


def test_an_empty_file_alone_is_a_new_store(tmp_path):
    path = tmp_path / "g.db"
    path.write_bytes(b"")  # e.g. the very first start was cut short
    with Store.open(path) as store:
        assert store.alarms() == [] and store.record(entry(), device_id=DEVICE).seq == 1


def test_looking_never_creates_a_store_or_its_folders(tmp_path):
    with pytest.raises(StoreMissing, match="typo"):
        Store.open(tmp_path / "typo" / "dir" / "x.db", create=False)
    with pytest.raises(StoreMissing):
        Store.open(tmp_path / "x.db", create=False)
    assert list(tmp_path.iterdir()) == []


def test_store_files_are_private(tmp_path):
    old = os.umask(0)  # even with a permissive umask
    try:
        path = tmp_path / "new" / "g.db"
        with Store.open(path) as store:
            store.record(entry(), device_id=DEVICE)
            for name in ("g.db", "g.db-wal", "g.db-shm"):
                assert stat.S_IMODE((path.parent / name).stat().st_mode) == 0o600, name
        damage(path)
        with Store.open(path):
            pass
    finally:
        os.umask(old)
    aside = [p for p in path.parent.iterdir() if ".corrupt-" in p.name]
    assert aside and all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in aside)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_world_readable_store_is_tightened_at_start(tmp_path, caplog):
    path = tmp_path / "g.db"
    with Store.open(path) as store:
        store.record(entry(), device_id=DEVICE)
    os.chmod(path, 0o644)
    with caplog.at_level(logging.WARNING, logger="kiosk.store"), Store.open(path) as store:
        store.record(entry(), device_id=DEVICE)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(Path(f"{path}-wal").stat().st_mode) == 0o600
    assert any("readable by others" in r.getMessage() and "g.db" in r.getMessage() for r in caplog.records)


def test_a_list_with_an_unknown_column_names_it(tmp_path):
    with Store.open(tmp_path / "g.db") as store:
        store.replace_list("vehicles", [{"plate": "苏A12345", "household_id": None}])
        with pytest.raises(StoreError, match="'colour'"):
            store.replace_list("vehicles", [{"plate": "苏B1", "colour": "red"}])
        assert [r["plate"] for r in store.conn.execute("SELECT plate FROM vehicles")] == ["苏A12345"]
        # a trust-list entry travels as JSON text (docs/sync.md), stored as it came
        store.replace_list("trust_keys", [{"kid": "a2lk", "entry": '{"public_key": "PEM"}', "purposes": "health"}])
        row = store.conn.execute("SELECT entry, purposes FROM trust_keys").fetchone()
        assert json.loads(row["entry"]) == {"public_key": "PEM"} and row["purposes"] == "health"


# -- gate db ---------------------------------------------------------------------------------

def one_line_error(out, *words) -> None:
    assert out.returncode == 2, (out.stdout, out.stderr)
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gate: "), out.stderr
    assert "Traceback" not in out.stderr
    for word in words:
        assert word in lines[0]


def test_gate_db_refuses_what_is_not_a_store_and_creates_nothing(gate, tmp_path):
    notes = tmp_path / "notes.md"
    notes.write_text("# notes\n")
    for action in ("stats", "check", "alarms", "entries", "purge"):
        one_line_error(gate("db", "--db", str(notes), action), "notes.md")
        one_line_error(gate("db", action, "--db", str(tmp_path / "typo" / "dir" / "x.db")), "x.db")
    assert notes.read_text() == "# notes\n" and [p.name for p in tmp_path.iterdir()] == ["notes.md"]


def test_gate_db_errors_are_one_line_in_the_users_language(gate, tmp_path):
    db = tmp_path / "g.db"
    with Store.open(db) as store:
        store.record(entry(), device_id=DEVICE)
    one_line_error(gate("db", "purge", "--days", "-1", "--db", str(db)), "保留天数")
    one_line_error(gate("db", "purge", "--days", "nan", "--db", str(db), env={"GATE_LANG": "en"}),
                   "retention days")
    one_line_error(gate("db", "alarms", "--ack", "7", "--db", str(db), env={"GATE_LANG": "en"}), "no open alarm")
    one_line_error(gate("db", "entries", "--after", str(2**64), "--db", str(db)))
    out = gate("db", "alarms", "--db", str(db))
    assert out.returncode == 0 and out.stdout == "" and "没有未确认的告警" in out.stderr
    out = gate("db", "alarms", "--db", str(db), env={"GATE_LANG": "en"})
    assert out.returncode == 0 and "no open alarms" in out.stderr and "None" not in out.stdout + out.stderr


def test_gate_db_entries(gate, tmp_path):
    db = tmp_path / "g.db"
    with Store.open(db) as store:
        store.record(entry(masked_name="张*三", person_ref="p1:secret", code_kind="health", code_colour="green",
                           code_result="valid"), device_id=DEVICE)
        store.record(entry(direction="out", subject_kind="visitor", action="refuse", report="immediate",
                           reasons=["invalid_code"], code_kind="health", code_result="too_old", readings=[]),
                     device_id=DEVICE)
        store.mark_synced(DEVICE, 1)
    out = gate("db", "entries", "--json", "--db", str(db))
    assert out.returncode == 0, out.stderr
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert [r["seq"] for r in rows] == [1, 2]
    first = rows[0]
    assert (first["direction"], first["subject_kind"], first["code_kind"], first["code_colour"],
            first["code_result"], first["action"], first["reasons"], first["report"], first["masked_name"],
            first["synced"]) == ("in", "resident", "health", "green", "valid", "admit", ["all_checks_passed"],
                                 "none", "张*三", True)
    assert first["readings"][0]["body_c"] == 36.4 and first["at"].endswith("Z")
    assert "secret" not in out.stdout  # no person reference leaves the store this way
    out = gate("db", "--db", str(db), "entries", "--json", "--after", "1")
    assert [json.loads(line)["seq"] for line in out.stdout.splitlines()] == [2]
    out = gate("db", "entries", "--db", str(db))
    header, one, two = out.stdout.splitlines()
    assert header.split("\t")[0] == "序号" and "36.4" in one and "放行" in one and "绿码" in one
    assert "不予放行" in two and "已超时" in two and "立即上报" in two
    out = gate("db", "entries", "--db", str(db), env={"GATE_LANG": "en"})
    assert "Admit" in out.stdout and "too old" in out.stdout
    out = gate("db", "entries", "--after", "2", "--db", str(db))
    assert out.returncode == 0 and out.stdout == "" and "没有记录" in out.stderr


def test_gate_db_check_reports_a_corrupt_store_and_moves_nothing(gate, tmp_path):
    db = tmp_path / "g.db"
    with Store.open(db) as store:
        store.record(entry(), device_id=DEVICE)
    out = gate("db", "check", "--db", str(db))
    assert out.returncode == 0 and json.loads(out.stdout)["integrity"] == "ok"
    damage(db)
    one_line_error(gate("db", "check", "--db", str(db), env={"GATE_LANG": "en"}), "integrity check")
    assert [p.name for p in tmp_path.iterdir()] == ["g.db"]


def test_an_entry_the_township_would_refuse_is_never_recorded(tmp_path):
    """The wire contract's bounds hold on the gate too: no record that can never sync."""
    with Store.open(tmp_path / "g.db") as store:
        with pytest.raises(StoreError, match="reasons"):
            store.record(entry(reasons=["x"] * 1000), device_id=DEVICE)
        with pytest.raises(StoreError, match="readings"):
            store.record(entry(readings=[{"body_c": 36.5}] * 100), device_id=DEVICE)
        assert store.entries() == [] and store.last_seq(DEVICE) == 0  # rolled back: no seq used
        assert store.record(entry(), device_id=DEVICE).seq == 1
