"""No loss, no duplicates: hard kills and cut connections (in the manner of Kafka's
transactions test). A gate records entries all along; the sync client (`gate sync`)
and the township server (`gate server`) are SIGKILLed at random points and restarted,
and a proxy cuts connections mid-request and mid-response. At the end the entries on
the server are exactly the entries on the gate, each once.

GATE_SYNC_SOAK_ROUNDS=N runs N kill rounds instead of the default (a longer soak)."""
from __future__ import annotations

import os
import random
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from kiosk.store import Store
from sync.admin import Admin
from sync.client import enroll
from sync.testing import ROOT, ChaosProxy, PostgresCluster, ServerProcess, fill

TOKEN = "fault-suite-admin-token"
ROUNDS = int(os.environ.get("GATE_SYNC_SOAK_ROUNDS", "8"))


class SyncProcess:
    def __init__(self, store: Path, creds: Path, log: Path):
        self.args = [sys.executable, "-m", "kiosk.cli", "sync", "--store", str(store),
                     "--credentials", str(creds), "--interval", "0.05", "--backoff-cap", "0.4",
                     "--pull-interval", "1", "--batch-size", "200"]
        self.env = {**os.environ, "PYTHONPATH": str(ROOT), "GATE_CONFIG": os.devnull}
        self.log = log
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        out = open(self.log, "ab")
        self.proc = subprocess.Popen(self.args, env=self.env, stdout=out, stderr=out, cwd=ROOT)

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def alive(self) -> bool:
        return bool(self.proc and self.proc.poll() is None)


class Recorder(threading.Thread):
    """The gate in use: entries at random moments, some of them alarms."""

    def __init__(self, path: Path, device_id: str, rng: random.Random):
        super().__init__(daemon=True)
        self.store = Store.open(path)
        self.device_id, self.rng = device_id, rng
        self.stop = threading.Event()
        self.count = 0

    def run(self) -> None:
        while not self.stop.is_set():
            report = self.rng.choices(["none", "daily", "immediate"], [85, 10, 5])[0]
            fill(self.store, self.device_id, self.rng.randint(1, 20), self.rng, report=report)
            self.count = self.store.last_seq(self.device_id)
            self.stop.wait(self.rng.uniform(0.0, 0.03))


def chaos_run(tmp_path: Path, db_url: str, rounds: int, seed: int) -> None:
    rng = random.Random(seed)
    server = ServerProcess(db_url, TOKEN, log=tmp_path / "server.log").start()
    admin = Admin(server.url, TOKEN)
    creds = enroll(server.url, admin.enrollment("river-garden", "east")["token"])
    admin.set_policy("river-garden", risk_level="medium")
    proxy = ChaosProxy(server.port, drop_rate=0.7, seed=seed).start()
    creds.server = proxy.url
    creds_file = tmp_path / "creds.json"
    creds.save(creds_file)
    store_path = tmp_path / "gate.db"
    Store.open(store_path).close()
    fill(Store.open(store_path), creds.device_id, 800, rng)  # a backlog to start with
    recorder = Recorder(store_path, creds.device_id, rng)
    client = SyncProcess(store_path, creds_file, tmp_path / "sync.log")
    recorder.start()
    client.start()
    kills = {"client": 0, "server": 0}
    # Every kind of kill at least once, the rest at random, in random order.
    victims = ["client", "server", "both"] + [rng.choice(["client", "server", "both"])
                                              for _ in range(max(0, rounds - 3))]
    rng.shuffle(victims)
    try:
        mark = 0  # proxy connections before the last restart
        for victim in victims:
            # Let the restarted client reach the server first, then kill at a random moment.
            deadline = time.monotonic() + 15
            while proxy.connections == mark and time.monotonic() < deadline:
                time.sleep(0.02)
            time.sleep(rng.uniform(0.05, 1.0))
            if victim in ("client", "both"):
                client.kill()
                kills["client"] += 1
            if victim in ("server", "both"):
                server.kill()
                kills["server"] += 1
            time.sleep(rng.uniform(0.0, 0.3))
            mark = proxy.connections
            if not server.proc or server.proc.poll() is not None:
                server.start()
            if not client.alive():
                client.start()
        recorder.stop.set()
        recorder.join(10)
        proxy.drop_rate = 0.0
        watcher = Store.open(store_path)
        deadline = time.monotonic() + 60
        while watcher.unsynced_count(creds.device_id) and time.monotonic() < deadline:
            time.sleep(0.1)
        left = watcher.unsynced_count(creds.device_id)
        client.kill()
        assert left == 0, f"{left} entries never synced; see {tmp_path}/sync.log"

        gate_side = [(e.seq, e.boot_id, e.monotonic_ns, e.report)
                     for e in watcher.entries("device_id = ?", (creds.device_id,))]
        server_side = [(e["seq"], e["boot_id"], e["monotonic_ns"], e["report"])
                       for e in admin.entries(creds.device_id)]
        assert len(server_side) == len(set(server_side)), "duplicates on the server"
        assert set(server_side) == set(gate_side), "server and gate disagree"
        assert len(gate_side) == recorder.count == max(s for s, *_ in gate_side)
        [dev] = admin.devices()
        assert dev["acked_seq"] == dev["max_seq"] == recorder.count
        assert kills["client"] and kills["server"], kills
        assert proxy.cuts > 0, "the proxy never cut a connection"
        watcher.close()
    finally:
        recorder.stop.set()
        client.kill()
        server.kill()
        proxy.close()
        admin.close()


def test_kills_and_cut_connections_lose_nothing_and_duplicate_nothing(tmp_path):
    chaos_run(tmp_path, str(tmp_path / "township.db"), ROUNDS, seed=int(time.time()))


def test_same_on_postgresql(tmp_path):
    why = PostgresCluster.available()
    if why:
        pytest.skip(why)
    cluster = PostgresCluster().start()
    try:
        chaos_run(tmp_path, cluster.new_database("faults"), max(4, ROUNDS // 2), seed=int(time.time()) + 1)
    finally:
        cluster.stop()
