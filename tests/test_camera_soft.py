"""The soft reader (devices/camera/soft.py): it reads what zxing-cpp places but cannot
correct, and never returns a text that is not the one shown."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import segno
import zxingcpp

from devices.camera import soft, synthetic
from devices.camera.decoders import CascadeDecoder

PX, QUIET = 6, 4


def picture(q: segno.QRCode, px: int = PX) -> tuple[np.ndarray, np.ndarray]:
    """The symbol drawn dark on light with a quiet zone; and its corners (TL, TR, BR, BL)."""
    m = np.array(q.matrix, bool)
    n = m.shape[0]
    img = np.full(((n + 2 * QUIET) * px,) * 2, 235, np.uint8)
    inside = slice(QUIET * px, (QUIET + n) * px)
    img[inside, inside] = np.where(np.kron(m, np.ones((px, px), bool)), 25, 235)
    a, b = QUIET * px, (QUIET + n) * px
    return img, np.float32([(a, a), (b, a), (b, b), (a, b)])


def symbol(q: segno.QRCode, corners: np.ndarray) -> soft.Symbol:
    return soft.Symbol(corners, q.version, q.error.upper(), q.mask)


@pytest.mark.parametrize("text, kw", [
    ("0123456789" * 12, {}),                                          # numeric
    ("HC1:6BF+70790T9WJWG.FKY*4GO0.O1CV2 O5 N2FBBRW1*70HS8WY04AC*WIFN0AHCD8KD97TK0F90KECTHGWJC0FDC:5AIA%G7X+AQB9746HS80:54IBQF60R6$A80X6S1BTYACG6M+9XG8KIAWNA91AY%67092L4WJCT3EHS8XJC$+DXJCCWENF6OF63W5NW6WF6%JC QE/IAYJC5LEW34U3ET7DXC9 QE-ED8%E.JCBECB1A-:8$96646AL60A60S6Q$D.UDRYA 96NF6L/5QW6307KQEPD09WEQDD+Q6TW6FA7C466KCN9E%961A6DL6FA7D46JPCT3E5JDLA7$Q6E464W5TG6..DX%DZJC6/DTZ9 QE5$CB$DA/D JC1/D3Z8WED1ECW.CCWE.Y92OAGY8MY9L+9MPCG/D5 C5IA5N9$PC5$CWA5KO9JW2", {}),
    ('{"c":"G","n":"zhang san","t":"2022-05-01T08:00:00Z"}', {}),     # bytes
    ("张三 绿码 https://jkm.example.gov.cn/v?c=G", {"eci": True}),      # UTF-8 with an ECI header
    ("点茗", {"mode": "kanji"}),
])
@pytest.mark.parametrize("ec", ["l", "m", "q", "h"])
def test_every_mode_and_level_round_trips(text, kw, ec):
    q = segno.make_qr(text, error=ec, boost_error=False, **kw)
    img, corners = picture(q)
    assert soft.read(img, symbol(q, corners)) == text


@pytest.mark.parametrize("mask", range(8))
def test_every_mask_and_a_light_on_dark_code(mask):
    text = "https://jkm.example.gov.cn/v?c=G&id=" + "7" * 60
    q = segno.make_qr(text, error="m", mask=mask, boost_error=False)
    img, corners = picture(q)
    assert soft.read(img, symbol(q, corners)) == text
    assert soft.read(255 - img, symbol(q, corners)) == text


def test_zxing_corners_are_refined_on_a_blurred_tilted_symbol():
    """A quarter-module slip of one corner: refine() moves it back, and the read survives."""
    text = "HC1:" + "NCFOXN%TS3DH3ZSUZK+.V0ETD%65NL-AH" * 8
    q = segno.make_qr(text, error="m", boost_error=False)
    img, corners = picture(q)
    img = cv2.GaussianBlur(img, (0, 0), 2.2)
    slipped = corners.copy()
    slipped[2] += (0.6 * PX, -0.5 * PX)
    fixed = soft.refine(img, symbol(q, slipped))
    assert np.abs(fixed.corners - corners).max() < np.abs(slipped - corners).max() / 2
    assert soft.read(img, symbol(q, slipped)) == text


def glared(text: str, ec: str, radius_modules: float) -> tuple[np.ndarray, segno.QRCode]:
    """The symbol with a saturating reflection on its middle."""
    q = segno.make_qr(text, error=ec, boost_error=False)
    img, _ = picture(q)
    n = np.array(q.matrix).shape[0]
    c = (QUIET + n / 2 + 3) * PX
    yy, xx = np.mgrid[:img.shape[0], :img.shape[1]]
    spot = np.exp(-((yy - c) ** 2 + (xx - c) ** 2) / (2 * (radius_modules * PX) ** 2))
    out = np.clip(img + 600 * spot, 0, 255).astype(np.uint8)
    return cv2.GaussianBlur(out, (0, 0), 1.0), q


def test_glare_zxing_cannot_correct_is_read_with_erasures():
    text = "HC1:" + "6BF+70790T9WJWG.FKY*4GO0.O1CV2 O5 N2FBBRW1*70HS8WY04AC*WIFN0AHCD8KD97TK0F90" * 3
    img, q = glared(text, "m", 8)
    found = zxingcpp.read_barcodes(img, formats=zxingcpp.BarcodeFormat.QRCode, return_errors=True)
    assert found and not any(b.valid for b in found), "zxing-cpp should place the symbol and fail its checksum"
    sym = soft.symbol_of(found[0])
    assert sym is not None and (sym.version, sym.ec, sym.mask) == (q.version, "M", q.mask)
    assert soft.read(img, sym) == text
    # and through the cascade, on the first step
    got = CascadeDecoder(budget_ms=1e9).decode(cv2.cvtColor(img, cv2.COLOR_GRAY2BGR))
    assert [(d.text, d.step) for d in got] == [(text, "soft")]


def test_glare_beyond_even_erasures_reads_nothing():
    text = "HC1:" + "6BF+70790T9WJWG.FKY*4GO0.O1CV2 O5 N2FBBRW1*70HS8WY04AC*WIFN0AHCD8KD97TK0F90" * 3
    img, q = glared(text, "l", 14)
    sym = symbol(q, picture(q)[1])
    assert soft.read(img, sym) is None


@pytest.mark.slow
def test_random_modules_behind_real_patterns_never_read():
    """500 symbols whose fixed patterns are right and whose data modules are noise: a
    misread would need Reed-Solomon to accept garbage with three check codewords spare."""
    rng = np.random.default_rng(20261125)
    reads = 0
    for _ in range(500):
        version = int(rng.integers(1, 11))
        q = segno.make_qr("x", version=version, error="l", boost_error=False)
        m = np.array(q.matrix, bool)
        data = ~soft.function_modules(version)
        data[:9, :9] = data[:9, -8:] = data[-8:, :9] = False
        m[data] = rng.random(int(data.sum())) < 0.5
        img = np.where(np.kron(m, np.ones((4, 4), bool)), 20, 230).astype(np.uint8)
        n = m.shape[0] * 4
        sym = soft.Symbol(np.float32([(0, 0), (n, 0), (n, n), (0, n)]), version, "LMQH"[int(rng.integers(4))],
                          int(rng.integers(8)))
        reads += soft.read(img, sym) is not None
    assert reads == 0


@pytest.mark.slow
def test_damaged_symbols_read_right_or_not_at_all():
    """Real symbols with ever more modules flipped at random: the text or nothing, never another."""
    rng = np.random.default_rng(7)
    right = wrong = 0
    for i in range(200):
        text = synthetic.payload(np.random.default_rng([7, i]))
        q = segno.make_qr(text, error=str(rng.choice(list("lmqh"))), boost_error=False)
        m = np.array(q.matrix, bool)
        data = ~soft.function_modules(q.version)
        flips = data & (rng.random(m.shape) < rng.uniform(0.002, 0.06))
        img, corners = picture(q, 4)
        mm = m ^ flips
        img[QUIET * 4:-QUIET * 4, QUIET * 4:-QUIET * 4] = np.where(np.kron(mm, np.ones((4, 4), bool)), 25, 235)
        got = soft.read(img, symbol(q, corners))
        right += got == text
        wrong += got is not None and got != text
    assert wrong == 0
    assert 40 < right < 180   # some were beyond repair, many were not


def test_symbol_of_rejects_what_is_not_a_regular_qr_code():
    class B:
        def __init__(self, extra):
            self.extra = extra
    for extra in (None, "", "not json", {"Version": "M2", "ECLevel": "L", "DataMask": 1},
                  {"Version": "41", "ECLevel": "L", "DataMask": 1}, {"Version": "7", "ECLevel": "X", "DataMask": 1},
                  {"Version": "7", "ECLevel": "L", "DataMask": 9}, {"Version": "R13x139", "ECLevel": "H"}):
        assert soft.symbol_of(B(extra)) is None


def test_a_bent_grid_follows_lens_distortion():
    """Barrel distortion bends a large symbol's rows: one perspective cannot follow them,
    the grid bent to the finders and alignment patterns can."""
    text = "https://jkm.example.gov.cn/v?c=G&id=" + "0123456789ABCDEF" * 16
    q = segno.make_qr(text, error="h", boost_error=False)
    img, corners = picture(q, px=5)
    h, w = img.shape
    c = np.float32([w / 2, h / 2])
    k = 0.03   # the edges bulge by about a module

    def squeeze(p):        # where a point of the flat picture lands after the lens
        d = (p - c) / (w / 2)
        for _ in range(20):
            d = ((p - c) / (w / 2)) / (1 + k * (d ** 2).sum(axis=-1, keepdims=True))
        return d * (w / 2) + c
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    d = np.stack([xs, ys], -1)
    src = (d - c) * (1 + k * (((d - c) / (w / 2)) ** 2).sum(-1, keepdims=True)) + c
    bent = cv2.remap(img, src[..., 0], src[..., 1], cv2.INTER_LINEAR, borderValue=235)
    bent = cv2.GaussianBlur(bent, (0, 0), 1.6)
    sym = soft.refine(bent, soft.Symbol(squeeze(corners), q.version, "H", q.mask))
    truth = np.array(q.matrix, bool)
    flat = soft.decide(soft.sample(bent, sym))[0]
    following = soft.decide(soft.sample(bent, sym, soft.local_offsets(bent, sym)))[0]
    assert (following != truth).mean() < 0.6 * (flat != truth).mean()     # 13.5% -> 7.2% wrong
    assert soft.read(bent, sym) == text
