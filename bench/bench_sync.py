"""Sync benchmark: township server ingest (SQLite, PostgreSQL with one and two workers),
backlog drain, ingest latency with 50 gates syncing at once, and the latency of
well-behaved gates while one gate and a stranger misbehave (with the server's peak
memory). Server in its own process; the load generator in this one; everything on
127.0.0.1. Besides wall rates, the CPU time the server (and PostgreSQL) spent per entry:
on a shared machine that is the figure that compares.

GATE_BENCH_BEFORE=DIR runs a second checkout's server (e.g. `git archive main | tar -x
-C DIR`) in turns with this one, in the same run, for a before/after side by side."""
from __future__ import annotations

import gzip
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
import loadgen

from kiosk import wire as contract
from kiosk.store import Store
from sync import auth
from sync.admin import Admin
from sync.client import Credentials, SyncClient, SyncConfig, enroll, wire
from sync.testing import (
    ROOT,
    PostgresCluster,
    ServerProcess,
    fill,
    free_port,
    sample_entry,
    wait_http,
    worker_holding,
    workers_of,
)

TOKEN = "bench-admin-token-0123456789"
INGEST_DEVICES = 8         # each within the server's per-gate parse budget (8 MiB burst)
INGEST_BATCHES = 20        # per device, of 500: 80,000 entries
BACKLOG = 10_000
GATES = 50
GATE_ROUNDS = 20           # posts per gate in the latency test
GATE_BATCH = 20            # entries per post: a busy gate syncing every few seconds
CALM_GATES = 10            # well-behaved gates in the hostile test, each posting GATE_BATCH...
CALM_PAUSE_S = 0.2         # ...then pausing: a busy township, not a flood
PHASE_S = 10.0             # quiet, hostile, quiet again
STRANGERS = 8              # connections a stranger keeps going at once
ROUNDS = int(os.environ.get("GATE_BENCH_ROUNDS", "2"))  # each server variant, in turns
BEFORE_ENV = "GATE_BENCH_BEFORE"
TICK = os.sysconf("SC_CLK_TCK")


def tree_cpu_s(pid: int) -> float:
    """CPU seconds of a process, its reaped children and its live descendants."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    total = sum(int(f) for f in fields[11:15]) / TICK  # utime stime cutime cstime
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                stat = (d / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(stat[1]) == pid:
                total += tree_cpu_s(int(d.name))
    return total


class Server:
    """`gate server` from a checkout (this one, or the one to compare with)."""

    def __init__(self, root: Path, db_url: str, log: Path, *extra: str):
        self.root, self.db_url, self.log, self.extra = root, db_url, log, extra
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Server:
        env = {**os.environ, "PYTHONPATH": str(self.root), "GATE_ADMIN_TOKEN": TOKEN}
        self.out = open(self.log, "ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "kiosk.cli", "server", "--db", self.db_url,
                                      "--port", str(self.port), "--log-level", "warning", *self.extra],
                                     env=env, stdout=self.out, stderr=self.out, cwd=self.root)
        wait_http(self.url, 120)
        return self

    def __exit__(self, *exc: object) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        self.out.close()


def postmaster(cluster: PostgresCluster | None) -> int | None:
    if cluster is None:
        return None
    return int((cluster.dir / "data" / "postmaster.pid").read_text().split()[0])


def enroll_devices(url: str, n: int, prefix: str) -> list[Credentials]:
    admin = Admin(url, TOKEN)
    out = [enroll(url, admin.enrollment(f"{prefix}-c{i % 10}", f"g{i}", f"{prefix}-g{i}")["token"])
           for i in range(n)]
    admin.close()
    return out


def batches(device_id: str, n_batches: int, size: int, rng: random.Random) -> list[bytes]:
    """Pre-built gzip bodies, so the load generator spends its time sending."""
    out, seq = [], 0
    boot = "bench-boot"
    for _ in range(n_batches):
        entries = []
        for _ in range(size):
            seq += 1
            e = sample_entry(rng, report="none")
            e.device_id, e.seq, e.created_utc = device_id, seq, "2026-11-25T08:00:00.000Z"
            e.boot_id, e.monotonic_ns, e.clock_synced = boot, seq * 1000, True
            entries.append(wire(e))
        out.append(gzip.compress(json.dumps({"entries": entries}, ensure_ascii=False).encode(), 1))
    return out


def post(http: httpx.Client, creds: Credentials, key, body: bytes) -> float:
    headers = auth.sign_headers(key, creds.device_id, "POST", "/v1/entries", body)
    headers.update({"Content-Type": "application/json", "Content-Encoding": "gzip"})
    t0 = time.perf_counter()
    r = http.post("/v1/entries", content=body, headers=headers)
    dt = time.perf_counter() - t0
    if r.status_code != 200:
        raise RuntimeError(f"{r.status_code} {r.text[:200]}")
    return dt


def ingest(url: str, prefix: str) -> tuple[float, float]:
    """Entries a second, and the load generator's CPU seconds while sending."""
    creds = enroll_devices(url, INGEST_DEVICES, prefix)
    rng = random.Random(1)
    bodies = [(c, batches(c.device_id, INGEST_BATCHES, 500, rng)) for c in creds]
    cpu0 = time.process_time()
    _, wall = loadgen.run_gates(port_of(url), bodies)
    return INGEST_DEVICES * INGEST_BATCHES * 500 / wall, time.process_time() - cpu0


