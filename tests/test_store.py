"""The local store on real files: gap-free seqs, hard kills, corruption, retention, a full disk."""
from __future__ import annotations

import datetime as dt
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from multiprocessing import get_context

import pytest
from conftest import ROOT

from kiosk.store import MIGRATIONS, Entry, Store, StoreError, StoreFull

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


def test_corrupt_file_is_moved_aside_and_the_gate_goes_on(tmp_path):
    path = tmp_path / "g.db"
    with Store.open(path) as store:
        for _ in range(3):
            store.record(entry(), device_id=DEVICE)
    with open(path, "r+b") as f:  # scribble over the header: not a database any more
        f.write(b"\x00garbage" * 64)
    with Store.open(path) as store:
        [alarm] = store.alarms()
        assert alarm["kind"] == "store_recovered" and "数据库损坏" in alarm["message"]
        assert store.record(entry(), device_id=DEVICE).seq >= 1
        assert store.conn.execute("SELECT value FROM meta WHERE key='seq_floor_unknown'").fetchone()[0] == "1"
    aside = [p.name for p in tmp_path.iterdir() if ".corrupt-" in p.name]
    assert aside and all(p.startswith("g.db.corrupt-") for p in aside)


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
                store.record(entry(details={"pad": "x" * 2000}), device_id=DEVICE)
                written += 1
        assert store.last_seq(DEVICE) == written == len(store.entries())
        store.conn.execute("PRAGMA max_page_count = 1073741823")  # space freed
        assert store.record(entry(), device_id=DEVICE).seq == written + 1
    assert_consistent(tmp_path / "g.db")


def test_replace_list_is_atomic(tmp_path):
    with Store.open(tmp_path / "g.db") as store:
        store.replace_list("risk_areas", [{"code": "320100", "name": "南京市某区", "level": "high"}],
                          version="7")
        with pytest.raises(sqlite3.IntegrityError):  # a bad row: the old list must survive whole
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
