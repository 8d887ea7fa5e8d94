"""The reading loop through real pseudo-terminals: pyserial on one end, an emulator on the other.

Timeouts are generous and nothing asserts timing: these run on a loaded 2-core box.
"""
from __future__ import annotations

import os
import threading
import time

import pytest

from devices.thermometer import AsciiSession, Flag, GyMcu90614Session, ModbusSession, Status, Thermometer
from devices.thermometer.emulator import AsciiEmulator, FaultSpec, GyMcu90614Emulator, ModbusEmulator

pytestmark = pytest.mark.timeout(120)

# distinct values, so a lost or repeated reading shows
SCRIPT = [(round(34.0 + i * 0.1, 1), 20.0) for i in range(60)]
OBJECTS = [o for o, _ in SCRIPT]


def collect(therm: Thermometer, n: int, timeout: float = 30.0, until=None) -> list:
    """Run the loop in a thread until n readings (or `until(readings)`) or the timeout."""
    got: list = []
    done = threading.Event()

    def loop():
        for r in therm.readings():
            got.append(r)
            if len(got) >= n or (until and until(got)):
                break
        done.set()

    t = threading.Thread(target=loop, daemon=True)
    t.start()
    done.wait(timeout)
    therm.stop()
    t.join(10)
    return got


def thermometer(path, session, **kw) -> Thermometer:
    kw.setdefault("backoff_max", 0.3)
    kw.setdefault("silence_after", 1.0)
    return Thermometer(path, session, **kw)


def emulator(cls, faults=(), **kw):
    kw.setdefault("interval", 0.01)
    if cls is GyMcu90614Emulator:
        kw.setdefault("stream", False)   # configured not to stream at power-on: nothing sent unseen
    return cls(SCRIPT, faults=[FaultSpec.parse(f) for f in faults], **kw)


SESSIONS = {
    "gy-query": (GyMcu90614Emulator, lambda: GyMcu90614Session(mode="query", interval=0.0)),
    "gy-continuous": (GyMcu90614Emulator, lambda: GyMcu90614Session(mode="continuous")),
    "modbus-fn3": (ModbusEmulator, lambda: ModbusSession(function=3, register=0x12, ambient_register=0x14,
                                                        interval=0.0)),
    "modbus-fn4": (ModbusEmulator, lambda: ModbusSession(function=4, register=0x12, ambient_register=0x14,
                                                        interval=0.0)),
    "ascii": (AsciiEmulator, lambda: AsciiSession()),
}


@pytest.mark.parametrize("kind", sorted(SESSIONS))
def test_each_protocol_each_mode_reads_the_script_in_order(kind):
    emu_cls, session = SESSIONS[kind]
    with emulator(emu_cls) as emu:
        therm = thermometer(emu.path, session())
        got = collect(therm, 10)
    # a streaming-from-power-on device may have sent lines before the port was opened
    first = OBJECTS.index(got[0].object_c) if kind == "ascii" else 0
    assert [r.object_c for r in got] == OBJECTS[first:first + 10]
    assert all(r.ambient_c == 20.0 for r in got)
    r = got[0]
    assert r.body_c == pytest.approx(r.object_c - 0.1 * 20 + 4.5) and r.flag is Flag.OK
    assert r.port == emu.path and r.protocol == session().protocol and r.raw
    st = therm.status()
    assert st.readings == 10 and st.last_good_age_s is not None


@pytest.mark.parametrize("mode", ["query", "continuous"])
def test_gy_module_streaming_from_power_on(mode):
    # The datasheet default: the module streams ~14 frames/s as soon as it has power.
    with emulator(GyMcu90614Emulator, stream=True, interval=1 / 14) as emu:
        got = collect(thermometer(emu.path, GyMcu90614Session(mode=mode)), 6)
    idx = [OBJECTS.index(r.object_c) for r in got]
    assert idx == list(range(idx[0], idx[0] + 6))


