"""The gate relay: gpiozero's own MockFactory pins (the library's, not ours) and the simulator."""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from gpiozero import Device
from gpiozero.pins.mock import MockFactory

from devices.relay import (
    MAX_PULSE_S,
    BadPulse,
    GpioRelay,
    RelayError,
    RelayFault,
    RelayState,
    SimulatedRelay,
    open_relay,
)


@pytest.fixture
def factory():
    f = MockFactory()
    yield f
    f.close()


def wait_for(cond, timeout=3.0):
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            return False
        time.sleep(0.005)
    return True


def high_spans(pin) -> list[float]:
    """How long the pin stayed high each time, from gpiozero's own record of its changes."""
    spans, states = [], pin.states
    for prev, cur in zip(states, states[1:], strict=False):
        if prev.state and not cur.state:
            spans.append(cur.timestamp)  # MockPin timestamps: seconds since the previous change
    return spans


def test_pulse_drives_the_pin_high_for_the_time_then_low(factory):
    relay = GpioRelay(17, pin_factory=factory)
    pin = factory.pin(17)
    try:
        assert relay.state is RelayState.OFF and pin.state is False
        relay.pulse(0.2)
        assert pin.state is True and relay.state is RelayState.ON  # on before pulse() returns
        assert wait_for(lambda: pin.state is False)
        assert relay.state is RelayState.OFF
        [span] = high_spans(pin)
        assert 0.2 <= span < 0.2 + 0.3  # never short; the upper bound only catches a stuck relay
    finally:
        relay.close()


def test_active_low_board_is_driven_low_while_on(factory):
    relay = GpioRelay("GPIO27", active_high=False, pin_factory=factory)
    pin = factory.pin(27)
    try:
        assert pin.state is True  # off = high on an active-low board
        relay.pulse(0.1)
        assert pin.state is False
        assert wait_for(lambda: pin.state is True)
    finally:
        relay.close()


def test_second_pulse_during_one_extends_it(factory):
    relay = GpioRelay(17, pin_factory=factory)
    pin = factory.pin(17)
    try:
        first = relay.pulse(0.3)
        time.sleep(0.15)
        second = relay.pulse(0.3)
        assert not first.extended and second.extended
        assert wait_for(lambda: pin.state is False)
        [span] = high_spans(pin)  # one continuous opening, not two
        assert span >= 0.15 + 0.3
        # A shorter pulse during a longer one does not cut it short.
        relay.pulse(0.4)
        relay.pulse(0.05)
        time.sleep(0.15)
        assert pin.state is True
        assert wait_for(lambda: pin.state is False)
    finally:
        relay.close()


def test_missing_pin_is_a_named_fault(factory):
    with pytest.raises(RelayFault, match="relay pin GPIO99 unavailable"):
        GpioRelay("GPIO99", pin_factory=factory)


@pytest.mark.skipif(Path("/proc/device-tree/model").exists(), reason="a Raspberry Pi has a pin library")
def test_no_gpio_on_this_machine_is_one_named_line_not_warnings(monkeypatch, recwarn):
    monkeypatch.delenv("GPIOZERO_PIN_FACTORY", raising=False)
    monkeypatch.setattr(Device, "pin_factory", None)
    with pytest.raises(RelayFault, match=r"^relay pin 17 unavailable: BadPinFactory") as err:
        GpioRelay(17)
    assert "\n" not in str(err.value) and "lgpio" in str(err.value)  # why: no pin library
    assert not [w for w in recwarn if "gpiozero" in str(w.filename)]


def test_pin_held_by_another_device_is_a_named_fault(factory):
    relay = GpioRelay(17, pin_factory=factory)
    try:
        with pytest.raises(RelayFault, match="relay pin 17 unavailable"):
            GpioRelay(17, pin_factory=factory)
    finally:
        relay.close()


def test_pin_failing_under_the_relay_raises_and_reports_fault(factory):
    relay = GpioRelay(17, pin_factory=factory)
    try:
        factory.pin(17).function = "input"  # something else reconfigured the pin
        with pytest.raises(RelayFault, match="relay pin 17 failed"):
            relay.pulse(0.1)
        assert relay.state is RelayState.FAULT
        with pytest.raises(RelayFault, match="failed earlier"):
            relay.pulse(0.1)
    finally:
        relay.close()


@pytest.mark.parametrize("seconds", [0, -1, MAX_PULSE_S + 1, float("nan"), "three"])
def test_bad_pulse_lengths_are_refused_without_touching_the_pin(factory, seconds):
    relay = GpioRelay(17, pin_factory=factory)
    try:
        with pytest.raises(BadPulse):
            relay.pulse(seconds)
        assert factory.pin(17).state is False and relay.pulses == []
    finally:
        relay.close()


def test_close_drops_a_running_pulse_and_releases_the_pin(factory):
    relay = GpioRelay(17, pin_factory=factory)
    relay.pulse(5)
    relay.close()
    with pytest.raises(RelayFault):
        relay.pulse(1)
    again = GpioRelay(17, pin_factory=factory)  # the pin is free again
    assert factory.pin(17).state is False
    again.close()


def test_simulated_relay_records_pulses_with_times(tmp_path):
    now = [100.0]
    log = tmp_path / "relay.jsonl"
    relay = SimulatedRelay(log_path=log, clock=lambda: now[0])
    assert relay.state is RelayState.OFF
    relay.pulse(3)
    assert relay.state is RelayState.ON and relay.on_until == 103.0
    now[0] = 102.0
    relay.pulse(3)  # extends to 105
    now[0] = 104.9
    assert relay.state is RelayState.ON
    now[0] = 105.0
    assert relay.state is RelayState.OFF
    assert [(p.started_monotonic, p.seconds, p.extended) for p in relay.pulses] == [
        (100.0, 3.0, False), (102.0, 3.0, True)]
    lines = [json.loads(x) for x in log.read_text().splitlines()]
    assert [x["started_monotonic"] for x in lines] == [100.0, 102.0]
    assert log.stat().st_mode & 0o777 == 0o600
    with pytest.raises(BadPulse):
        relay.pulse(0)
    assert len(relay.pulses) == 2


def test_open_relay_by_kind(factory):
    assert isinstance(open_relay("sim"), SimulatedRelay)
    relay = open_relay("gpio", pin=22, pin_factory=factory)
    relay.close()
    with pytest.raises(RelayError, match="needs a pin"):
        open_relay("gpio")
    with pytest.raises(RelayError, match="unknown relay kind"):
        open_relay("servo")
