"""`gate scan` as a user runs it: folders, images, videos; plain and JSON; bad sources."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from devices.camera import synthetic


@pytest.fixture(scope="module")
def shots(tmp_path_factory):
    """A folder of photos: codes under several distortions, an empty frame, a broken file."""
    folder = tmp_path_factory.mktemp("shots")
    truth = {}
    for i, d in enumerate(["clean", "tilt", "inverted", "blur", "empty", "lowlight"]):
        rng = np.random.default_rng([7, i])
        text = None if d == "empty" else synthetic.payload(rng)
        name = f"{i:02d}_{d}.jpg"
        cv2.imwrite(str(folder / name), synthetic.render(text, d, rng))
        truth[name] = text
    (folder / "99_broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    return folder, truth


def lines(out: str) -> list[dict]:
    return [json.loads(x) for x in out.splitlines()]


def test_help(gate):
    r = gate("scan", "--help")
    assert r.returncode == 0 and "--source" in r.stdout and "--decoder" in r.stdout


def test_folder_json_all(gate, shots):
    folder, truth = shots
    r = gate("scan", "--source", str(folder), "--json", "--all")
    assert r.returncode == 0, r.stderr
    rows = lines(r.stdout)
    assert [x["source"] for x in rows] == sorted(truth) + ["99_broken.png"]
    for x in rows[:-1]:
        assert x["text"] == truth[x["source"]], x["source"]
        assert isinstance(x["ms"], float) and x["ms"] >= 0
    assert rows[-1]["text"] is None and rows[-1]["error"] == "unreadable image"


def test_folder_plain_prints_only_codes(gate, shots):
    folder, truth = shots
    r = gate("scan", "--source", str(folder))
    assert r.returncode == 0, r.stderr
    got = dict(line.split("\t", 1) for line in r.stdout.splitlines())
    want = {k: v for k, v in truth.items() if v}
    want["99_broken.png"] = "!unreadable image"
    assert got == want


def test_one_image_with_zbar(gate, tmp_path):
    rng = np.random.default_rng([7, 100])
    text = synthetic.payload(rng)
    cv2.imwrite(str(tmp_path / "phone.png"), synthetic.render(text, "clean", rng))
    r = gate("scan", "--source", str(tmp_path / "phone.png"), "--decoder", "zbar", "--json")
    assert r.returncode == 0, r.stderr
    (row,) = lines(r.stdout)
    assert row["source"] == "phone.png" and row["text"] == text and row["step"] == "zbar"


def test_video_frames_are_indexed(gate, tmp_path):
    text = synthetic.payload(np.random.default_rng(3))
    frames = [synthetic.render(text if i in (1, 2) else None, "clean" if i in (1, 2) else "empty",
                               np.random.default_rng([3, i])) for i in range(4)]
    path = tmp_path / "gate.avi"
    out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (640, 480))
    for f in frames:
        out.write(f)
    out.release()
    r = gate("scan", "--source", str(path), "--json", "--all", "--decoder", "zxing")
    assert r.returncode == 0, r.stderr
    rows = lines(r.stdout)
    assert [(x["source"], x["text"]) for x in rows] == [(0, None), (1, text), (2, text), (3, None)]


def test_source_that_cannot_be_opened(gate, tmp_path):
    r = gate("scan", "--source", str(tmp_path / "nothing-here"))
    assert r.returncode == 2 and "no such source" in r.stderr and r.stdout == ""
    r = gate("scan", "--source", "/dev/video63")
    assert r.returncode == 2 and "cannot open camera /dev/video63" in r.stderr


def test_synthetic_source_limited_frames(gate):
    r = gate("scan", "--source", "synthetic", "--frames", "5", "--json", "--all", "--mode", "thorough")
    assert r.returncode == 0, r.stderr
    rows = lines(r.stdout)
    assert [x["source"] for x in rows] == [0, 1, 2, 3, 4]
    assert sum(x["text"] is not None for x in rows) >= 4


@pytest.mark.slow
def test_mode_defaults_live_for_video_thorough_for_files(gate, tmp_path):
    """A frame only the cascade reads (zxing-cpp places no symbol, so the fast path does not
    retry): thorough reads it in place (a folder's default); live (a video's default) reads it
    on the fast path's side, as a cascade read of that frame."""
    text = synthetic.payload(np.random.default_rng([31, 13]))
    blurred = synthetic.render(text, "blur", np.random.default_rng([32, 13]))
    (tmp_path / "shots").mkdir()
    cv2.imwrite(str(tmp_path / "shots" / "blurred.png"), blurred)
    r = gate("scan", "--source", str(tmp_path / "shots"), "--json")
    assert r.returncode == 0, r.stderr
    (row,) = lines(r.stdout)
    assert row["source"] == "blurred.png" and row["text"] == text and not row["step"].startswith("cascade:")

    path = tmp_path / "gate.avi"
    out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (640, 480))
    out.write(blurred)
    out.release()
    r = gate("scan", "--source", str(path), "--json", "--all")
    assert r.returncode == 0, r.stderr
    rows = lines(r.stdout)
    assert rows[0] == {"source": 0, "text": None, "ms": rows[0]["ms"], "step": None}   # the fast path: nothing
    assert [(x["source"], x["text"]) for x in rows[1:]] == [(0, text)] and rows[1]["step"].startswith("cascade:")
    r = gate("scan", "--source", str(path), "--json", "--mode", "thorough")
    assert [(x["source"], x["text"], x["step"].startswith("cascade:")) for x in lines(r.stdout)] == [(0, text, False)]


def test_an_unreadable_image_exits_2(gate, tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    r = gate("scan", "--source", str(bad))
    assert r.returncode == 2 and r.stderr.strip() == f"gate scan: cannot read {bad} as an image"


def test_live_mode_marks_a_background_code(gate, tmp_path):
    """A video of a wall with a venue-code poster: after --background-s in one place it is
    background (JSON says so; the plain output, what the gate acts on, leaves it out)."""
    poster = np.where(synthetic.qr_modules("https://venue.example/p?id=42"), 20, 240).astype(np.uint8)
    poster = cv2.resize(np.pad(poster, 4, constant_values=240), None, fx=4, fy=4, interpolation=cv2.INTER_NEAREST)
    wall = np.full((480, 640, 3), 180, np.uint8)
    wall[50:50 + poster.shape[0], 50:50 + poster.shape[1]] = poster[..., None]
    path = tmp_path / "wall.avi"
    out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25.0, (640, 480))
    for _ in range(12):
        out.write(wall)
    out.release()
    r = gate("scan", "--source", str(path), "--json", "--background-s", "0.2", "--decoder", "zxing")
    rows = lines(r.stdout)
    assert r.returncode == 0 and len(rows) == 12, r.stderr
    assert not rows[0].get("background") and rows[-1]["background"] is True
    r = gate("scan", "--source", str(path), "--background-s", "0.2", "--decoder", "zxing")
    assert 1 <= len(r.stdout.splitlines()) < 12