def test_ascii_module_with_split_lines():
    with emulator(AsciiEmulator, split=True) as emu:
        got = collect(thermometer(emu.path, AsciiSession()), 6)
    idx = [OBJECTS.index(r.object_c) for r in got]
    assert idx == list(range(idx[0], idx[0] + 6))
    assert all(r.ambient_c == 20.0 for r in got[1:])   # paired once the TA lines are known


def test_modbus_without_ambient_register_and_other_address():
    with emulator(ModbusEmulator, address=17, register=0x100, ambient_register=0x101, scale=0.01) as emu:
        got = collect(thermometer(emu.path, ModbusSession(address=17, register=0x100, scale=0.01,
                                                          interval=0.0)), 3)
    assert [r.object_c for r in got] == OBJECTS[:3]
    assert all(r.ambient_c is None for r in got)


def test_modbus_through_an_echoing_rs485_adapter():
    with emulator(ModbusEmulator, echo=True) as emu:
        therm = thermometer(emu.path, SESSIONS["modbus-fn3"][1]())
        got = collect(therm, 5)
    assert [r.object_c for r in got] == OBJECTS[:5]
    assert not therm.status().counts   # the echo is not garbage


def test_a_second_reader_cannot_steal_the_port():
    from devices.thermometer import PortOpenError
    with emulator(GyMcu90614Emulator) as emu:
        first = thermometer(emu.path, GyMcu90614Session())
        first.connect()
        try:
            with pytest.raises(PortOpenError, match="cannot open serial port .*in use"):
                thermometer(emu.path, GyMcu90614Session()).connect()
        finally:
            first.close()


def fault_counts(therm) -> dict:
    return therm.status().counts


@pytest.mark.parametrize("kind", ["gy-query", "gy-continuous", "modbus-fn3", "ascii"])
@pytest.mark.parametrize("fault,status", [("noise:every=3", None),
                                          ("bad-checksum:every=4", Status.CHECKSUM_ERROR),
                                          ("partial:every=4", None)])
def test_line_faults_give_named_statuses_and_only_true_readings(kind, fault, status):
    emu_cls, session = SESSIONS[kind]
    with emulator(emu_cls, [fault]) as emu:
        therm = thermometer(emu.path, session())
        got = collect(therm, 12)
    counts = fault_counts(therm)
    assert len(got) == 12
    # every reading is a script value, in script order
    idx = [OBJECTS.index(r.object_c) for r in got]
    assert idx == sorted(idx) and len(set(idx)) == len(idx)
    if fault.startswith("bad-checksum"):
        lost = {i for i in range(idx[-1] + 1) if (i + 1) % 4 == 0}
        assert set(idx) == set(range(idx[0], idx[-1] + 1)) - lost   # ascii may start late
        assert counts.get(status.value if kind != "ascii" else "garbage", 0) >= 2
    elif fault.startswith("partial"):
        assert counts.get("partial_frame", 0) + counts.get("garbage", 0) + counts.get("timeout", 0) >= 2
    else:
        assert counts.get("garbage", 0) + counts.get("checksum_error", 0) >= 2


def test_modbus_exception_responses_are_named():
    with emulator(ModbusEmulator, ["exception:every=3"]) as emu:
        therm = thermometer(emu.path, SESSIONS["modbus-fn3"][1]())
        got = collect(therm, 6)
    assert [r.object_c for r in got] == [OBJECTS[i] for i in range(9) if (i + 1) % 3][:6]
    assert therm.status().counts["device_exception"] >= 2
    assert "SERVER_DEVICE_FAILURE" in therm.status().last_error


@pytest.mark.parametrize("kind", ["gy-query", "modbus-fn3"])
def test_silence_is_timeout_and_no_data_then_readings_resume(kind):
    emu_cls, session = SESSIONS[kind]
    with emulator(emu_cls, ["silence:at=3,for=2.5"]) as emu:
        therm = thermometer(emu.path, session(), silence_after=0.8)
        seen: list = []

        def watch(got):
            if len(got) == 3:
                deadline = time.monotonic() + 20
                while time.monotonic() < deadline and not therm.status().no_data:
                    time.sleep(0.05)
                seen.append(therm.status())
            return False
        got = collect(therm, 6, until=watch)
    assert [r.object_c for r in got] == OBJECTS[:6]   # nothing lost across the silence
    assert seen and seen[0].no_data and seen[0].status is Status.NO_DATA and seen[0].connected
    counts = therm.status().counts
    assert counts.get("timeout", 0) >= 1 and counts.get("no_data", 0) >= 1


