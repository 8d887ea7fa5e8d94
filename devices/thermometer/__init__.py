"""The thermometer: serial protocols, the reading loop, body temperature, emulators.

    from devices.thermometer import Thermometer, GyMcu90614Session
    with Thermometer("/dev/ttyUSB0", GyMcu90614Session(mode="query")) as therm:
        reading = therm.wait_reading(timeout=2)
        print(reading.body_c, therm.status())
"""
from .body import Compensation
from .driver import PortOpenError, Thermometer
from .reading import Flag, Reading, Status, ThermometerStatus
from .sessions import AsciiSession, GyMcu90614Session, ModbusSession, Session

__all__ = ["AsciiSession", "Compensation", "Flag", "GyMcu90614Session", "ModbusSession",
           "PortOpenError", "Reading", "Session", "Status", "Thermometer", "ThermometerStatus"]
