"""The gate under bad luck: killed mid-decision, a hung loop, an unplugged thermometer,
a camera that is not there."""
from __future__ import annotations

import datetime as dt
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
import segno
from support import gate_config, wait_for

from devices.thermometer.emulator import GyMcu90614Emulator
from kiosk import clock
from kiosk.codes import issue
from kiosk.daemon import Daemon, Options
from kiosk.people import person_ref
from kiosk.store import Store

ROOT = Path(__file__).resolve().parents[1]
AMBIENT, NORMAL = 12.0, 33.3


def health_code(signer, i: int) -> str:
    return issue.health_code(signer, person_ref=person_ref(f"id-{i}", "salt"), name=f"王{i}", colour="green",
                             issued_at=clock.utc_now() - dt.timedelta(seconds=10))


@pytest.mark.slow
def test_killing_the_gate_never_leaves_a_pulse_without_its_entry(tmp_path, signer):
    """SIGKILL at random moments while people are decided: every pulse of the relay has an
    admitted entry on disk before it, and every entry on disk is whole."""
    seed = int(os.environ.get("GATE_TEST_SEED") or random.randrange(2**32))
    print(f"seed {seed} (replay with GATE_TEST_SEED={seed})")
    rng = random.Random(seed)
    folder = tmp_path / "codes"
    folder.mkdir()
    for i in range(60):
        segno.make_qr(health_code(signer, i), error="m").save(str(folder / f"{i:03d}.png"), scale=4, border=4)
    emulator = GyMcu90614Emulator(values=[(NORMAL, AMBIENT)]).start()
    (tmp_path / "empty.toml").write_text("")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "GATE_CONFIG": str(tmp_path / "empty.toml"),
           "GATE_GATE_DEVICE_ID": "east-1", "GATE_GATE_COMMUNITY": "lotus-garden",
           "GATE_RELAY_LOG": str(tmp_path / "pulses.jsonl"), "GATE_CHECKPOINT_OUTCOME_S": "0.05"}
    db = tmp_path / "g.db"
    try:
        for _ in range(6):
            proc = subprocess.Popen(
                [sys.executable, "-m", "kiosk.cli", "run", "--camera", str(folder), "--port", emulator.path,
                 "--trust", str(tmp_path / "trust.json"), "--db", str(db), "--api-socket", str(tmp_path / "a.sock")],
                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp_path)
            time.sleep(rng.uniform(1.5, 5.0))
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
            log = tmp_path / "pulses.jsonl"
            pulses = log.read_text().splitlines() if log.exists() else []
            with Store.open(db) as store:
                entries = store.entries()  # every row parses back into a whole entry
                assert store.conn.execute("PRAGMA quick_check").fetchone()[0] == "ok"
            admitted = [e for e in entries if e.action == "admit"]
            assert len(pulses) <= len(admitted), (len(pulses), len(admitted))
            assert all(e.readings and e.code_result == "valid" for e in admitted)
    finally:
        emulator.stop()
    assert admitted, "the gate never got to decide anyone: the kills came too early to test anything"


def test_a_hung_checkpoint_stops_petting_the_watchdog(tmp_path, signer, monkeypatch):
    path = str(tmp_path / "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(0.1)
    got: list[tuple[float, bytes]] = []
    stop = threading.Event()

    def read() -> None:  # as systemd does: always reading
        while not stop.is_set():
            try:
                got.append((time.monotonic(), sock.recv(100)))
            except TimeoutError:
                pass

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    monkeypatch.setenv("WATCHDOG_USEC", "200000")  # systemd would kill after 0.2 s without a pet
    hang = threading.Event()
    daemon = Daemon(gate_config(), Options(db=str(tmp_path / "g.db"), camera="sim", port="sim",
                                           trust=str(tmp_path / "trust.json"), api_socket=str(tmp_path / "a.sock")))

    def pets_since(t: float) -> int:
        return sum(1 for at, m in got if at > t and m == b"WATCHDOG=1")

    try:
        daemon.start()
        wait_for(lambda: any(m == b"READY=1" for _, m in got))
        t0 = time.monotonic()
        wait_for(lambda: pets_since(t0) >= 5)
        # the checkpoint's own loop hangs (a look-up that never returns): the pets stop
        daemon.checkpoint.find_person = lambda *a: hang.wait(30) or None
        daemon.camera_sim.show(health_code(signer, 1), seconds=2)
        wait_for(lambda: daemon.checkpoint.phase == "waiting" and daemon.scanner.stats.scans >= 1)
        time.sleep(0.5)  # the last pet before the hang has arrived
        t1 = time.monotonic()
        time.sleep(1.0)
        assert pets_since(t1) == 0
        # the local API still answers: only the loop the watchdog watches is stuck
        client = httpx.Client(transport=httpx.HTTPTransport(uds=str(tmp_path / "a.sock")), base_url="http://g")
        assert client.get("/v1/state").status_code == 200
        client.close()
    finally:
        hang.set()
        daemon.stop()
        stop.set()
        reader.join(2)
        sock.close()


def test_an_unplugged_thermometer_leaves_the_manual_temperature(tmp_path, signer):
    missing = str(tmp_path / "ttyUSB9")  # no such port: the module is unplugged
    daemon = Daemon(gate_config(), Options(db=str(tmp_path / "g.db"), camera="sim", port=missing,
                                           trust=str(tmp_path / "trust.json"), api_socket=str(tmp_path / "a.sock")))
    client = httpx.Client(transport=httpx.HTTPTransport(uds=str(tmp_path / "a.sock")), base_url="http://g")
    try:
        daemon.start()
        wait_for(lambda: client.get("/v1/state").json()["status"]["thermometer"]["status"] == "port_missing",
                 what="the status to say the port is missing")
        assert not client.get("/v1/state").json()["status"]["thermometer"]["connected"]
        daemon.camera_sim.show(health_code(signer, 2), seconds=5)  # held up until the gate reads it
        wait_for(lambda: daemon.checkpoint.phase == "measuring", what="the code to be read")
        daemon.camera_sim.clear()
        r = client.post("/v1/commands/manual_temperature", json={"body_c": 36.4})
        assert r.status_code == 200, r.text
        wait_for(lambda: daemon.store.entries())
        entry = daemon.store.entries()[0]
        assert entry.action == "admit" and entry.readings == [{"body_c": 36.4, "source": "manual"}]
    finally:
        client.close()
        daemon.stop()


def test_a_camera_that_is_not_there_does_not_stop_the_gate(tmp_path, signer):
    daemon = Daemon(gate_config(), Options(db=str(tmp_path / "g.db"), camera="/dev/video97", port="sim",
                                           trust=str(tmp_path / "trust.json"), api_socket=str(tmp_path / "a.sock")))
    client = httpx.Client(transport=httpx.HTTPTransport(uds=str(tmp_path / "a.sock")), base_url="http://g")
    try:
        daemon.start()
        wait_for(lambda: client.get("/v1/state").json()["status"]["camera"]["status"] in ("lost", "opening"))
        # the guard looks a person up instead; the checkpoint is there to take it
        r = client.post("/v1/commands/emergency_exit", json={"emergency": "acute_illness"})
        assert r.status_code == 200, r.text
        wait_for(lambda: daemon.store.entries())
        assert daemon.store.entries()[0].reasons == ["emergency_exit"]
    finally:
        client.close()
        daemon.stop()
