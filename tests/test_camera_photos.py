"""Real photographs of printed QR codes (tests/data/qr-photos, from zxing-cpp's test images):
each read with its exact text, and nothing read where there is no code."""
from __future__ import annotations

import json

import cv2
import pytest

from devices.camera.decoders import CascadeDecoder

from conftest import DATA

PHOTOS = DATA / "qr-photos"
CODED = sorted((PHOTOS / "code").glob("*.png"))
EMPTY = sorted((PHOTOS / "no-code").glob("*.png"))


def truth(png) -> str:
    return png.with_suffix(".txt").read_bytes().decode("utf-8")   # bytes: some hold \r\n


def test_the_set_is_here():
    assert len(CODED) >= 10 and len(EMPTY) >= 4 and (PHOTOS / "LICENSE").is_file()
    assert all(p.with_suffix(".txt").is_file() for p in CODED)


@pytest.fixture(scope="module")
def cascade():
    return CascadeDecoder(budget_ms=float("inf"))


@pytest.mark.parametrize("png", CODED, ids=lambda p: p.stem)
def test_photograph_read_with_its_exact_text(cascade, png):
    assert [d.text for d in cascade.decode(cv2.imread(str(png)))] == [truth(png)]


def test_code_free_photographs_read_nothing(cascade):
    for png in EMPTY:
        assert cascade.decode(cv2.imread(str(png))) == [], png.name


@pytest.mark.slow
def test_gate_scan_reads_the_folder(gate):
    """As a user would: `gate scan` on the folder (thorough, its default), text compared exactly."""
    r = gate("scan", "--source", str(PHOTOS / "code"), "--json", "--all")
    assert r.returncode == 0, r.stderr
    got = {x["source"]: x["text"] for x in map(json.loads, r.stdout.splitlines())}
    assert got == {p.name: truth(p) for p in CODED}
