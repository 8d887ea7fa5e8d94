"""Helpers the gate's tests share (`from support import ...`: pytest puts tests/ on the path)."""
from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from kiosk import config


def wait_for(predicate: Callable[[], Any], timeout: float = 15.0, what: str = "the condition") -> bool:
    """Poll until `predicate()` is true; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def gate_config(**sections: dict) -> dict:
    """The default configuration of a gate east-1 of lotus-garden, with sections updated."""
    cfg = config.load(env={})
    cfg["gate"].update(device_id="east-1", community="lotus-garden")
    for section, values in sections.items():
        cfg[section].update(values)
    return cfg
