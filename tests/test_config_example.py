"""The annotated example is the configuration reference: every key is in it and in
docs/config.md, and it loads as it is."""
from __future__ import annotations

from pathlib import Path

from kiosk import config

ROOT = Path(__file__).resolve().parents[1]


def test_every_key_is_in_the_example_and_the_docs(gate, tmp_path):
    out = gate("config", "example")
    assert out.returncode == 0
    docs = (ROOT / "docs" / "config.md").read_text()
    for section, values in config.DEFAULTS.items():
        assert f"[{section}]" in out.stdout, section
        assert f"`{section}`" in docs, section
        for key in values:
            assert f"\n{key} = " in out.stdout, f"{section}.{key} is not in the example"
            assert f"`{key}`" in docs or f"`{key}`," in docs, f"{section}.{key} is not in docs/config.md"
    (tmp_path / "gate.toml").write_text(out.stdout)
    cfg = config.load(tmp_path / "gate.toml", env={})
    assert cfg["gate"]["device_id"] == "east-gate-1" and cfg["store"]["retention_days"] == 28


def test_show_prints_the_settings_in_force(gate, tmp_path):
    (tmp_path / "gate.toml").write_text('[gate]\ndevice_id = "north-2"\n')
    out = gate("config", "show", env={"GATE_CONFIG": str(tmp_path / "gate.toml"), "GATE_STORE_RETENTION_DAYS": "14"})
    assert out.returncode == 0
    assert 'device_id = "north-2"' in out.stdout and "retention_days = 14" in out.stdout
