"""The Modbus driver against pymodbus's RTU server: an independent peer on a pty pair.

pymodbus opens one pty, our driver the other; a relay copies bytes between the two
masters, like a null-modem cable (socat's `pty,pty`).
"""
from __future__ import annotations

import asyncio
import logging
import os
import select
import threading
import tty

import pytest

pymodbus = pytest.importorskip("pymodbus")
from pymodbus import FramerType  # noqa: E402
from pymodbus.server import ModbusSerialServer  # noqa: E402
from pymodbus.simulator import DataType, SimData, SimDevice  # noqa: E402

from devices.thermometer import ModbusSession, Status, Thermometer  # noqa: E402

pytestmark = pytest.mark.timeout(120)
logging.getLogger("pymodbus").setLevel(logging.CRITICAL)


class NullModem:
    def __init__(self):
        self.fds = []
        self.paths = []
        for _ in range(2):
            m, s = os.openpty()
            tty.setraw(s)
            self.fds.append((m, s))
            self.paths.append(os.ttyname(s))
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._relay, daemon=True)
        self.thread.start()

    def _relay(self):
        a, b = self.fds[0][0], self.fds[1][0]
        while not self.stop.is_set():
            ready, _, _ = select.select([a, b], [], [], 0.05)
            for fd in ready:
                try:
                    data = os.read(fd, 4096)
                except OSError:
                    continue
                os.write(b if fd == a else a, data)

    def close(self):
        self.stop.set()
        self.thread.join(5)
        for m, s in self.fds:
            os.close(m)
            os.close(s)


@pytest.fixture
def pymodbus_sensor():
    """A Calex-style map on device 1: 0x12 object, 0x14 ambient, 0.1 °C; 0x16 a negative value."""
    modem = NullModem()
    device = SimDevice(id=1, simdata=[SimData(address=0x10, datatype=DataType.REGISTERS,
                                              values=[0, 0, 366, 0, 215, 0, 0xFF9C, 0])])
    loop = asyncio.new_event_loop()
    holder = {}

    async def serve():
        holder["server"] = ModbusSerialServer(device, framer=FramerType.RTU, port=modem.paths[0],
                                              baudrate=9600, ignore_missing_devices=True)
        await holder["server"].serve_forever()

    thread = threading.Thread(target=lambda: loop.run_until_complete(serve()), daemon=True)
    thread.start()
    yield modem.paths[1]
    asyncio.run_coroutine_threadsafe(holder["server"].shutdown(), loop).result(10)
    thread.join(10)
    modem.close()


def first_readings(therm, n=2, timeout=30):
    therm.start()
    try:
        got = []
        while len(got) < n:
            r = therm.wait_reading(after=got[-1].t if got else None, timeout=timeout)
            assert r is not None, therm.status()
            got.append(r)
        return got
    finally:
        therm.stop()


@pytest.mark.parametrize("function", [3, 4])
def test_reads_object_and_ambient_from_pymodbus(pymodbus_sensor, function):
    therm = Thermometer(pymodbus_sensor, ModbusSession(function=function, register=0x12,
                                                       ambient_register=0x14))
    for r in first_readings(therm):
        assert (r.object_c, r.ambient_c) == (36.6, 21.5)
        assert r.body_c == pytest.approx(36.6 - 2.15 + 4.5)


def test_signed_and_unsigned_registers(pymodbus_sensor):
    signed = first_readings(Thermometer(pymodbus_sensor, ModbusSession(register=0x16)), 1)[0]
    assert signed.object_c == -10.0 and signed.body_c is None   # flagged, not a person
    unsigned = first_readings(Thermometer(pymodbus_sensor, ModbusSession(register=0x16, signed=False,
                                                                         scale=0.01)), 1)[0]
    assert unsigned.object_c == pytest.approx(654.36)   # 0xFF9C = 65436


def wait_for_count(therm, name, timeout=30):
    import time
    therm.start()
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not therm.status().counts.get(name):
            time.sleep(0.05)
        return therm.status()
    finally:
        therm.stop()


def test_exception_response_is_named(pymodbus_sensor):
    st = wait_for_count(Thermometer(pymodbus_sensor, ModbusSession(register=0x40)), "device_exception")
    assert st.counts.get("device_exception") and "ILLEGAL_DATA_ADDRESS" in st.last_error
    assert st.status is Status.DEVICE_EXCEPTION or st.no_data
    assert st.readings == 0

# No timeout test here: pymodbus 3.16 answers an unknown device id with exception 0x04
# instead of staying silent; timeouts are tested against the emulator (test_thermometer_driver).