def drain(url: str, prefix: str, work: Path) -> tuple[float, int]:
    [creds] = enroll_devices(url, 1, prefix + "-drain")
    store = Store.open(work / f"{prefix}-gate.db")
    store.conn.execute("PRAGMA synchronous = OFF")  # filling only; the drain is what is timed
    fill(store, creds.device_id, BACKLOG, random.Random(2))
    client = SyncClient(store, SyncConfig(creds))
    t0 = time.perf_counter()
    r = client.run_once(pull=False)
    elapsed = time.perf_counter() - t0
    client.close()
    store.close()
    assert r.backlog == 0, r
    return elapsed, r.uploaded


def latency(url: str, prefix: str) -> tuple[float, float, float, float, float]:
    """p50, p99 and max ms per post, entries a second, and the load generator's CPU
    ms per post."""
    creds = enroll_devices(url, GATES, prefix + "-lat")
    rng = random.Random(3)
    bodies = [(c, batches(c.device_id, GATE_ROUNDS, GATE_BATCH, rng)) for c in creds]
    cpu0 = time.process_time()
    times, wall = loadgen.run_gates(port_of(url), bodies)
    client_ms = (time.process_time() - cpu0) / len(times) * 1000
    return pct(times, 0.5), pct(times, 0.99), max(times) * 1000, GATES * GATE_ROUNDS * GATE_BATCH / wall, client_ms


