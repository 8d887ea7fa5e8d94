"""Configuration: one TOML file plus environment overrides; the defaults run the demo.

`GATE_CONFIG` names the file (it must exist; `/dev/null` for none); without it
`gate.toml` in the working directory is read if present. Any key can be overridden as `GATE_<SECTION>_<KEY>`, e.g.
`GATE_STORE_PATH=/var/lib/gate/gate.db` or `GATE_STORE_RETENTION_DAYS=14`.
A section or key that is not known here, a value of the wrong type, or a file that is
not TOML is a ConfigError naming it: a typo must not silently fall back to a default.
"""
from __future__ import annotations

import copy
import os
import tomllib
from collections.abc import Mapping
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
        # a code in one place this long is a poster or a code on the desk, not a person's (docs/camera.md)
        "background_s": 10.0,
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
        "log": "",  # sim: a file that gets one JSON line per pulse (tests and the demo read it)
    },
    "checkpoint": {
        "measure_timeout_s": 20.0,
        "retest_gap_s": 2.0,
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
    "voice": {
        # Prompts for the person at the gate (kiosk/voice.py): off unless a speaker is fitted.
        "enabled": False,
        "engine": "espeak-ng",  # espeak-ng (Mandarin, or English with [gate] lang = "en") | files
        "files_dir": "",  # engine = files: admit.wav, retest.wav, refuse.wav, isolate.wav, hold.wav
        "player": "aplay -q",  # engine = files: the command that plays one file
    },
    "backup": {
        # gate db backup (systemd/gate-backup.timer, daily): copies of the store, the newest kept.
        "folder": "var/backups",
        "keep": 7,
    },
    "people": {
        # The township's secret salt for person references (a file, 0600): a guard's
        # look-up by ID number needs it. Empty: look-ups by ID number are off.
        "salt_file": "",
    },
}
KIND_WORDS = {bool: "true or false", int: "a whole number", float: "a number", str: "a string"}
# Sections whose keys their reader checks itself: [sync] by sync.client.SyncConfig.
CHECKED_ELSEWHERE = ("sync",)


class ConfigError(ValueError):
    pass


Config = dict[str, dict[str, Any]]


def load(path: str | os.PathLike | None = None, env: Mapping[str, str] | None = None) -> Config:
    env = os.environ if env is None else env
    config = copy.deepcopy(DEFAULTS)
    named = path or env.get("GATE_CONFIG")
    file = Path(named or "gate.toml")
    if named and not file.exists():
        raise ConfigError(f"config file {file} does not exist"
                          + ("" if path else " (named by GATE_CONFIG)"))
    if file.exists():
        try:
            loaded = tomllib.loads(file.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read config {file}: {exc}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{file} is not valid TOML: {exc}") from None
        merge(config, loaded, str(file))
    for section, values in config.items():
        for key, default in values.items():
            name = f"GATE_{section}_{key}".upper()
            if name in env:
                values[key] = _coerce(env[name], default, name)
    return config


def merge(config: Config, loaded: dict[str, Any], where: str) -> None:
    """Check the file's sections, keys and types against the defaults; take its values."""
    for section, values in loaded.items():
        if section not in DEFAULTS and section not in CHECKED_ELSEWHERE:
            raise ConfigError(f"{where}: unknown section [{section}] "
                              f"(known: {', '.join([*DEFAULTS, *CHECKED_ELSEWHERE])})")
        if not isinstance(values, dict):
            raise ConfigError(f"{where}: [{section}] must be a table")
        known = DEFAULTS.get(section)
        for key, value in values.items():
            if known is None:
                continue
            if key not in known:
                raise ConfigError(f"{where}: unknown key {key!r} in [{section}] (known: {', '.join(known)})")
            if not _same_kind(value, known[key]):
                raise ConfigError(f"{where}: [{section}] {key} must be {KIND_WORDS[type(known[key])]}, "
                                  f"got {value!r}")
        config.setdefault(section, {}).update(values)


def _same_kind(value: Any, default: Any) -> bool:
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(value, bool) and isinstance(default, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float))
    return isinstance(value, type(default))


def _coerce(text: str, default: Any, name: str) -> Any:
    try:
        if isinstance(default, bool):
            return text.strip().lower() in ("1", "true", "yes", "on")
        if isinstance(default, int):
            return int(text)
        if isinstance(default, float):
            return float(text)
    except ValueError:
        raise ConfigError(f"{name}={text!r} is not {KIND_WORDS[type(default)]}") from None
    return text
