"""The sync client against a real township server on 127.0.0.1: backlog, ordering,
crash resume, recovery after a rebuilt store, lists down, clock, outages."""
from __future__ import annotations

import dataclasses
import json
import os
import random
import sqlite3
import threading
import time

import pytest

from kiosk.store import Store
from sync.admin import Admin
from sync.backoff import Backoff
from sync.client import SyncClient, SyncConfig, SyncError, enroll
from sync.server import Settings
from sync.testing import ServerThread, fill, free_port

TOKEN = "client-test-admin-token"


@pytest.fixture
def server(tmp_path):
    with ServerThread(Settings(db_url=str(tmp_path / "township.db"), admin_token=TOKEN)) as srv:
        yield srv


@pytest.fixture
def admin(server):
    a = Admin(server.url, TOKEN)
    yield a
    a.close()


@pytest.fixture
def creds(server, admin):
    return enroll(server.url, admin.enrollment("river-garden", "east")["token"])


@pytest.fixture
def store(tmp_path):
    s = Store.open(tmp_path / "gate.db")
    s.conn.execute("PRAGMA synchronous = OFF")  # test speed only
    yield s
    s.close()


def client_for(store, creds, **kw):
    return SyncClient(store, SyncConfig(creds, **kw))


def same_entries(admin, store, device_id):
    """Server and gate hold exactly the same entries, each once."""
    server_side = [(e["seq"], e["boot_id"], e["monotonic_ns"]) for e in admin.entries(device_id)]
    gate_side = [(e.seq, e.boot_id, e.monotonic_ns) for e in store.entries("device_id = ?", (device_id,))]
    assert len(server_side) == len(set(server_side)), "duplicates on the server"
    assert sorted(server_side) == sorted(gate_side)


def test_backlog_drains_in_batches_with_progress(server, admin, creds, store):
    fill(store, creds.device_id, 1234, random.Random(1), report="none")
    seen = []
    client = SyncClient(store, SyncConfig(creds, batch_size=500), progress=lambda d, t: seen.append((d, t)))
    r = client.run_once()
    assert (r.uploaded, r.acked_seq, r.backlog) == (1234, 1234, 0)
    assert seen == [(500, 1234), (1000, 1234), (1234, 1234)]
    assert store.unsynced_count(creds.device_id) == 0
    same_entries(admin, store, creds.device_id)
    assert client.run_once().uploaded == 0
    client.close()


def test_immediate_reports_reach_the_township_first(server, admin, creds, store):
    fill(store, creds.device_id, 1100, random.Random(2), report="none")
    alarm = fill(store, creds.device_id, 1, report="immediate")[0]
    fill(store, creds.device_id, 50, report="daily")
    client = client_for(store, creds, batch_size=500)
    client.run_once()
    got = {e["seq"]: e["server_id"] for e in admin.entries(creds.device_id)}
    assert got[alarm.seq] < got[1]  # stored before the first in-order batch
    assert [a["seq"] for a in admin.alarms()["alarms"]] == [alarm.seq]
    same_entries(admin, store, creds.device_id)
    client.close()


def test_resume_after_a_crash_trusts_the_servers_ack(server, admin, creds, store):
    fill(store, creds.device_id, 700, random.Random(3))
    client_for(store, creds).run_once()
    # A crash between the server's commit and the gate's mark: the marks are lost.
    store.conn.execute("UPDATE entries SET synced_at = NULL")
    fill(store, creds.device_id, 10)
    r = client_for(store, creds).run_once()
    assert r.uploaded == 10  # only the new ones travel again
    same_entries(admin, store, creds.device_id)


