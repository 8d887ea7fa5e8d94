"""The township server beyond one process (issue 14, 7): `gate server --workers N` on one
PostgreSQL, and several servers on one database, share each gate's limits: a request
replayed to another worker is refused, and a gate gets one upload lane, one request
budget and one parsed-bytes budget however many workers it reaches."""
from __future__ import annotations

import gzip
import json
import os
import random
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psycopg
import pytest

from sync import auth
from sync.admin import Admin
from sync.client import enroll
from sync.client import wire as to_wire
from sync.server import Settings
from sync.testing import ServerProcess, ServerThread, sample_entry, signed_request

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


# -- which worker process holds a connection ------------------------------------------------

def children(pid: int) -> list[int]:
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                status = (d / "status").read_text()
            except OSError:
                continue
            if f"\nPPid:\t{pid}\n" in status:
                out.append(int(d.name))
    return out


def worker_holding(conn: socket.socket, workers: list[int]) -> int | None:
    """The worker process whose accepted socket is the other end of `conn` (from
    /proc/net/tcp and each worker's open files)."""
    mine, server = conn.getsockname()[1], conn.getpeername()[1]
    inode = None
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        f = line.split()
        if int(f[1].split(":")[1], 16) == server and int(f[2].split(":")[1], 16) == mine:
            inode = f[9]
    for pid in workers:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") == f"socket:[{inode}]":
                    return pid
            except OSError:
                continue
    return None


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


def test_more_than_one_worker_needs_postgresql(gate, tmp_path):
    r = gate("server", "--db", str(tmp_path / "township.db"), "--workers", "2", "--port", "0")
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and "--workers 2 needs PostgreSQL" in r.stderr
    assert not (tmp_path / "township.db").exists()  # refused before anything was made
    r = gate("server", "--db", str(tmp_path / "township.db"), "--workers", "0")
    assert r.returncode == 2 and "workers are 1..64, got 0" in r.stderr


def test_two_workers_on_one_postgresql_refuse_a_replay_across_them(pg_cluster, tmp_path):
    server = ServerProcess(pg_cluster.new_database("workers"), TOKEN, None, "--workers", "2",
                           log=tmp_path / "server.log").start(timeout_s=180)  # two fresh interpreters
    conns: list[socket.socket] = []
    workers: list[int] = []
    served: list[int] = []
    try:
        assert server.proc is not None
        for _ in range(100):  # both workers up and answering
            workers = children(server.proc.pid)
            if len(workers) >= 2:
                break
            httpx.get(server.url + "/v1/time")
        admin = Admin(server.url, TOKEN)
        creds = enroll(server.url, admin.enrollment("river-garden", "east")["token"])
        # One kept-alive connection to each worker.
        by_worker: dict[int, socket.socket] = {}
        for _ in range(200):
            conn = socket.create_connection(("127.0.0.1", server.port), timeout=30)
            conns.append(conn)
            assert http(conn, "GET", "/v1/time", {})[0] == 200
            pid = worker_holding(conn, workers)
            if pid is not None:
                by_worker.setdefault(pid, conn)
            if len(by_worker) == 2:
                break
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
        for conn in conns:
            conn.close()
        server.stop()
    deadline = time.monotonic() + 20
    while [pid for pid in served if alive(pid)] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [pid for pid in served if alive(pid)]  # no worker left behind


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


@pytest.fixture
def two_servers(pg_cluster):
    """Two servers on one PostgreSQL database, each with its own memory (as two machines
    behind a load balancer), with a small request and byte budget per gate."""
    db_url = pg_cluster.new_database(f"t{random.getrandbits(48):x}")
    one_batch = len(json.dumps({"entries": entries("river-garden.east", 1, 50)}))
    settings = Settings(db_url=db_url, admin_token=TOKEN, device_requests_per_min=6,
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
    with psycopg.connect(db_url, autocommit=True) as worker:
        from sync.server.db import Database
        probe = Database(db_url)
        lane = probe.take_lane(creds.device_id)
        assert lane is not None
        try:
            r = post(two, creds, 1, 1)
            assert (r.status_code, r.json()["error"]) == (429, "upload_in_progress")
            assert r.headers["Retry-After"] == "1"
        finally:
            probe.leave_lane(lane)
        assert post(one, creds, 1, 1).status_code == 200  # free again once that upload is done
        # A worker that dies mid-upload frees the lane with its connection.
        probe2 = Database(db_url)
        assert probe2.take_lane(creds.device_id) is not None
        probe2.close()
        assert post(two, creds, 2, 1).status_code == 200
        assert worker.execute("SELECT count(*) FROM entries").fetchone() == (2,)
        probe.close()
    assert [e["seq"] for e in admin.entries(creds.device_id)] == [1, 2]


def test_batches_committed_together_are_each_all_or_nothing(tmp_path):
    """SQLite stores the batches that arrive during a commit together in the next one:
    a refused batch in that group stores nothing and the others are all stored."""
    with ServerThread(Settings(db_url=str(tmp_path / "township.db"), admin_token=TOKEN)) as srv:
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
