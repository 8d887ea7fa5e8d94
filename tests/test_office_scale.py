"""The township server beyond one process (issue 14, 7): `gate server --workers N` on one
SQLite file or PostgreSQL database, and several servers on one database, share each
gate's limits: a request replayed to another worker is refused, and a gate gets one
upload lane, one request budget and one parsed-bytes budget however many workers it
reaches. The workers take turns at new connections, and one that dies is replaced."""
from __future__ import annotations

import gzip
import json
import os
import random
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from sync import auth
from sync.admin import Admin
from sync.client import enroll
from sync.client import wire as to_wire
from sync.server import Settings
from sync.server.db import Database
from sync.server.deps import LONG_PARSE_BYTES
from sync.testing import ROOT, ServerProcess, ServerThread, sample_entry, signed_request, worker_holding, workers_of

TOKEN = "office-scale-admin-token"


def entries(device_id: str, first: int, n: int) -> list[dict]:
    out = []
    for seq in range(first, first + n):
        e = to_wire(sample_entry(random.Random(seq), report="none"))
        e.update(device_id=device_id, seq=seq, created_utc="2026-11-25T08:00:00.000Z",
                 boot_id="boot-1", monotonic_ns=seq * 1000, clock_synced=True)
        out.append(e)
    return out


def batch(device_id: str, first: int, n: int) -> bytes:
    return gzip.compress(json.dumps({"entries": entries(device_id, first, n)}).encode())


def signed_post(creds, body: bytes) -> dict[str, str]:
    h = auth.sign_headers(creds.key(), creds.device_id, "POST", "/v1/entries", body)
    return {**h, "Content-Type": "application/json", "Content-Encoding": "gzip"}


# -- kept connections to the workers (sync.testing.worker_holding finds which holds one) ---

def http(conn: socket.socket, method: str, path: str, headers: dict[str, str], body: bytes = b"") -> tuple[int, dict]:
    """One HTTP/1.1 request on a kept-alive connection; (status, JSON answer)."""
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {len(body)}\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    conn.sendall(head.encode() + body)
    data = b""
    while b"\r\n\r\n" not in data:
        data += conn.recv(65536)
    top, rest = data.split(b"\r\n\r\n", 1)
    lines = top.decode("latin-1").split("\r\n")
    length = next(int(v) for k, _, v in (h.partition(": ") for h in lines[1:]) if k.lower() == "content-length")
    while len(rest) < length:
        rest += conn.recv(65536)
    return int(lines[0].split()[1]), json.loads(rest[:length])


def test_workers_are_a_number_from_1_to_64(gate, tmp_path):
    r = gate("server", "--db", str(tmp_path / "township.db"), "--workers", "0")
    assert r.returncode == 2 and "workers are 1..64, got 0" in r.stderr
    assert r.stderr.count("\n") <= 3  # argparse's usage and the one line
    assert not (tmp_path / "township.db").exists()  # refused before anything was made


@pytest.fixture(params=["sqlite", "postgres"])
def one_database(request, tmp_path):
    """The database two workers share: a SQLite file, or a PostgreSQL database."""
    if request.param == "sqlite":
        return str(tmp_path / "township.db")
    return request.getfixturevalue("pg_cluster").new_database(f"w{random.getrandbits(48):x}")


def connection_to_each(server, workers: list[int], n: int) -> dict[int, socket.socket]:
    """Kept-alive connections, one held by each of n worker processes."""
    by_worker: dict[int, socket.socket] = {}
    for _ in range(200):
        conn = socket.create_connection(("127.0.0.1", server.port), timeout=30)
        assert http(conn, "GET", "/v1/time", {})[0] == 200
        pid = worker_holding(conn, workers)
        if pid is not None and pid not in by_worker:
            by_worker[pid] = conn
        else:
            conn.close()
        if len(by_worker) == n:
            break
    return by_worker


def test_two_workers_on_one_database_refuse_a_replay_across_them(one_database, tmp_path):
    server = ServerProcess(one_database, TOKEN, None, "--workers", "2",
                           log=tmp_path / "server.log").start(timeout_s=180)  # two fresh interpreters
    by_worker: dict[int, socket.socket] = {}
    served: list[int] = []
    try:
        assert server.proc is not None
        workers = both_workers(server)
        admin = Admin(server.url, TOKEN)
        creds = enroll(server.url, admin.enrollment("river-garden", "east")["token"])
        by_worker = connection_to_each(server, workers, 2)
        assert len(by_worker) == 2, f"every connection went to one worker: {workers}"
        served = list(by_worker)
        one, two = by_worker.values()
        body = batch(creds.device_id, 1, 5)
        headers = signed_post(creds, body)
        assert http(one, "POST", "/v1/entries", headers, body) == (200, {"acked_seq": 5, "stored": 5,
                                                                        "duplicates": 0})
        status, answer = http(two, "POST", "/v1/entries", headers, body)  # the same request, replayed
        assert (status, answer["error"]) == (409, "replayed_request")
        # A request made afresh goes through on either worker: the gate itself is not locked out.
        again = batch(creds.device_id, 6, 1)
        assert http(two, "POST", "/v1/entries", signed_post(creds, again), again)[0] == 200
        assert [e["seq"] for e in admin.entries(creds.device_id)] == [1, 2, 3, 4, 5, 6]
        admin.close()
    finally:
        for conn in by_worker.values():
            conn.close()
        server.stop()
    deadline = time.monotonic() + 20
    while [pid for pid in served if alive(pid)] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [pid for pid in served if alive(pid)]  # no worker left behind