def test_continuous_silence_resends_the_start_command():
    # The module stops streaming (as if it restarted); the driver asks it to stream again.
    with emulator(GyMcu90614Emulator) as emu:
        therm = thermometer(emu.path, GyMcu90614Session(mode="continuous"), silence_after=0.5)

        def cut(got):
            if len(got) == 3:
                emu.streaming = False
            return False
        got = collect(therm, 8, until=cut)
    assert len(got) == 8 and therm.status().counts.get("no_data", 0) >= 1


def test_stuck_sensor_is_flagged_and_not_a_temperature():
    with emulator(GyMcu90614Emulator, ["stuck:at=2"]) as emu:
        therm = thermometer(emu.path, GyMcu90614Session(mode="query", interval=0.01),
                            stuck_after=0.3, stuck_min=5)
        got = collect(therm, 100_000, until=lambda g: g[-1].flag is Flag.STUCK)
    assert got[-1].flag is Flag.STUCK and got[-1].body_c is None
    assert got[-1].object_c == OBJECTS[2]                 # the raw value is kept
    assert all(r.flag is Flag.OK for r in got[:3])
    assert therm.status().status is Status.STUCK or therm.status().counts["stuck"] == 1


def test_port_missing_at_start_then_appears(tmp_path):
    link = str(tmp_path / "ttyTHERM")
    therm = thermometer(link, GyMcu90614Session(mode="query", interval=0.0))
    therm.start()
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not therm.status().counts.get("port_missing"):
            time.sleep(0.05)
        st = therm.status()
        assert st.status is Status.PORT_MISSING and not st.connected and st.last_good_age_s is None
        with emulator(GyMcu90614Emulator, link=link):
            r = therm.wait_reading(timeout=30)
            assert r is not None and r.object_c in OBJECTS   # the newest when this thread woke
            assert therm.status().connected
    finally:
        therm.stop()


@pytest.mark.parametrize("kind", ["gy-query", "gy-continuous", "modbus-fn3"])
def test_unplug_and_replug_loses_no_good_reading(kind, tmp_path):
    emu_cls, session = SESSIONS[kind]
    link = str(tmp_path / "ttyUSB0")
    with emulator(emu_cls, ["disconnect:at=5,for=0.8", "disconnect:at=12,for=0.3"], link=link) as emu:
        therm = thermometer(link, session())
        states = []
        got = collect(therm, 18, until=lambda g: states.append(therm.status()) and False)
    assert [r.object_c for r in got] == OBJECTS[:18]
    st = therm.status()
    assert st.reconnects >= 2 and st.counts["disconnected"] >= 2
    assert any(s.status is Status.DISCONNECTED or not s.connected for s in states) or st.counts["disconnected"]
    assert len([line for line in emu.log if line.startswith("reappeared")]) == 2


def test_ascii_replug_resumes_in_order(tmp_path):
    # An ASCII module streams from power-on: lines sent while nobody has the port open are
    # gone (as on a real UART), but everything that reached the host is delivered, in order.
    link = str(tmp_path / "ttyUSB0")
    with emulator(AsciiEmulator, ["disconnect:at=5,for=0.5"], link=link, interval=0.03):
        therm = thermometer(link, AsciiSession())
        got = collect(therm, 12)
    idx = [OBJECTS.index(r.object_c) for r in got]
    before = [i for i in idx if i < 5]   # line 0 may have gone out before the port was open
    assert before == list(range(before[0], 5))
    assert idx == sorted(set(idx)) and len(got) == 12
    assert therm.status().reconnects >= 1


