"""Shared fixtures. Tests use real parts: files, pseudo-terminals, servers on 127.0.0.1."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "data"


def run_gate(*args: str, input: str | None = None, timeout: float = 120,
             env: dict | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run the `gate` command as a user would, from this checkout."""
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run([sys.executable, "-m", "kiosk.cli", *args], input=input,
                          capture_output=True, text=True, timeout=timeout,
                          env=full_env, cwd=cwd or ROOT)


@pytest.fixture
def gate():
    return run_gate


@pytest.fixture
def data_dir() -> Path:
    return DATA