def both_workers(server) -> list[int]:
    """The worker processes, once both answer."""
    workers: list[int] = []
    for _ in range(100):
        workers = workers_of(server.proc.pid)
        if len(workers) >= 2:
            break
        httpx.get(server.url + "/v1/time")
        time.sleep(0.1)
    return workers


def test_a_worker_that_dies_is_started_again_and_connections_are_dealt_evenly(tmp_path):
    server = ServerProcess(str(tmp_path / "township.db"), TOKEN, None, "--workers", "2",
                           log=tmp_path / "server.log").start(timeout_s=180)
    conns: list[socket.socket] = []
    try:
        workers = both_workers(server)
        for conn in connection_to_each(server, workers, 2).values():  # both serving
            conn.close()
        time.sleep(1)  # the workers see those connections closed
        # Sixteen gates connecting at once are dealt out evenly, not left to one worker (a
        # worker busy past workers.LEAVE_S, as under this suite's load, may leave one more
        # to the other).
        conns = [socket.create_connection(("127.0.0.1", server.port), timeout=30) for _ in range(16)]
        for conn in conns:
            assert http(conn, "GET", "/v1/time", {})[0] == 200
        held = [worker_holding(conn, workers) for conn in conns]
        assert min(held.count(pid) for pid in workers) >= 7, held
        os.kill(workers[0], 9)  # a worker dies: its gates reconnect, to the other or its successor
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            now = workers_of(server.proc.pid)
            if workers[0] not in now and len(now) >= 2:
                break
            time.sleep(0.2)
        assert workers[0] not in now and len(now) >= 2, now
        assert "ended (exit status -9); starting another" in (tmp_path / "server.log").read_text()
        for _ in range(50):
            try:
                assert httpx.get(server.url + "/v1/time", timeout=5).status_code == 200
                break
            except httpx.TransportError:
                time.sleep(0.2)
        # The worker started again holds one gate (once it serves), the other eight: the
        # next gates go to it.
        successor = next(pid for pid in now if pid != workers[1])
        conns += connection_to_each(server, [successor], 1).values()
        time.sleep(1)  # the workers see the other connections closed
        fresh = [socket.create_connection(("127.0.0.1", server.port), timeout=30) for _ in range(4)]
        conns += fresh
        for conn in fresh:
            assert http(conn, "GET", "/v1/time", {})[0] == 200
        assert [worker_holding(conn, [successor, workers[1]]) for conn in fresh].count(successor) >= 3
    finally:
        for conn in conns:
            conn.close()
        server.stop()


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