def test_rebuilt_store_continues_above_the_servers_seqs(server, admin, creds, tmp_path):
    old = Store.open(tmp_path / "old.db")
    fill(old, creds.device_id, 5, random.Random(4), report="none")
    fill(old, creds.device_id, 2, report="none")
    alarm = fill(old, creds.device_id, 1, report="immediate")[0]  # seq 8
    c = client_for(old, creds)
    c.measure_clock()
    c._send(old.entries("seq <= 5"), priority=False)
    c._send([alarm], priority=True)
    old.close()
    # The SD card dies: seqs 6 and 7 never reach the township; the store is rebuilt empty.
    path = tmp_path / "gate.db"
    path.write_bytes(b"SQLite format 3\x00" + b"\x00garbage" * 512)  # a SQLite header, the rest damaged
    store = Store.open(path)
    assert store.meta("seq_floor_unknown") == "1"
    fresh = fill(store, creds.device_id, 3, report="none")
    assert [e.seq for e in fresh] == [1, 2, 3]
    r = client_for(store, creds).run_once()
    assert [e.seq for e in store.entries()] == [9, 10, 11]
    assert (r.uploaded, r.acked_seq, r.backlog) == (3, 11, 0)
    assert [e["seq"] for e in admin.entries(creds.device_id)] == [1, 2, 3, 4, 5, 8, 9, 10, 11]
    [c] = [c for c in admin.daily_report()["communities"] if c["community"] == "river-garden"]
    assert c["lost_seqs"] == [{"device_id": creds.device_id, "from": 6, "to": 7}]
    store.close()


def test_policy_and_lists_come_down_atomically_and_only_when_changed(server, admin, creds, store):
    admin.set_policy("river-garden", risk_level="medium", fever_c=37.3, visitors_allowed=False)
    admin.put_list("river-garden", "risk_areas", [{"code": "420100", "name": "武汉市", "level": "high"}])
    admin.put_list("river-garden", "revoked_passes", [{"serial": "P-0007", "reason": "moved"}])
    admin.put_list("pine-court", "risk_areas", [{"code": "110105", "name": "朝阳区", "level": "medium"}])
    client = client_for(store, creds)
    assert client.run_once().pulled == ["policy", "revoked_passes", "risk_areas"]
    assert store.policy() == {"risk_level": "medium", "fever_c": 37.3, "visitors_allowed": False}
    assert [r["code"] for r in store.db["risk_areas"].rows] == ["420100"]  # not pine-court's
    assert client.run_once().pulled == []  # one 304 round trip
    admin.put_list("river-garden", "risk_areas", [])
    assert client.run_once().pulled == ["risk_areas"]
    assert store.db["risk_areas"].count == 0 and store.db["revoked_passes"].count == 1
    admin.set_policy("river-garden", risk_level="low")  # the township drops the visitor rule
    assert client.run_once().pulled == ["policy"]
    assert store.policy() == {"risk_level": "low"}
    client.close()


def test_inconsistent_lists_change_nothing_and_uploads_still_go(server, admin, creds, store):
    admin.put_list("river-garden", "residents", [
        {"person_ref": "p1:aa", "household_id": "h1", "masked_name": "张*", "role": "owner"}])
    fill(store, creds.device_id, 20)
    client = client_for(store, creds)
    with pytest.raises(SyncError, match="missing households row"):
        client.run_once()
    assert store.unsynced_count(creds.device_id) == 0  # pushed before pulling
    assert store.db["residents"].count == 0
    admin.put_list("river-garden", "households", [{"id": "h1", "address": "3-2-501"}])
    assert client.run_once().pulled == ["households", "residents"]
    client.close()


def test_clock_offset_is_measured(server, creds, store):
    client = client_for(store, creds)
    offset = client.measure_clock()
    assert abs(offset) < 5  # same machine
    client.close()


def test_locked_server_database_is_a_503_and_the_gate_catches_up(tmp_path, store):
    db = tmp_path / "township.db"
    with ServerThread(Settings(db_url=str(db), admin_token=TOKEN, busy_timeout_ms=300)) as srv:
        admin = Admin(srv.url, TOKEN)
        creds = enroll(srv.url, admin.enrollment("c", "g")["token"])
        fill(store, creds.device_id, 50)
        client = client_for(store, creds)
        locker = sqlite3.connect(db, isolation_level=None)
        locker.execute("BEGIN EXCLUSIVE")
        try:
            with pytest.raises(SyncError) as err:
                client.run_once()
            assert err.value.retry and err.value.reason == "storage_busy"
            fill(store, creds.device_id, 25)  # the gate keeps recording meanwhile
        finally:
            locker.execute("ROLLBACK")
            locker.close()
        assert client.run_once().backlog == 0
        same_entries(admin, store, creds.device_id)
        client.close()
        admin.close()


