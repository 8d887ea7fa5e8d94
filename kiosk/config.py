"""Configuration: one TOML file plus environment overrides; the defaults run the demo.

`GATE_CONFIG` names the file (default `gate.toml` in the working directory, if
present). Any key can be overridden as `GATE_<SECTION>_<KEY>`, e.g.
`GATE_STORE_PATH=/var/lib/gate/gate.db` or `GATE_STORE_RETENTION_DAYS=14`.
"""
from __future__ import annotations

import copy
import os
import tomllib
from pathlib import Path
from typing import Any

DEFAULTS: dict[str, dict[str, Any]] = {
    "gate": {
        "device_id": "demo-gate-1",
        "community": "demo-community",
        "name": "东门",
        "lang": "zh",
    },
    "store": {
        "path": "var/gate.db",
        # Long enough to trace contacts over two 14-day windows; no longer (data minimum).
        "retention_days": 28,
    },
    "camera": {
        "source": "0",  # a V4L2 index or /dev/videoN, picamera, a folder, a video file, or sim
        "decoder": "cascade",
    },
    "thermometer": {
        "port": "/dev/ttyUSB0",  # or sim: a module emulated on a pseudo-terminal
        "protocol": "gy-mcu90614",  # gy-mcu90614 | modbus | ascii
        "baud": 9600,
        "mode": "query",
        "interval": 0.1,
        "address": 1,
        "register": 0x12,
        "ambient_register": -1,  # -1: none
        "scale": 0.1,
        "function": 3,
        "unsigned": False,
        "pattern": "",
        "ambient_pattern": "",
    },
    "relay": {
        "kind": "sim",  # sim | gpio
        "pin": 17,
        "active_high": True,
        "pulse_s": 3.0,
    },
    "checkpoint": {
        "measure_timeout_s": 20.0,
        "retest_timeout_s": 120.0,
        "ask_timeout_s": 60.0,
        "outcome_s": 3.0,
    },
    "api": {
        "socket": "var/gate-api.sock",  # /run/gate/api.sock on a Pi
        "tcp": "",  # e.g. 127.0.0.1:8088 for the queue screen's browser; empty: none
    },
    "sync": {
        "credentials": "var/sync-credentials.json",
    },
    "people": {
        # The township's secret salt for person references (a file, 0600): a guard's
        # look-up by ID number needs it. Empty: look-ups by ID number are off.
        "salt_file": "",
    },
}


class ConfigError(ValueError):
    pass


def load(path: str | os.PathLike | None = None, env: dict[str, str] | None = None) -> dict[str, dict[str, Any]]:
    env = os.environ if env is None else env
    config = copy.deepcopy(DEFAULTS)
    file = Path(path or env.get("GATE_CONFIG", "gate.toml"))
    if path or file.exists():
        try:
            loaded = tomllib.loads(file.read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read config {file}: {exc}") from exc
        for section, values in loaded.items():
            if not isinstance(values, dict):
                raise ConfigError(f"{file}: [{section}] must be a table")
            config.setdefault(section, {}).update(values)
    for section, values in config.items():
        for key, default in values.items():
            name = f"GATE_{section}_{key}".upper()
            if name in env:
                values[key] = _coerce(env[name], default, name)
    return config


def _coerce(text: str, default: Any, name: str) -> Any:
    try:
        if isinstance(default, bool):
            return text.strip().lower() in ("1", "true", "yes", "on")
        if isinstance(default, int):
            return int(text)
        if isinstance(default, float):
            return float(text)
    except ValueError:
        raise ConfigError(f"{name}={text!r} is not a {type(default).__name__}") from None
    return text