@pytest.fixture
def two_servers(one_database):
    """Two servers on one database, each with its own memory (as two workers, or two
    machines behind a load balancer), with a small request and byte budget per gate."""
    db_url = one_database
    one_batch = len(json.dumps({"entries": entries("river-garden.east", 1, 50)}))
    settings = Settings(db_url=db_url, admin_token=TOKEN, device_requests_per_min=6, shared_state=True,
                        device_burst_bytes=one_batch * 3 // 2, device_bytes_per_s=1.0)
    with ServerThread(settings) as one, ServerThread(settings) as two:
        admin = Admin(one.url, TOKEN)
        creds = enroll(one.url, admin.enrollment("river-garden", "east")["token"])
        yield one, two, admin, creds, db_url
        admin.close()


def post(server, creds, first: int, n: int) -> httpx.Response:
    body = json.dumps({"entries": entries(creds.device_id, first, n)}).encode()
    return signed_request(server.url, creds, "POST", "/v1/entries", body, gzip_body=True)


def test_a_gate_gets_one_byte_budget_across_servers(two_servers):
    one, two, admin, creds, _ = two_servers
    assert post(one, creds, 1, 50).status_code == 200  # most of the burst, on the first server
    r = post(two, creds, 51, 50)                        # the rest of it is not there on the second
    assert (r.status_code, r.json()["error"]) == (429, "too_many_bytes") and "Retry-After" in r.headers
    other = enroll(one.url, admin.enrollment("pine-court", "north")["token"])
    assert post(two, other, 1, 1).status_code == 200    # another gate is served
    assert [e["seq"] for e in admin.entries(creds.device_id)] == list(range(1, 51))


def test_a_gate_gets_one_request_budget_across_servers(two_servers):
    one, two, _, creds, _ = two_servers
    answers = [signed_request(s.url, creds, "GET", "/v1/device").status_code for s in (one, two) * 4]
    assert answers == [200] * 6 + [429, 429]  # 6 a minute in all, not 6 on each


def test_a_gate_gets_one_upload_lane_across_servers(two_servers):
    one, two, admin, creds, db_url = two_servers
    # Another worker is storing an upload of this gate: it holds the gate's lane.
    with lane_held_elsewhere(db_url, creds.device_id):
        r = post(two, creds, 1, 1)
        assert (r.status_code, r.json()["error"]) == (429, "upload_in_progress")
        assert r.headers["Retry-After"] == "1"
        other = enroll(one.url, admin.enrollment("pine-court", "north")["token"])
        assert post(two, other, 1, 1).status_code == 200  # another gate's lane is free
    assert post(one, creds, 1, 1).status_code == 200  # free again once that upload is done
    # A worker that dies mid-upload frees the lane with it.
    with lane_held_elsewhere(db_url, creds.device_id, die=True):
        assert post(two, creds, 2, 1).status_code == 200
    assert [e["seq"] for e in admin.entries(creds.device_id)] == [1, 2]


@contextmanager
def lane_held_elsewhere(db_url: str, device_id: str, die: bool = False) -> Iterator[None]:
    """A gate's upload lane held by another process (as another worker would hold it:
    a PostgreSQL advisory lock, or a lock on the SQLite file's lane file), for the
    `with` block; `die`: that process is killed holding it, before the block."""
    holder = Database(db_url)
    take = (f"from sync.server.db import Database; lane = Database({db_url!r}).take_lane({device_id!r})"
            if holder.dialect == "postgres" else
            f"from sync.server.limits import FileLanes; lanes = FileLanes({str(holder.path) + '-lanes'!r}); "
            f"lane = lanes.hold({device_id!r}); lane.__enter__()")
    holder.close()
    proc = subprocess.Popen([sys.executable, "-c", f"import sys; {take}; print('held', flush=True); sys.stdin.read()"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "held\n"
        if die:
            proc.kill()
            proc.wait(30)
        yield
    finally:
        proc.kill()
        proc.wait(30)


def test_batches_committed_together_are_each_all_or_nothing(tmp_path):
    """SQLite stores the batches that arrive during a commit together in the next one:
    a refused batch in that group stores nothing and the others are all stored."""
    settings = Settings(db_url=str(tmp_path / "township.db"), admin_token=TOKEN, upload_threads=9)
    with ServerThread(settings) as srv:  # a thread for each upload waiting in the group
        admin = Admin(srv.url, TOKEN)
        gates = [enroll(srv.url, admin.enrollment("c", f"g{i}")["token"]) for i in range(9)]
        for g in gates:
            assert post(srv, g, 1, 5).status_code == 200
        group = srv.app.state.server.db._group
        # As if a commit were under way: every upload queues behind it, then one leads them all.
        with group._lock:
            group._leading = True
        with ThreadPoolExecutor(len(gates)) as pool:
            # Every third gate skips seq 6: a gap, refused whole; the others send 6..10.
            answers = [pool.submit(post, srv, g, 7 if i % 3 == 0 else 6, 4 if i % 3 == 0 else 5)
                       for i, g in enumerate(gates)]
            deadline = time.monotonic() + 60
            while len(group._queue) < len(gates) and time.monotonic() < deadline:
                time.sleep(0.01)
            with group._lock:  # the commit under way ends: hand the lead on, as _lead does
                group._queue[0].lead = True
                group._queue[0].done.set()
            results = [a.result() for a in answers]
        assert group.largest == len(gates)
        for i, (g, r) in enumerate(zip(gates, results, strict=True)):
            stored = [e["seq"] for e in admin.entries(g.device_id)]
            if i % 3 == 0:
                assert (r.status_code, r.json()["error"]) == (409, "seq_gap") and stored == [1, 2, 3, 4, 5]
            else:
                assert r.json() == {"acked_seq": 10, "stored": 5, "duplicates": 0}
                assert stored == list(range(1, 11))
        admin.close()


def test_with_shared_state_on_sqlite_large_batches_and_the_writer_take_turns(tmp_path):
    """Several workers on one SQLite file: a large batch's parse and this worker's write
    transactions take turns (Database.turn), and uploads of every size still go through,
    in parallel, each answered once stored."""
    settings = Settings(db_url=str(tmp_path / "township.db"), admin_token=TOKEN, shared_state=True)
    with ServerThread(settings) as srv:
        admin = Admin(srv.url, TOKEN)
        gates = [enroll(srv.url, admin.enrollment("c", f"g{i}")["token"]) for i in range(4)]
        db = srv.app.state.server.db
        assert hasattr(db.turn, "locked") and not db.turn.locked()
        large = len(json.dumps({"entries": entries("x", 1, 300)}))
        assert large > LONG_PARSE_BYTES  # parsed in turn with the writer
        with ThreadPoolExecutor(len(gates)) as pool:  # large and small batches at once
            answers = list(pool.map(lambda g: [post(srv, g, 1, 300), post(srv, g, 301, 5)], gates))
        for g, (big, small) in zip(gates, answers, strict=True):
            assert big.json() == {"acked_seq": 300, "stored": 300, "duplicates": 0}
            assert small.json() == {"acked_seq": 305, "stored": 5, "duplicates": 0}
            assert [e["seq"] for e in admin.entries(g.device_id)] == list(range(1, 306))
        assert not db.turn.locked()
        admin.close()
