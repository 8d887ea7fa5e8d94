"""Sync benchmark: township server ingest (SQLite, PostgreSQL), backlog drain, and
ingest latency with 50 gates syncing at once. Server in its own process; the load
generator in this one; everything on 127.0.0.1."""
from __future__ import annotations

import gzip
import json
import os
import random
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx

from kiosk.store import Store
from sync import auth
from sync.admin import Admin
from sync.client import Credentials, SyncClient, SyncConfig, enroll, wire
from sync.testing import PostgresCluster, ServerProcess, fill, sample_entry

TOKEN = "bench-admin-token-0123456789"
INGEST_DEVICES = 4
INGEST_BATCHES = 40        # per device, of 500: 80,000 entries
BACKLOG = 10_000
GATES = 50
GATE_ROUNDS = 20           # posts per gate in the latency test
GATE_BATCH = 20            # entries per post: a busy gate syncing every few seconds


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


def ingest(url: str, prefix: str) -> float:
    creds = enroll_devices(url, INGEST_DEVICES, prefix)
    rng = random.Random(1)
    bodies = {c.device_id: batches(c.device_id, INGEST_BATCHES, 500, rng) for c in creds}

    def one_device(c: Credentials) -> None:
        key = c.key()
        with httpx.Client(base_url=url, timeout=60) as http:
            for body in bodies[c.device_id]:
                post(http, c, key, body)

    t0 = time.perf_counter()
    with ThreadPoolExecutor(INGEST_DEVICES) as pool:
        list(pool.map(one_device, creds))
    return INGEST_DEVICES * INGEST_BATCHES * 500 / (time.perf_counter() - t0)


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


def latency(url: str, prefix: str) -> tuple[float, float, float, float]:
    creds = enroll_devices(url, GATES, prefix + "-lat")
    rng = random.Random(3)
    bodies = {c.device_id: batches(c.device_id, GATE_ROUNDS, GATE_BATCH, rng) for c in creds}
    times: list[float] = []
    lock = threading.Lock()
    start = threading.Barrier(GATES)

    def gate(c: Credentials) -> None:
        key = c.key()
        with httpx.Client(base_url=url, timeout=60) as http:
            start.wait()
            for body in bodies[c.device_id]:
                dt = post(http, c, key, body)
                with lock:
                    times.append(dt)

    t0 = time.perf_counter()
    with ThreadPoolExecutor(GATES) as pool:
        list(pool.map(gate, creds))
    wall = time.perf_counter() - t0
    times.sort()
    p = lambda q: times[min(len(times) - 1, int(q * len(times)))] * 1000  # noqa: E731
    return p(0.5), p(0.99), times[-1] * 1000, GATES * GATE_ROUNDS * GATE_BATCH / wall


def run_backend(name: str, db_url: str, work: Path) -> dict:
    server = ServerProcess(db_url, TOKEN, None, log=work / f"{name}-server.log")
    server.start()
    try:
        rate = ingest(server.url, name)
        print(f"{name}: ingest {rate:,.0f}/s", file=sys.stderr, flush=True)
        drain_s, drained = drain(server.url, name, work)
        print(f"{name}: drain {drain_s:.2f} s", file=sys.stderr, flush=True)
        p50, p99, worst, lat_rate = latency(server.url, name)
        print(f"{name}: p99 {p99:.0f} ms", file=sys.stderr, flush=True)
    finally:
        server.stop()
    return {"rate": rate, "drain_s": drain_s, "drained": drained, "p50": p50, "p99": p99,
            "max": worst, "lat_rate": lat_rate}


def main() -> int:
    os.environ.setdefault("GATE_CONFIG", os.devnull)  # no gate.toml: the defaults
    work = Path(tempfile.mkdtemp(prefix="bench-sync-"))
    results = {"SQLite": run_backend("sqlite", str(work / "township.db"), work)}
    why_not = PostgresCluster.available()
    if why_not is None:
        pg = PostgresCluster().start()
        try:
            results["PostgreSQL 15"] = run_backend("pg", pg.new_database("bench"), work)
        finally:
            pg.stop()
    print("## Sync: township server ingest and gate backlog\n")
    print("| backend | ingest entries/s (4 gates, batches of 500) | drain 10,000-entry backlog | "
          f"{GATES} gates at once: p50 / p99 / max latency per post of {GATE_BATCH} | entries/s then |")
    print("|---|---|---|---|---|")
    for name, r in results.items():
        print(f"| {name} | {r['rate']:,.0f} | {r['drain_s']:.2f} s ({r['drained']:,} entries) | "
              f"{r['p50']:.0f} / {r['p99']:.0f} / {r['max']:.0f} ms | {r['lat_rate']:,.0f} |")
    if why_not:
        print(f"\nPostgreSQL not measured: {why_not}.")
    print(f"\nMeasured: `gate server` in its own process (one uvicorn worker, synchronous=FULL on "
          f"SQLite, fsync on PostgreSQL), load generator threads in another on 127.0.0.1. Ingest: "
          f"{INGEST_DEVICES} devices posting pre-built signed gzip batches of 500 "
          f"({INGEST_DEVICES * INGEST_BATCHES * 500:,} entries). Drain: `SyncClient.run_once()` "
          f"over a gate store holding {BACKLOG:,} unsent entries (reads, gzip, signs, posts, marks "
          f"synced). Latency: {GATES} enrolled gates posting {GATE_ROUNDS} batches each, all at "
          f"once. Targets: ≥20,000 entries/s on SQLite; backlog drained in ≤5 s.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
