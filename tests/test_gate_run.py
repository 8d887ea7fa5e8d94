"""`gate run`: the daemon on simulated and file devices, seen through its local API."""
from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest
import segno
from support import gate_config, wait_for

from devices.thermometer.emulator import GyMcu90614Emulator
from kiosk import clock, config
from kiosk.codes import issue
from kiosk.daemon import Daemon, DaemonError, Options, notify
from kiosk.people import person_ref
from kiosk.records import id_check_digit
from kiosk.store import Store

ROOT = Path(__file__).resolve().parents[1]


def valid_id(first17: str) -> str:
    return first17 + id_check_digit(first17)


WANG, LI = valid_id("11010519900101123"), valid_id("11010519850505234")
SALT = "test-salt"
AMBIENT, NORMAL = 12.0, 33.3


def code(signer, name, id_number, colour="green"):
    ref = person_ref(id_number, SALT)
    return ref, issue.health_code(signer, person_ref=ref, name=name, colour=colour,
                                  issued_at=clock.utc_now() - dt.timedelta(seconds=20))


def events(client: httpx.Client, out: list, stop: threading.Event) -> None:
    try:
        with client.stream("GET", "/v1/events", timeout=None) as r:
            for line in r.iter_lines():
                if line.startswith("data: "):
                    out.append(json.loads(line[6:]))
                if stop.is_set():
                    return
    except httpx.HTTPError:  # the daemon stopped under the stream, as it does at the end of a test
        pass


def test_a_demo_identity_refuses_to_start(tmp_path):
    with pytest.raises(DaemonError, match="demo"):
        Daemon(config.load(env={}), Options(db=str(tmp_path / "g.db")))


def test_the_gate_decides_on_simulated_devices_and_the_api_sees_it(tmp_path, signer):
    sock = str(tmp_path / "api.sock")
    daemon = Daemon(gate_config(), Options(db=str(tmp_path / "g.db"), camera="sim", port="sim",
                                           trust=str(tmp_path / "trust.json"), api_socket=sock,
                                           api_tcp="127.0.0.1:0"))
    daemon.start()
    client = httpx.Client(transport=httpx.HTTPTransport(uds=sock), base_url="http://gate")
    seen: list[dict] = []
    stop = threading.Event()
    reader = threading.Thread(target=events, args=(client, seen, stop), daemon=True)
    try:
        reader.start()
        wait_for(lambda: seen and seen[0]["type"] == "hello")
        assert client.get("/v1/state").json()["phase"] == "waiting"
        ref, text = code(signer, "王小明", "110105199001011234")
        daemon.emulator.values = [(NORMAL, AMBIENT)]
        daemon.camera_sim.show(text, seconds=1.5, distortion="tilt")
        wait_for(lambda: any(e["type"] == "decision" for e in seen))
        decision = next(e for e in seen if e["type"] == "decision")
        assert decision["action"] == "admit" and decision["words"]["headline"] == "请通行"
        assert decision["masked_name"] == "王*明"
        kinds = [e["type"] for e in seen]
        assert kinds.index("code") < kinds.index("reading") < kinds.index("decision")
        assert daemon.relay.pulses and daemon.store.entries()[0].person_ref == ref
        # a command the gate cannot do now is refused with a sentence, not a crash
        r = client.post("/v1/commands/manual_temperature", json={"body_c": 36.5})
        assert r.status_code == 409 and "no one" in r.json()["detail"]
        assert client.post("/v1/commands/fly", json={}).status_code == 404
        assert client.post("/v1/commands/override", json={"reason": "x" * 500}).status_code == 422
        # the queue screen is served on the TCP address for a browser
        page = httpx.get(daemon.api.url + "/")
        assert page.status_code == 200 and "EventSource" in page.text
    finally:
        stop.set()
        client.close()
        daemon.stop()
    assert not Path(sock).exists()


