"""`gate sim thermometer` and `gate thermometer read|calibrate`, run as a user would."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.timeout(120)


class Sim:
    """`gate sim thermometer ...` in the background; the first stdout line is the port."""

    def __init__(self, *args: str):
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.proc = subprocess.Popen([sys.executable, "-m", "kiosk.cli", "sim", "thermometer", *args],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     env=env, cwd=ROOT)
        self.path = self.proc.stdout.readline().strip()
        assert self.path, self.proc.stderr.read()

    def close(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        return self.proc.stderr.read()


@pytest.fixture
def sim():
    sims = []

    def start(*args):
        s = Sim(*args)
        sims.append(s)
        return s
    yield start
    for s in sims:
        s.close()


def read_json(gate, *args):
    out = gate("thermometer", "read", "--json", "--timeout", "20", *args, timeout=90)
    assert out.returncode == 0, out.stderr
    return [json.loads(line) for line in out.stdout.splitlines()]


@pytest.mark.parametrize("protocol,extra", [
    ("gy-mcu90614", []), ("gy-mcu90614", ["--mode", "continuous"]),
    ("modbus", ["--ambient-register", "0x14"]), ("ascii", []),
])
def test_read_from_each_simulator(gate, sim, protocol, extra):
    s = sim("--protocol", protocol, "--object", "34.5,34.6", "--ambient", "20", "--interval", "0.05")
    rows = read_json(gate, "--port", s.path, "--protocol", protocol, "--count", "3", *extra)
    assert len(rows) == 3
    for row in rows:
        assert row["object_c"] in (34.5, 34.6) and row["ambient_c"] == 20.0
        assert row["body_c"] == pytest.approx(row["object_c"] + 2.5) and row["flag"] == "ok"
        assert row["protocol"] == protocol and row["port"] == s.path and row["raw"]


def test_ascii_without_ambient_prints_null(gate, sim):
    s = sim("--protocol", "ascii", "--no-ambient", "--object", "34.7", "--interval", "0.05")
    [row] = read_json(gate, "--port", s.path, "--protocol", "ascii", "--count", "1")
    assert row["ambient_c"] is None and row["body_c"] == pytest.approx(34.7 - 2.5 + 4.5)


def test_ascii_split_lines(gate, sim):
    s = sim("--protocol", "ascii", "--split-lines", "--object", "34.5", "--ambient", "21", "--interval", "0.05")
    rows = read_json(gate, "--port", s.path, "--protocol", "ascii", "--count", "3")
    assert rows[-1]["ambient_c"] == 21.0 and rows[-1]["object_c"] == 34.5


def test_modbus_options_and_text_output(gate, sim):
    s = sim("--protocol", "modbus", "--address", "5", "--register", "0x30", "--scale", "0.01",
            "--object", "35.25", "--ambient", "20")
    out = gate("thermometer", "read", "--port", s.path, "--protocol", "modbus", "--address", "5",
               "--register", "0x30", "--scale", "0.01", "--function", "4", "--count", "2",
               "--timeout", "20", timeout=90)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    # no ambient: 25 °C assumed
    assert len(lines) == 2 and "object 35.25 °C" in lines[0] and "body 37.25 °C" in lines[0]


def test_implausible_is_flagged_in_json(gate, sim):
    s = sim("--protocol", "gy-mcu90614", "--object", "22.0", "--ambient", "22.0")
    [row] = read_json(gate, "--port", s.path, "--protocol", "gy-mcu90614", "--count", "1")
    assert row["body_c"] is None and row["flag"] == "implausible" and row["object_c"] == 22.0


def test_ascii_pattern_option(gate, sim):
    s = sim("--protocol", "ascii", "--object", "34.5", "--interval", "0.05")
    rows = read_json(gate, "--port", s.path, "--protocol", "ascii", "--count", "1",
                     "--pattern", r"Object: (?P<object>\d+\.\d+) C, Ambient: (?P<ambient>\d+\.\d+)")
    assert rows[0]["object_c"] == 34.5


def test_unplugged_simulator_comes_back(gate, sim, tmp_path):
    link = str(tmp_path / "ttyTHERM")
    s = sim("--protocol", "gy-mcu90614", "--object", ",".join(f"{34 + i / 10:.1f}" for i in range(30)),
            "--link", link, "--fault", "disconnect:at=3,for=0.5", "--no-auto-output")
    assert s.path == link
    rows = read_json(gate, "--port", link, "--protocol", "gy-mcu90614", "--count", "8")
    assert [r["object_c"] for r in rows] == [round(34 + i / 10, 1) for i in range(8)]
    assert "reappeared" in s.close()


def test_missing_port_is_a_clear_error(gate, tmp_path):
    out = gate("thermometer", "read", "--port", str(tmp_path / "nope"), "--protocol", "gy-mcu90614")
    assert out.returncode == 2
    assert "cannot open serial port" in out.stderr and "No such file" in out.stderr
    assert "Traceback" not in out.stderr


def test_silent_device_times_out(gate, sim):
    s = sim("--protocol", "gy-mcu90614", "--fault", "silence:at=0,for=60")
    out = gate("thermometer", "read", "--port", s.path, "--protocol", "gy-mcu90614", "--count", "1",
               "--timeout", "2", "--lang", "en", timeout=90)
    assert out.returncode == 1 and "no reading for 2 s" in out.stderr


@pytest.mark.slow  # waits out the 10 s default
def test_wrong_protocol_gives_up_after_the_default_timeout(gate, sim):
    """A GY-MCU90614 read as Modbus gives no reading: one sentence after 10 s, not a wait for ever."""
    s = sim("--protocol", "gy-mcu90614")
    out = gate("thermometer", "read", "--port", s.path, "--protocol", "modbus", "--lang", "en", timeout=90)
    assert out.returncode == 1
    [line] = out.stderr.splitlines()
    assert line.startswith("gate thermometer: no reading for 10 s on ") and "check --protocol" in line


def test_sim_rejects_unknown_fault(gate):
    out = gate("sim", "thermometer", "--protocol", "ascii", "--fault", "gremlins")
    assert out.returncode == 2 and "unknown fault" in out.stderr


def test_calibrate_prints_fit_and_residuals(gate, tmp_path):
    csv = tmp_path / "pairs.csv"
    rows = [(34.0, 10.0), (34.6, 15.0), (35.1, 20.0), (35.4, 25.0), (35.9, 30.0)]
    csv.write_text("object_c,ambient_c,reference_c\n"
                   + "".join(f"{o},{a},{o - 0.08 * a + 4.1 + (0.05 if i % 2 else -0.05):.3f}\n"
                             for i, (o, a) in enumerate(rows)))
    out = gate("thermometer", "calibrate", str(csv))
    assert out.returncode == 0, out.stderr
    assert "a = -0.0" in out.stdout and "b = +4.0" in out.stdout and "residual RMS" in out.stdout
    assert len([line for line in out.stdout.splitlines() if line.strip().startswith("3")]) == 5
    js = json.loads(gate("thermometer", "calibrate", str(csv), "--json").stdout)
    assert js["n"] == 5 and len(js["residuals_c"]) == 5 and js["max_abs_c"] < 0.1
    assert js["a"] == pytest.approx(-0.08, abs=0.01) and js["b"] == pytest.approx(4.1, abs=0.1)
    bad = tmp_path / "bad.csv"
    bad.write_text("object_c\n35\n")
    out = gate("thermometer", "calibrate", str(bad))
    assert out.returncode == 2 and "missing column" in out.stderr


@pytest.mark.parametrize("protocol,answer", [
    # the datasheet's example frame, answered to each A5 15 BA
    ("gy-mcu90614", bytes.fromhex("5A5A45040C780D19A7")),
    # the two-line style of common Arduino sketches for these modules
    ("ascii", b"TO:31.92\r\nTA:33.53\r\n"),
])
def test_read_a_peer_written_from_the_datasheet(gate, protocol, answer):
    """Not our emulator: literal bytes, as someone else's device or emulator would send them."""
    import select
    import threading
    import tty
    master, slave = os.openpty()
    tty.setraw(slave)
    stop = threading.Event()

    def peer():
        heard = bytearray()
        while not stop.is_set():
            if select.select([master], [], [], 0.05)[0]:
                heard += os.read(master, 64)
            if protocol == "ascii":
                os.write(master, answer)
                stop.wait(0.05)
            elif b"\xa5\x15\xba" in heard:
                del heard[:heard.index(b"\xa5\x15\xba") + 3]
                os.write(master, answer)
    t = threading.Thread(target=peer, daemon=True)
    t.start()
    try:
        rows = read_json(gate, "--port", os.ttyname(slave), "--protocol", protocol, "--count", "3")
    finally:
        stop.set()
        t.join(5)
        os.close(master)
        os.close(slave)
    assert rows[-1]["object_c"] == 31.92 and rows[-1]["ambient_c"] == 33.53
    assert rows[-1]["body_c"] is None and rows[-1]["flag"] == "implausible"   # 33.07 °C estimate: not a person