def dealt(server: Server) -> list[int]:
    """GATES connections made at once to a server with workers: how many each worker
    holds, most first."""
    conns = [socket.create_connection(("127.0.0.1", server.port), timeout=30) for _ in range(GATES)]
    try:
        for c in conns:
            c.sendall(b"GET /v1/time HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        for c in conns:
            c.recv(65536)  # answered: accepted by a worker
        workers = workers_of(server.proc.pid)
        held = [worker_holding(c, workers) for c in conns]
        return sorted((held.count(pid) for pid in workers), reverse=True)
    finally:
        for c in conns:
            c.close()


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def rss_mb(pid: int, field: str = "VmRSS") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def hostile_payloads(creds: Credentials) -> dict[str, bytes]:
    """What a misbehaving gate sends, built once: the heaviest batch the bounds allow
    (1000 entries, every reading full) made invalid by its last entry so nothing is
    stored, a gzip bomb, a body over the limit."""
    rng = random.Random(4)
    reading = {f"k{i}": rng.random() for i in range(contract.MAX_KEYS)}
    entries = []
    for seq in range(1, contract.MAX_BATCH + 1):
        e = wire_entry(creds.device_id, seq, rng)
        e["readings"] = [reading] * contract.MAX_READINGS
        entries.append(e)
    heavy = json.dumps({"entries": entries}).encode()
    while len(heavy) > contract.MAX_BATCH_BYTES:  # stay just inside the inflated limit
        entries.pop(0)
        heavy = json.dumps({"entries": entries}).encode()
    entries[-1]["seq"] = entries[0]["seq"]  # a duplicate seq: refused after the whole batch is parsed
    heavy = json.dumps({"entries": entries}).encode()
    return {"heavy": gzip.compress(heavy, 6), "bomb": gzip.compress(b" " * (200 * 2**20), 9),
            "oversized": os.urandom(5 * 2**20)}


def wire_entry(device_id: str, seq: int, rng: random.Random) -> dict:
    e = sample_entry(rng, report="none")
    e.device_id, e.seq, e.created_utc = device_id, seq, "2026-11-25T08:00:00.000Z"
    e.boot_id, e.monotonic_ns, e.clock_synced = "bench-boot", seq * 1000, True
    return wire(e)


def misbehave(url: str, port: int, creds: Credentials, payloads: dict[str, bytes],
              stop: threading.Event, counts: dict[str, int]) -> None:
    """One enrolled gate doing everything wrong, as fast as it is answered."""
    key = creds.key()
    top = wire_entry(creds.device_id, contract.MAX_SEQ, random.Random(5))
    top.update(report="immediate", action="isolate")
    with httpx.Client(base_url=url, timeout=60) as http:
        def send(path: str, body: bytes, encoding: str | None = "gzip", replay: bool = False) -> None:
            h = auth.sign_headers(key, creds.device_id, "POST", path, body)
            if encoding:
                h["Content-Encoding"] = encoding
            for _ in range(2 if replay else 1):
                r = http.post(path, content=body, headers=h)
                counts[str(r.status_code)] = counts.get(str(r.status_code), 0) + 1
        send("/v1/entries", gzip.compress(json.dumps({"entries": [top], "priority": True}).encode()))
        while not stop.is_set():
            send("/v1/entries", payloads["heavy"])
            send("/v1/entries", payloads["bomb"])
            send("/v1/entries", payloads["oversized"], encoding=None)
            send("/v1/device/lost", json.dumps({"upto": contract.MAX_SEQ}).encode(), encoding=None, replay=True)


def stranger(port: int, stop: threading.Event, counts: dict[str, int]) -> None:
    """No credentials: announces 300 MiB bodies to the admin and entry endpoints."""
    heads = [f"PUT /v1/admin/communities/c/lists/residents HTTP/1.1\r\nHost: x\r\n"
             f"Content-Length: {300 * 2**20}\r\n\r\n",
             f"POST /v1/entries HTTP/1.1\r\nHost: x\r\nX-Gate-Device: nobody\r\n"
             f"X-Gate-Time: {time.time():.3f}\r\nX-Gate-Nonce: n\r\nX-Gate-Signature: s\r\n"
             f"Content-Length: {3 * 2**20}\r\n\r\n"]
    chunk = b"x" * 2**16
    while not stop.is_set():
        for head in heads:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
                    s.sendall(head.encode() + chunk)
                    status = s.recv(64).split(b" ")[1].decode()
            except OSError:
                status = "reset"
            counts[status] = counts.get(status, 0) + 1


def calm_gates(url: str, creds: list[Credentials], stop: threading.Event, times: list[float],
               seqs: dict[str, int]) -> list[threading.Thread]:
    lock = threading.Lock()

    def gate(c: Credentials) -> None:
        key, rng = c.key(), random.Random(c.device_id)
        with httpx.Client(base_url=url, timeout=60) as http:
            while not stop.is_set():
                first = seqs[c.device_id] + 1
                entries = [wire_entry(c.device_id, s, rng) for s in range(first, first + GATE_BATCH)]
                body = gzip.compress(json.dumps({"entries": entries}).encode(), 1)
                dt = post(http, c, key, body)
                seqs[c.device_id] = first + GATE_BATCH - 1
                with lock:
                    times.append(dt)
                stop.wait(CALM_PAUSE_S)

    threads = [threading.Thread(target=gate, args=(c,)) for c in creds]
    for t in threads:
        t.start()
    return threads


def pct(times: list[float], q: float) -> float:
    s = sorted(times)
    return s[min(len(s) - 1, int(q * len(s)))] * 1000


def hostile(work: Path) -> dict:
    """Well-behaved gates' latency, quiet then with one gate and one stranger misbehaving
    then quiet again, in one run; the server's resident memory throughout."""
    server = ServerProcess(str(work / "hostile.db"), TOKEN, None, log=work / "hostile-server.log")
    server.start()
    assert server.proc is not None
    pid = server.proc.pid
    try:
        calm = enroll_devices(server.url, CALM_GATES, "calm")
        [bad] = enroll_devices(server.url, 1, "bad")
        payloads = hostile_payloads(bad)
        seqs = {c.device_id: 0 for c in calm}
        phases: dict[str, list[float]] = {"quiet": [], "hostile": [], "quiet again": []}
        counts: dict[str, int] = {}
        peak = {"quiet": 0.0, "hostile": 0.0, "quiet again": 0.0}
        for phase, times in phases.items():
            stop = threading.Event()
            threads = calm_gates(server.url, calm, stop, times, seqs)
            if phase == "hostile":  # each client counts its own answers, merged below
                tallies: list[dict[str, int]] = [{} for _ in range(1 + STRANGERS)]
                hostile_threads = [threading.Thread(target=misbehave, args=(server.url, server.port, bad, payloads,
                                                                            stop, tallies[0]))]
                hostile_threads += [threading.Thread(target=stranger, args=(server.port, stop, tally))
                                    for tally in tallies[1:]]
                for t in hostile_threads:
                    t.start()
                threads += hostile_threads
            deadline = time.monotonic() + PHASE_S
            while time.monotonic() < deadline:
                peak[phase] = max(peak[phase], rss_mb(pid))
                time.sleep(0.1)
            stop.set()
            for t in threads:
                t.join(120)
            if phase == "hostile":
                for tally in tallies:
                    for status, n in tally.items():
                        counts[status] = counts.get(status, 0) + n
            print(f"hostile bench: {phase} p99 {pct(times, 0.99):.0f} ms, rss {peak[phase]:.0f} MB",
                  file=sys.stderr, flush=True)
        hwm = rss_mb(pid, "VmHWM")
    finally:
        server.stop()
    quiet = phases["quiet"] + phases["quiet again"]
    return {"quiet": (pct(quiet, 0.5), pct(quiet, 0.99), len(quiet)),
            "hostile": (pct(phases["hostile"], 0.5), pct(phases["hostile"], 0.99), len(phases["hostile"])),
            "peak": peak, "hwm": hwm, "counts": counts}


FUZZ_EXAMPLES = 1000


def fuzzed(work: Path) -> dict:
    """The schema-driven fuzzer of the test suite (tests/test_server_schema_fuzz.py) sent
    at a server in its own process, whose memory is sampled throughout."""
    server = ServerProcess(str(work / "fuzz.db"), TOKEN, None, log=work / "fuzz-server.log")
    server.start()
    assert server.proc is not None
    pid, peak = server.proc.pid, 0.0
    env = {**os.environ, "GATE_FUZZ_URL": server.url, "GATE_FUZZ_TOKEN": TOKEN,
           "GATE_FUZZ_EXAMPLES": str(FUZZ_EXAMPLES), "GATE_TEST_SEED": "10"}
    try:
        t0 = time.monotonic()
        fuzz = subprocess.Popen([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                                 str(ROOT / "tests" / "test_server_schema_fuzz.py")], cwd=ROOT, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        while fuzz.poll() is None:
            peak = max(peak, rss_mb(pid))
            time.sleep(0.1)
        out = fuzz.stdout.read() if fuzz.stdout else ""
        hwm = rss_mb(pid, "VmHWM")
    finally:
        server.stop()
    return {"passed": fuzz.returncode == 0, "s": time.monotonic() - t0, "peak": peak, "hwm": hwm,
            "tail": out.strip().splitlines()[-1] if out.strip() else ""}


def measure(name: str, server: Server, pg_pid: int | None, work: Path, drain_too: bool) -> dict:
    """Ingest rate and CPU per entry, then the 50 gates' latency, on one running server."""
    def cpu() -> float:
        return tree_cpu_s(server.proc.pid) + (tree_cpu_s(pg_pid) if pg_pid else 0.0)

    before = cpu()
    rate, client_s = ingest(server.url, name)  # (the server idles while the bodies are built)
    n = INGEST_DEVICES * INGEST_BATCHES * 500
    server_us, client_us = (cpu() - before) / n * 1e6, client_s / n * 1e6
    print(f"{name}: ingest {rate:,.0f}/s, server {server_us:.1f} us/entry", file=sys.stderr, flush=True)
    out = {"rate": rate, "cpu_us": server_us, "client_us": client_us}
    if drain_too:
        out["drain_s"], out["drained"] = drain(server.url, name, work)
    before = cpu()
    out["p50"], out["p99"], out["max"], out["lat_rate"], out["client_ms"] = latency(server.url, name)
    out["post_ms"] = (cpu() - before) / (GATES * GATE_ROUNDS) * 1000
    if "--workers" in server.extra:
        out["dealt"] = dealt(server)
    print(f"{name}: p99 {out['p99']:.0f} ms", file=sys.stderr, flush=True)
    return out


def main() -> int:
    os.environ.setdefault("GATE_CONFIG", os.devnull)  # no gate.toml: the defaults
    work = Path(tempfile.mkdtemp(prefix="bench-sync-"))
    before = os.environ.get(BEFORE_ENV)
    roots = ([("before", Path(before))] if before else []) + [("after", ROOT)]
    why_not = PostgresCluster.available()
    pg = PostgresCluster().start() if why_not is None else None
    variants = [("SQLite", name, root, ()) for name, root in roots]
    variants += [("SQLite", "after, --workers 2", ROOT, ("--workers", "2"))]
    if pg:
        variants += [("PostgreSQL 15", name, root, ()) for name, root in roots]
        variants += [("PostgreSQL 15", "after, --workers 2", ROOT, ("--workers", "2"))]
    load = [os.getloadavg()[0]]
    runs: dict[tuple[str, str], list[dict]] = {}
    try:
        for rnd in range(ROUNDS):
            for i, (backend, name, root, extra) in enumerate(variants):
                tag = f"r{rnd}v{i}"
                db_url = pg.new_database(tag) if backend != "SQLite" and pg else str(work / f"{tag}.db")
                with Server(root, db_url, work / f"{tag}.log", *extra) as server:
                    r = measure(tag, server, postmaster(pg) if backend != "SQLite" else None, work,
                                drain_too=rnd == 0 and name == "after")
                runs.setdefault((backend, name), []).append(r)
                load.append(os.getloadavg()[0])
    finally:
        if pg:
            pg.stop()

    def span(key: str, rs: list[dict], fmt: str = ",.0f") -> str:
        vals = [r[key] for r in rs]
        mid = format(statistics.median(vals), fmt)
        return mid if len(vals) == 1 else f"{mid} ({format(min(vals), fmt)}–{format(max(vals), fmt)})"

    print("## Sync: township server ingest and gate backlog\n")
    print(f"| backend | server | ingest entries/s ({INGEST_DEVICES} gates, batches of 500) | server CPU per "
          f"entry (with PostgreSQL's) | {GATES} gates at once: p50 / p99 / max per post of {GATE_BATCH} | "
          f"entries/s then | server CPU per post |")
    print("|---|---|---|---|---|---|---|")
    for (backend, name), rs in runs.items():
        print(f"| {backend} | {name} | {span('rate', rs)} | {span('cpu_us', rs, '.1f')} µs | "
              f"{span('p50', rs)} / {span('p99', rs)} / {span('max', rs)} ms | {span('lat_rate', rs)} | "
              f"{span('post_ms', rs, '.2f')} ms |")
    print(f"\nMedian of {ROUNDS} rounds (range in brackets); in each round every server variant ran in "
          f"turn, on a fresh database. Load average (1 min) during the run: "
          f"{min(load):.1f}–{max(load):.1f} on {os.cpu_count()} cores, the load generator included "
          f"(it spent {statistics.median(r['client_us'] for rs in runs.values() for r in rs):.1f} µs of CPU "
          f"per entry in the ingest, {statistics.median(r['client_ms'] for rs in runs.values() for r in rs):.2f} "
          f"ms per post in the latency test).")
    if before:
        print(f"`before` is the server of the checkout in ${BEFORE_ENV}, `after` this one.")
    drained = [r for rs in runs.values() for r in rs if "drain_s" in r]
    for (backend, name), rs in runs.items():
        for r in rs:
            if "drain_s" in r:
                print(f"\nDrain of a {BACKLOG:,}-entry backlog ({backend}, {name}): {r['drain_s']:.2f} s "
                      f"({r['drained']:,} entries).", end="")
    if drained:
        print()
    for (backend, name), rs in runs.items():
        if "dealt" in rs[0]:
            print(f"\n{GATES} connections made at once to {backend}, {name}, held by each worker: "
                  + ", ".join(" / ".join(map(str, r["dealt"])) for r in rs) + " (each round).", end="")
    if any("dealt" in rs[0] for rs in runs.values()):
        print()
    if why_not:
        print(f"\nPostgreSQL not measured: {why_not}.")
    h = hostile(work)
    q, b = h["quiet"], h["hostile"]
    print("\n### Well-behaved gates while one gate and a stranger misbehave (SQLite)\n")
    print(f"| phase | p50 / p99 per post of {GATE_BATCH} | posts | server memory (RSS, peak) |")
    print("|---|---|---|---|")
    print(f"| quiet (before and after) | {q[0]:.0f} / {q[1]:.0f} ms | {q[2]} | "
          f"{max(h['peak']['quiet'], h['peak']['quiet again']):.0f} MB |")
    print(f"| hostile | {b[0]:.0f} / {b[1]:.0f} ms | {b[2]} | {h['peak']['hostile']:.0f} MB |")
    print(f"| hostile / quiet | {b[0] / q[0]:.2f}x / {b[1] / q[1]:.2f}x | | peak of the run (VmHWM) "
          f"{h['hwm']:.0f} MB |")
    answers = ", ".join(f"{k}: {v}" for k, v in sorted(h["counts"].items()))
    print(f"\n{CALM_GATES} enrolled gates post {GATE_BATCH} entries then pause {CALM_PAUSE_S} s, "
          f"for {PHASE_S:.0f} s quiet, {PHASE_S:.0f} s hostile, {PHASE_S:.0f} s quiet again. Hostile: one "
          f"enrolled gate sending, one after another, the heaviest batch the bounds allow "
          f"({contract.MAX_BATCH} entries with every reading full, refused after parsing), a gzip bomb "
          f"(200 MiB of spaces), a 5 MiB body, and a lost-range declaration up to seq 2^40 "
          f"sent twice (a replay), as fast as it is answered and the server's limits allow (its parsed "
          f"bytes are budgeted); and a stranger keeping {STRANGERS} connections going at once, each opening "
          f"connection after connection that announce "
          f"300 MiB to an admin endpoint or 3 MiB to /v1/entries (with an unknown device) and send "
          f"the first 64 KiB. Answers to the misbehaving clients: {answers}. The load generator "
          f"shares the server's 2 cores. Targets: hostile p50/p99 within 2x of quiet; server memory "
          f"under 300 MB.")
    f = fuzzed(work)
    print(f"\nServer memory under the schema-driven fuzzer (tests/test_server_schema_fuzz.py, "
          f"{FUZZ_EXAMPLES} examples, seed 10, in {f['s']:.0f} s; {f['tail']}): peak RSS {f['peak']:.0f} MB, "
          f"VmHWM {f['hwm']:.0f} MB (target under 300 MB).")
    print(f"\nMeasured: `gate server` in its own process (one worker unless said, "
          f"synchronous=FULL on SQLite, fsync on PostgreSQL), the load generator (bench/loadgen.py: raw "
          f"HTTP/1.1 on one asyncio loop) in another process, on 127.0.0.1. Server CPU: user + "
          f"system time of the server's processes and, on PostgreSQL, of the cluster's, during the "
          f"ingest, over the entries stored. Ingest: "
          f"{INGEST_DEVICES} devices posting pre-built signed gzip batches of 500 "
          f"({INGEST_DEVICES * INGEST_BATCHES * 500:,} entries). Drain: `SyncClient.run_once()` "
          f"over a gate store holding {BACKLOG:,} unsent entries (reads, gzip, signs, posts, marks "
          f"synced). Latency: {GATES} enrolled gates posting {GATE_ROUNDS} batches each, all at "
          f"once. Targets: ≥50,000 entries/s on SQLite, ≥30,000 on PostgreSQL; 50 gates p99 ≤150 ms; "
          f"backlog drained in ≤5 s.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