def test_gate_run_decides_a_folder_of_codes_and_exits(tmp_path, signer):
    folder = tmp_path / "codes"
    folder.mkdir()
    people = [("王小明", "110105199001011234", "green"), ("张伟", "110105197707073456", "yellow"),
              ("赵敏", "110105199209094567", "green")]
    for i, (name, id_number, colour) in enumerate(people):
        segno.make_qr(code(signer, name, id_number, colour)[1], error="m").save(
            str(folder / f"{i:02d}.png"), scale=4, border=4)
    emulator = GyMcu90614Emulator(values=[(NORMAL, AMBIENT)]).start()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "GATE_GATE_DEVICE_ID": "east-1",
           "GATE_GATE_COMMUNITY": "lotus-garden", "GATE_CONFIG": str(tmp_path / "none.toml")}
    (tmp_path / "none.toml").write_text("")
    try:
        r = subprocess.run([sys.executable, "-m", "kiosk.cli", "run", "--camera", str(folder), "--port",
                            emulator.path, "--trust", str(tmp_path / "trust.json"), "--db", str(tmp_path / "g.db"),
                            "--api-socket", str(tmp_path / "api.sock"), "--exit-when-done"],
                           env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    finally:
        emulator.stop()
    assert r.returncode == 0, r.stderr
    with Store.open(tmp_path / "g.db") as store:
        got = [(e.masked_name, e.action, e.code_colour) for e in store.entries()]
    assert got == [("王*明", "admit", "green"), ("张*", "refuse", "yellow"), ("赵*", "admit", "green")]


def test_ready_goes_to_the_notify_socket(tmp_path, monkeypatch):
    import socket
    path = str(tmp_path / "notify")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.bind(path)
        monkeypatch.setenv("NOTIFY_SOCKET", path)
        assert notify("READY=1")
        assert s.recv(100) == b"READY=1"


def test_the_lists_decide_who_passes(tmp_path, signer):
    """Residents, passes and a quarantine order from a lists file; a medium-risk policy."""
    refs = {n: person_ref(i, SALT) for n, i in (("王小明", WANG), ("李华", LI))}
    lists = {
        "policy": {"risk_level": "medium"},
        "households": [{"id": "h1", "address": "3-2-501"}],
        "residents": [{"person_ref": refs["王小明"], "household_id": "h1", "masked_name": "王*明", "role": "owner"},
                      {"person_ref": refs["李华"], "household_id": "h1", "masked_name": "李*", "role": "member"}],
        "passes": [{"serial": "P1", "person_ref": refs["王小明"], "household_id": "h1",
                    "valid_from": "2026-01-01T00:00:00Z", "valid_until": "2030-01-01T00:00:00Z"}],
        "quarantine_orders": [{"id": "q1", "person_ref": refs["李华"], "kind": "home_quarantine",
                               "start": "2026-01-01T00:00:00Z", "end": "2030-01-01T00:00:00Z"}],
        "revoked_passes": [],  # received, empty: without it the lists are incomplete and every decision says so
    }
    (tmp_path / "lists.json").write_text(json.dumps(lists, ensure_ascii=False))
    (tmp_path / "salt").write_text(SALT)
    sock = str(tmp_path / "api.sock")
    daemon = Daemon(gate_config(people={"salt_file": str(tmp_path / "salt")}),
                    Options(db=str(tmp_path / "g.db"), camera="sim", port="sim", trust=str(tmp_path / "trust.json"),
                            lists=str(tmp_path / "lists.json"), api_socket=sock))
    daemon.start()
    client = httpx.Client(transport=httpx.HTTPTransport(uds=sock), base_url="http://gate")
    try:
        daemon.emulator.values = [(NORMAL, AMBIENT)]
        # a resident with a pass: admitted at medium
        daemon.camera_sim.show(code(signer, "王小明", WANG)[1], seconds=1.0)
        wait_for(lambda: len(daemon.store.entries()) == 1)
        # a stranger's fresh green code at medium: a visitor to register, turned away
        daemon.camera_sim.show(code(signer, "刘洋", "320102199503036789")[1], seconds=1.0)
        wait_for(lambda: len(daemon.store.entries()) == 2)
        wait_for(lambda: daemon.checkpoint.phase == "waiting")
        # the resident under home quarantine tries to leave; the guard looks her up by ID number
        found = client.get("/v1/people", params={"name": "李华", "household": "h1"}).json()["people"]
        assert found == [{"person_ref": refs["李华"], "masked_name": "李*", "household_id": "h1"}]
        typo = LI[:-1] + ("0" if LI[-1] != "0" else "1")
        bad = client.post("/v1/commands/look_up", json={"id_number": typo})
        assert bad.status_code == 409  # a mistyped check digit is named, not looked up
        r = client.post("/v1/commands/look_up", json={"id_number": LI, "direction": "out"})
        assert r.status_code == 200, r.text
        wait_for(lambda: len(daemon.store.entries()) == 3)
    finally:
        client.close()
        daemon.stop()
    with Store.open(tmp_path / "g.db") as store:
        got = [(e.masked_name, e.subject_kind, e.action, e.reasons) for e in store.entries()]
    assert got[0] == ("王*明", "resident", "admit", ["all_checks_passed"])
    assert got[1][1:3] == ("visitor", "refuse") and got[1][3] == ["visitor_not_approved"]
    assert got[2] == ("李*", "resident", "refuse", ["home_quarantine_exit"])


def test_stopping_with_an_event_stream_open_ends_it_without_an_error(tmp_path, signer, capfd):
    """A console still listening when the gate stops: its stream ends, nothing is cancelled
    mid-response (uvicorn logs a cancelled stream as an error with a traceback)."""
    sock = str(tmp_path / "api.sock")
    daemon = Daemon(gate_config(), Options(db=str(tmp_path / "g.db"), camera="sim", port="sim",
                                           trust=str(tmp_path / "trust.json"), api_socket=sock))
    daemon.start()
    client = httpx.Client(transport=httpx.HTTPTransport(uds=sock), base_url="http://gate")
    seen: list[dict] = []
    reader = threading.Thread(target=events, args=(client, seen, threading.Event()), daemon=True)
    try:
        reader.start()
        wait_for(lambda: seen and seen[0]["type"] == "hello")
    finally:
        daemon.stop()
    reader.join(10)
    client.close()
    assert not reader.is_alive()  # the stream ended with the gate
    err = capfd.readouterr().err  # uvicorn logs to stderr through its own handler
    assert "Traceback" not in err and "ERROR" not in err, err
