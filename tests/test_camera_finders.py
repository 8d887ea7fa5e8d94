"""Placing symbols zxing-cpp cannot place (devices/camera/finders.py)."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import segno

from devices.camera import finders, soft, synthetic
from devices.camera.decoders import CascadeDecoder, ZxingDecoder


def frame(m: np.ndarray, px: int = 4, blur: float = 1.2) -> np.ndarray:
    """The modules drawn dark on light in a 640x480 camera frame."""
    code = np.pad(np.where(np.kron(m, np.ones((px, px), bool)), 30, 230).astype(np.uint8), 4 * px, constant_values=230)
    h, w = code.shape
    img = np.full((480, 640), 190, np.uint8)
    img[(480 - h) // 2:(480 - h) // 2 + h, (640 - w) // 2:(640 - w) // 2 + w] = code
    return cv2.cvtColor(cv2.GaussianBlur(img, (0, 0), blur), cv2.COLOR_GRAY2BGR)


@pytest.mark.parametrize("corner", ["top-right", "bottom-left"])
def test_a_covered_finder_is_put_back_and_the_code_read(corner):
    """A sticker (or glare) over one finder: zxing-cpp finds two and gives up; the third
    goes where the triangle needs it."""
    text = synthetic.payload(np.random.default_rng(3))
    m = np.array(segno.make_qr(text, error="m", boost_error=False).matrix, bool)
    n = m.shape[0]
    if corner == "top-right":
        m[0:7, n - 7:n] = False
    else:
        m[n - 7:n, 0:7] = False
    img = frame(m)
    assert ZxingDecoder().decode(img) == []
    read = CascadeDecoder(budget_ms=1e9).decode(img)
    assert [(d.text, d.step) for d in read] == [(text, "finders+soft")]
    xs = [x for x, _ in read[0].corners]
    assert 640 // 2 - n * 2 - 8 < min(xs) < max(xs) < 640 // 2 + n * 2 + 8   # where the code is


def test_finder_candidates_are_where_the_finders_are():
    text = synthetic.payload(np.random.default_rng(4))
    q = segno.make_qr(text, error="q", boost_error=False)
    m = np.array(q.matrix, bool)
    n = m.shape[0]
    img = cv2.cvtColor(frame(m, px=3, blur=1.8), cv2.COLOR_BGR2GRAY)
    x0, y0 = (640 - (n + 8) * 3) // 2 + 12, (480 - (n + 8) * 3) // 2 + 12
    truth = [(x0 + 3.5 * 3, y0 + 3.5 * 3), (x0 + (n - 3.5) * 3, y0 + 3.5 * 3), (x0 + 3.5 * 3, y0 + (n - 3.5) * 3)]
    peaks = finders.candidates(img)
    for tx, ty in truth:
        assert min(np.hypot(p[0] - tx, p[1] - ty) for p in peaks) < 3
    syms = finders.symbols(img)
    assert syms and (syms[0].version, syms[0].ec, syms[0].mask) == (q.version, "Q", q.mask)
    assert soft.read(img, syms[0]) == text


@pytest.mark.parametrize("version", [1, 2, 7, 10, 20])
def test_format_information_is_read_for_every_level_and_mask(version):
    for ec in "lmqh":
        for mask in range(8):
            m = np.array(segno.make_qr("A", version=version, error=ec, mask=mask, boost_error=False).matrix, bool)
            assert finders.read_format(np.where(m, 20.0, 230.0).astype(np.float32)) == (ec.upper(), mask)


def test_frames_without_a_code_give_no_symbol_that_reads():
    for s in synthetic.samples(6, distortions=("empty",), seed=99):
        gray = cv2.cvtColor(s.image, cv2.COLOR_BGR2GRAY)
        assert all(soft.read(gray, sym) is None for sym in finders.symbols(gray))


@pytest.mark.parametrize("shape", [(1, 1), (10, 10), (40, 400), (480, 640)])
def test_tiny_and_blank_images_give_nothing(shape):
    blank = np.zeros(shape, np.uint8)
    assert finders.candidates(blank) == [] and finders.symbols(blank) == []
    assert CascadeDecoder(budget_ms=1e9)._locate(blank, (0, 0, shape[1], shape[0])) == []