def test_full_server_disk_is_a_503_and_the_gate_catches_up_later(tmp_path, store):
    db = str(tmp_path / "township.db")
    # room for two or three batches of 500 (each kept as its gzip)
    with ServerThread(Settings(db_url=db, admin_token=TOKEN, max_db_mb=0.5)) as srv:
        admin = Admin(srv.url, TOKEN)
        creds = enroll(srv.url, admin.enrollment("c", "g")["token"])
        fill(store, creds.device_id, 3000, random.Random(5), report="none")
        client = client_for(store, creds)
        with pytest.raises(SyncError) as err:
            client.run_once()
        assert err.value.retry and err.value.reason == "storage_full"
        stored = len(admin.entries(creds.device_id))
        assert 0 < stored < 3000 and stored % 500 == 0  # whole batches only
        assert store.unsynced_count(creds.device_id) == 3000 - stored
        fill(store, creds.device_id, 100)  # the gate keeps working
        client.close()
        admin.close()
    # The township frees space (restarts without the limit); the gate catches up by itself.
    with ServerThread(Settings(db_url=db, admin_token=TOKEN)) as srv:
        client = client_for(store, dataclasses.replace(creds, server=srv.url))
        assert client.run_once().backlog == 0
        admin = Admin(srv.url, TOKEN)
        same_entries(admin, store, creds.device_id)
        client.close()
        admin.close()


def test_offline_gate_catches_up_by_itself(tmp_path, store):
    """run_forever with the township down: back-off, then the backlog drains unaided."""
    port = free_port()
    settings = Settings(db_url=str(tmp_path / "township.db"), admin_token=TOKEN)
    with ServerThread(settings, port=port) as srv:
        admin = Admin(srv.url, TOKEN)
        creds = enroll(srv.url, admin.enrollment("c", "g")["token"])
        admin.close()
    own = Store.open(store.path)  # the sync thread has its own connection, as in the daemon
    client = SyncClient(own, SyncConfig(creds, interval_s=0.05, backoff_base_s=0.05, backoff_cap_s=0.3))
    stop = threading.Event()
    thread = client.start_thread(stop)
    try:
        fill(store, creds.device_id, 1500, random.Random(6))  # a day offline
        deadline = time.monotonic() + 30
        while client.backoff.attempt < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert client.backoff.attempt >= 2  # it has been failing and backing off
        assert store.unsynced_count(creds.device_id) == 1500
        with ServerThread(settings, port=port) as srv:
            # the day's backlog drains while the gate is still in use...
            deadline = time.monotonic() + 60
            added = 0
            while store.unsynced_count(creds.device_id) > added and time.monotonic() < deadline:
                fill(store, creds.device_id, 1)
                added += 1
                time.sleep(0.05)
            # ...and once the queue pauses, nothing is left behind
            while store.unsynced_count(creds.device_id) and time.monotonic() < deadline + 30:
                time.sleep(0.05)
            assert store.unsynced_count(creds.device_id) == 0
            stop.set()
            thread.join(10)
            admin = Admin(srv.url, TOKEN)
            same_entries(admin, store, creds.device_id)
            admin.close()
    finally:
        stop.set()
        client.close()
        own.close()


def test_backoff_is_full_jitter_and_capped():
    b = Backoff(base_s=0.5, cap_s=8.0, rng=random.Random(7))
    ceilings = []
    for _ in range(12):
        ceilings.append(b.ceiling())
        delay = b.next_delay()
        assert 0 <= delay <= ceilings[-1]
    assert ceilings[:5] == [0.5, 1.0, 2.0, 4.0, 8.0] and set(ceilings[5:]) == {8.0}
    delays = [Backoff(0.5, 8.0, attempt=10, rng=random.Random(i)).next_delay() for i in range(200)]
    assert min(delays) < 1.0 and max(delays) > 7.0  # spread over the whole range
    b.reset()
    assert b.ceiling() == 0.5