def test_status_while_unplugged_and_background_thread(tmp_path):
    link = str(tmp_path / "ttyUSB0")
    emu = emulator(GyMcu90614Emulator, link=link).start()
    with thermometer(link, GyMcu90614Session(mode="query", interval=0.02)) as therm:
        assert therm.wait_reading(timeout=30) is not None
        emu.stop()                         # pulled, and not coming back
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and therm.status().connected:
            time.sleep(0.05)
        st = therm.status()
        assert not st.connected and st.status is Status.DISCONNECTED
        assert st.errors_per_minute >= 1 and st.last_good_age_s is not None
        assert therm.latest() is not None and therm.latest(max_age=0.0) is None
        assert not os.path.exists(link)


def test_hand_written_peer_with_the_datasheet_bytes():
    """Not our emulator: a peer that knows only the literal bytes from the datasheet."""
    import select
    import tty
    master, slave = os.openpty()
    tty.setraw(slave)
    path = os.ttyname(slave)
    heard = bytearray()
    stop = threading.Event()

    def peer():
        while not stop.is_set():
            if select.select([master], [], [], 0.05)[0]:
                heard.extend(os.read(master, 64))
                while b"\xa5\x15\xba" in heard:
                    del heard[:heard.index(b"\xa5\x15\xba") + 3]
                    # noise, a cut frame, then the example frame
                    os.write(master, bytes.fromhex("00 5A 5A 45 04 0C") + bytes.fromhex("5A5A45040C780D19A7"))

    t = threading.Thread(target=peer, daemon=True)
    t.start()
    try:
        got = collect(thermometer(path, GyMcu90614Session(mode="query", interval=0.0)), 3)
    finally:
        stop.set()
        t.join(5)
        os.close(master)
        os.close(slave)
    assert [(r.object_c, r.ambient_c, r.raw) for r in got] == [(31.92, 33.53, "5a5a45040c780d19a7")] * 3
    assert got[0].body_c is None and got[0].flag is Flag.IMPLAUSIBLE   # 31.92 - 3.35 + 4.5 = 33.07


@pytest.mark.parametrize("kind", ["gy-continuous", "ascii"])
def test_a_flood_of_random_bytes_yields_exactly_the_frames_hidden_in_it(kind):
    """20 kB of noise with valid frames between; the loop survives and finds each one."""
    import random
    import tty

    from devices.thermometer.protocols import ascii_line
    from devices.thermometer.protocols import gy_mcu90614 as gy
    rng = random.Random(3)
    values = OBJECTS[:20]
    encode = (lambda v: gy.encode(v, 20.0)) if kind == "gy-continuous" else (lambda v: ascii_line.encode(v, 20.0))
    # noise without the bytes that start a frame or end a line, so no frame can be swallowed
    forbidden = {0x5A} if kind == "gy-continuous" else {0x0A}
    stream = b"".join(bytes(b for b in rng.randbytes(1000) if b not in forbidden)
                      + (b"\n" if kind == "ascii" else b"") + encode(v) for v in values)
    master, slave = os.openpty()
    tty.setraw(slave)
    path = os.ttyname(slave)
    session = SESSIONS[kind][1]()
    therm = thermometer(path, session)
    therm.connect()   # open before writing, or pyserial's open would flush the flood

    def feed():
        for i in range(0, len(stream), 512):
            os.write(master, stream[i:i + 512])
            time.sleep(0.002)
    t = threading.Thread(target=feed, daemon=True)
    t.start()
    try:
        got = collect(therm, len(values))
    finally:
        t.join(10)
        os.close(master)
        os.close(slave)
    assert [r.object_c for r in got] == values
    assert therm.status().counts["garbage"] >= len(values) - 1


def test_a_bug_in_a_session_does_not_stop_the_loop(caplog):
    class Flaky(GyMcu90614Session):
        calls = 0

        def step(self, port):
            Flaky.calls += 1
            if Flaky.calls in (2, 4):
                raise RuntimeError("a bug")
            return super().step(port)

    with emulator(GyMcu90614Emulator) as emu:
        therm = thermometer(emu.path, Flaky(mode="query", interval=0.0))
        got = collect(therm, 5)
    assert [r.object_c for r in got] == OBJECTS[:5]
    assert therm.status().counts["internal_error"] == 2
    assert "a bug" in caplog.text