def test_cli_enroll_sync_and_report(server, admin, gate, tmp_path):
    store = Store.open(tmp_path / "cli.db")
    fill(store, "river-garden.west", 30)
    store.close()
    token = admin.enrollment("river-garden", "west")["token"]
    env = {"GATE_CONFIG": os.devnull, "GATE_ADMIN_TOKEN": TOKEN}
    creds_file = tmp_path / "creds.json"
    r = gate("enroll", "--server", server.url, "--token", token, "--credentials", str(creds_file), env=env)
    assert r.returncode == 0, r.stderr
    assert "river-garden.west" in r.stdout and token not in r.stdout
    assert oct(os.stat(creds_file).st_mode & 0o777) == "0o600"
    assert json.loads(creds_file.read_text())["device_id"] == "river-garden.west"
    r = gate("enroll", "--server", server.url, "--token", token, "--credentials", str(creds_file), env=env)
    assert r.returncode == 2 and "exists" in r.stderr
    r = gate("sync", "--once", "--store", str(tmp_path / "cli.db"), "--credentials", str(creds_file), env=env)
    assert r.returncode == 0, r.stderr
    assert "uploaded 30" in r.stdout and "backlog 0" in r.stdout
    r = gate("township", "--server", server.url, "report", env=env)
    assert r.returncode == 0 and "river-garden: 30 entries" in r.stdout
    r = gate("township", "--server", server.url, "policy", "--community", "river-garden",
             "--risk-level", "high", env=env)
    assert r.returncode == 0, r.stderr
    r = gate("sync", "--once", "--store", str(tmp_path / "cli.db"), "--credentials", str(creds_file), env=env)
    assert "pulled policy" in r.stdout
    assert Store.open(tmp_path / "cli.db").policy()["risk_level"] == "high"
    r = gate("sync", "--once", "--store", str(tmp_path / "cli.db"), "--credentials",
             str(tmp_path / "missing.json"), env=env)
    assert r.returncode == 2 and "gate enroll" in r.stderr


def test_sync_config_from_the_gate_config(tmp_path, server, creds):
    path = tmp_path / "creds.json"
    creds.save(path)
    conf = SyncConfig.from_gate_config({"sync": {"credentials": str(path), "batch_size": "200",
                                                 "interval_s": 5}}, interval_s=None, backoff_cap_s=9)
    assert (conf.batch_size, conf.interval_s, conf.backoff_cap_s) == (200, 5.0, 9.0)
    assert conf.credentials.device_id == creds.device_id
    assert creds.private_key not in repr(conf)  # the key stays out of logs
    with pytest.raises(SyncError, match="unknown \\[sync\\] setting 'batchsize'"):
        SyncConfig.from_gate_config({"sync": {"credentials": str(path), "batchsize": 1}})
    with pytest.raises(SyncError, match="gate enroll"):
        SyncConfig.from_gate_config({"sync": {"credentials": str(tmp_path / "nope.json")}})
    # the daemon names the credentials file itself: [sync] credentials in the file is not an unknown key
    conf = SyncConfig.from_gate_config({"sync": {"credentials": str(tmp_path / "nope.json"), "interval_s": 1}},
                                       credentials=str(path))
    assert conf.credentials.device_id == creds.device_id and conf.interval_s == 1.0


def test_server_says_clearly_when_its_database_is_unreachable(gate, tmp_path):
    url = f"postgresql://nobody:secret@127.0.0.1:{free_port()}/township"
    r = gate("server", "--db", url, "--port", str(free_port()), "--admin-token-file",
             str(tmp_path / "token"), timeout=60)
    assert r.returncode == 1 and "cannot open the database" in r.stderr
    assert "secret" not in r.stderr  # the password in the URL is not echoed


def test_server_restored_from_an_old_backup_gets_the_lost_entries_again(server, admin, creds, store,
                                                                         tmp_path):
    fill(store, creds.device_id, 100, random.Random(8))
    client = client_for(store, creds)
    client.run_once()
    # The township restores last night's backup: it holds only seqs 1..50.
    db = sqlite3.connect(tmp_path / "township.db", isolation_level=None)
    db.execute("DELETE FROM entries WHERE seq > 50")
    db.execute("UPDATE devices SET acked_seq = 50, max_seq = 50")
    db.close()
    fill(store, creds.device_id, 10)
    with pytest.raises(SyncError, match=r"above seq 50; resending 5\d"):
        client.run_once()
    assert client.run_once().backlog == 0
    same_entries(admin, store, creds.device_id)
    client.close()
