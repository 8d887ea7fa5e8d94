"""Image steps that turn a frame a decoder gave up on into one it can read.

Each step is a pure function gray -> gray (uint8). The cascade in `decoders.py` decides
which to try, in which order; they live here so the bench can measure each alone.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import cv2
import numpy as np

_CLAHE = cv2.createCLAHE(clipLimit=2.0, tileGridSize=(8, 8))


def unsharp(gray: np.ndarray, sigma: float = 2.0, amount: float = 1.5) -> np.ndarray:
    """Undo mild defocus: add back the detail a Gaussian of `sigma` takes away."""
    blurred = cv2.GaussianBlur(gray, (0, 0), sigma)
    return cv2.addWeighted(gray, 1 + amount, blurred, -amount, 0)


def clahe(gray: np.ndarray) -> np.ndarray:
    """Local contrast: glare washes out part of the code, the rest keeps its contrast."""
    return _CLAHE.apply(gray)


def adaptive_binary(gray: np.ndarray, block: int = 31) -> np.ndarray:
    return cv2.adaptiveThreshold(gray, 255, cv2.ADAPTIVE_THRESH_MEAN_C, cv2.THRESH_BINARY, block | 1, 2)


def darkest_channel(bgr: np.ndarray) -> np.ndarray:
    """Per pixel, the darkest of B, G, R. Health codes are green, yellow or red: in luma a
    yellow module is nearly white, but one of its channels is near zero while the white
    screen is bright in all three. The best gray for coloured codes."""
    return cv2.min(cv2.min(bgr[..., 0], bgr[..., 1]), bgr[..., 2])


def colourful(bgr: np.ndarray) -> bool:
    """Whether a region has enough colour for `darkest_channel` to differ from luma."""
    small = cv2.resize(bgr, (32, 32), interpolation=cv2.INTER_AREA)
    sat = cv2.cvtColor(small, cv2.COLOR_BGR2HSV)[..., 1]
    return float(np.percentile(sat, 90)) > 60


def stretch(gray: np.ndarray, every: int = 1) -> np.ndarray:
    """Full-range contrast from the 1st to the 99th percentile: low light, haze, dim screens.
    `every`: percentiles from every n-th row and column (the fast path's retries: a quarter
    of the pixels give the same levels in a quarter of the time)."""
    lo, hi = np.percentile(gray[::every, ::every] if every > 1 else gray, (1, 99))
    if hi - lo < 8:
        return gray
    return cv2.convertScaleAbs(gray, alpha=255.0 / (hi - lo), beta=-lo * 255.0 / (hi - lo))


def upscale(gray: np.ndarray, factor: float) -> np.ndarray:
    return cv2.resize(gray, None, fx=factor, fy=factor, interpolation=cv2.INTER_CUBIC)


def motion_direction(gray: np.ndarray) -> float:
    """Direction of linear motion blur, radians.

    A QR code's edges run in two perpendicular directions with equal energy, so its
    gradient structure tensor is nearly isotropic; motion blur removes gradient along
    the motion, so the tensor's weak eigenvector points along the motion.
    """
    return shake(gray)[0]


def shake(gray: np.ndarray) -> tuple[float, float]:
    """The direction of motion blur (radians, as `motion_direction`) and how anisotropic the
    gradients are, 0 to 1: (λ1 - λ2) / (λ1 + λ2) of the structure tensor. A code's region
    is near 0 sharp, defocused or glared; shaken, 0.35 and more (tuning presentations, seeds
    4253, 4255, 7200, 7201, regions the fast path missed: 0.36-0.77 for all 68 shaken ones;
    blurred and glared ones at most 0.12, but one glared at 0.38)."""
    g = gray.astype(np.float32)
    gx = cv2.Sobel(g, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(g, cv2.CV_32F, 0, 1, ksize=3)
    jxx, jyy, jxy = float((gx * gx).mean()), float((gy * gy).mean()), float((gx * gy).mean())
    # orientation of the strong eigenvector, then turn 90 degrees
    strong = 0.5 * np.arctan2(2 * jxy, jxx - jyy)
    return strong + np.pi / 2, float(np.hypot(jxx - jyy, 2 * jxy) / (jxx + jyy + 1e-6))


def motion_kernel(length: float, angle: float) -> np.ndarray:
    """A straight hand-shake blur of `length` px at `angle` radians, summing to 1."""
    k = int(np.ceil(length)) | 1
    ker = np.zeros((k, k), np.float32)
    c = k // 2
    dx, dy = np.cos(angle) * length / 2, np.sin(angle) * length / 2
    cv2.line(ker, (int(round(c - dx)), int(round(c - dy))), (int(round(c + dx)), int(round(c + dy))), 1.0, 1,
             cv2.LINE_AA)
    return ker / ker.sum()


def _psf_motion(length: float, angle: float, shape: tuple[int, int]) -> np.ndarray:
    return _pad_psf(motion_kernel(length, angle), shape)


def _psf_gauss(sigma: float, shape: tuple[int, int]) -> np.ndarray:
    k = int(6 * sigma) | 1
    g = cv2.getGaussianKernel(k, sigma)
    return _pad_psf((g @ g.T).astype(np.float32), shape)


def _psf_lens_and_shake(sigma: float, length: float, angle: float, shape: tuple[int, int]) -> np.ndarray:
    """Defocus and hand shake at once (a photo often has both): a line blurred by a Gaussian."""
    k = (int(np.ceil(length + 6 * sigma)) | 1)
    ker = np.zeros((k, k), np.float32)
    c = k // 2
    dx, dy = np.cos(angle) * length / 2, np.sin(angle) * length / 2
    if length >= 1:
        cv2.line(ker, (int(round(c - dx)), int(round(c - dy))), (int(round(c + dx)), int(round(c + dy))), 1.0, 1,
                 cv2.LINE_AA)
    else:
        ker[c, c] = 1.0
    ker = np.asarray(cv2.GaussianBlur(ker, (0, 0), sigma), np.float32)
    return _pad_psf(ker / ker.sum(), shape)


def _pad_psf(ker: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """The kernel in an image-sized array, centred at the origin (wrapped) for the DFT."""
    out = np.zeros(shape, np.float32)
    kh, kw = ker.shape
    out[:kh, :kw] = ker
    return np.roll(out, (-(kh // 2), -(kw // 2)), axis=(0, 1))


@dataclass
class Spectrum:
    """The DFT of one region, taken once and reused for every kernel tried on it."""
    spec: np.ndarray
    shape: tuple[int, int]
    crop: tuple[int, int]

    @classmethod
    def of(cls, gray: np.ndarray, pad: int = 16) -> Spectrum:
        # reflect-pad and taper the border so the DFT's wrap-around does not ring into the code
        g = cv2.copyMakeBorder(gray, pad, pad, pad, pad, cv2.BORDER_REFLECT).astype(np.float32)
        h, w = cv2.getOptimalDFTSize(g.shape[0]), cv2.getOptimalDFTSize(g.shape[1])
        g = np.asarray(cv2.copyMakeBorder(g, 0, h - g.shape[0], 0, w - g.shape[1], cv2.BORDER_REFLECT), np.float32)
        return cls(cv2.dft(g, flags=cv2.DFT_COMPLEX_OUTPUT), (h, w), (pad, pad))


def wiener(sp: Spectrum, psf: np.ndarray, out_shape: tuple[int, int], k: float = 0.01) -> np.ndarray:
    """Wiener deconvolution of a region by a known blur kernel; `k` is the noise-to-signal ratio."""
    hf = cv2.dft(psf, flags=cv2.DFT_COMPLEX_OUTPUT)
    hr, hi = hf[..., 0], hf[..., 1]
    den = hr * hr + hi * hi + k
    gr, gi = sp.spec[..., 0], sp.spec[..., 1]
    # G * conj(H) / (|H|^2 + k)
    fr = (gr * hr + gi * hi) / den
    fi = (gi * hr - gr * hi) / den
    img = cv2.idft(np.dstack([fr, fi]), flags=cv2.DFT_REAL_OUTPUT | cv2.DFT_SCALE)
    y, x = sp.crop
    img = img[y:y + out_shape[0], x:x + out_shape[1]]
    return np.clip(img, 0, 255).astype(np.uint8)


class Deblurrer:
    """Wiener deconvolution of one region by any kernel, in any order: the region's DFT and
    its motion direction are computed once, when first needed (the cascade orders its steps
    by reads per ms, not by kernel family)."""

    def __init__(self, gray: np.ndarray) -> None:
        self.gray = gray

    @cached_property
    def sp(self) -> Spectrum:
        return Spectrum.of(self.gray)

    @cached_property
    def _shake(self) -> tuple[float, float]:
        return shake(self.gray)

    @property
    def angle(self) -> float:
        return self._shake[0]

    @property
    def anisotropy(self) -> float:
        return self._shake[1]

    def motion(self, length: float, k: float = 0.01) -> np.ndarray:
        return wiener(self.sp, _psf_motion(length, self.angle, self.sp.shape), self.gray.shape, k)

    def gauss(self, sigma: float, k: float = 0.01) -> np.ndarray:
        return wiener(self.sp, _psf_gauss(sigma, self.sp.shape), self.gray.shape, k)


def deblur_motion(gray: np.ndarray, lengths: tuple[float, ...] = (4, 6, 8, 10), k: float = 0.01,
                  name_scale: float = 1.0):
    """Candidates deconvolved for motion along the estimated direction, one per blur length
    (`name_scale`: the image was upscaled by it; steps are named by the length at 1x)."""
    sp = Spectrum.of(gray)
    angle = motion_direction(gray)
    for length in lengths:
        yield (f"wiener-motion{length / name_scale:g}" + ("-noisy" if k > 0.01 else ""),
               wiener(sp, _psf_motion(length, angle, sp.shape), gray.shape, k))


def deblur_gauss(gray: np.ndarray, sigmas: tuple[float, ...] = (1.6, 2.4), k: float = 0.01):
    sp = Spectrum.of(gray)
    for s in sigmas:
        yield f"wiener-gauss{s:g}" + ("-sharp" if k < 0.01 else ""), wiener(sp, _psf_gauss(s, sp.shape), gray.shape, k)


def code_region(gray: np.ndarray, thresh: float = 1.5) -> tuple[int, int, int, int] | None:
    """Where a QR code seems to be, cheaply, even when it is too blurred for a finder pattern.

    At 120 lines a code is a patch with contrast well above noise and many edges per
    unit of contrast (fine texture); walls, text lines and screens without a code are not.
    Returns (x, y, w, h) in full-size pixels, or None.
    """
    h, w = gray.shape[:2]
    # 120 lines whatever the frame size: a code's texture then looks the same at 480 and 720
    f = max(1.0, h / 120)
    s = cv2.resize(gray, (int(w / f), int(h / f)), interpolation=cv2.INTER_AREA).astype(np.float32)
    # a dim frame (auto-exposure on a dark scene) has all its contrasts scaled down: undo that
    lo, hi = cv2.minMaxLoc(cv2.blur(s, (5, 5)))[:2]
    if 8 < hi - lo < 160:
        s = (s - np.float32(lo)) * np.float32(160 / (hi - lo))
    m = cv2.blur(s, (7, 7))
    sd = np.sqrt(np.maximum(cv2.blur(s * s, (7, 7)) - m * m, 0))
    lap = cv2.blur(np.abs(cv2.Laplacian(s, cv2.CV_32F)), (7, 7))
    hot = ((lap > thresh * (sd + 4)) & (sd > 8)).astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(hot, connectivity=8)
    if n < 2:
        return None
    best = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    x, y, bw, bh, area = (int(v) for v in stats[best])
    # a readable code is at least a sixth of the frame height, squarish and mostly filled
    side = s.shape[0] / 6
    if min(bw, bh) < side or area < 0.4 * bw * bh or max(bw, bh) > 2.5 * min(bw, bh):
        return None
    return int(x * f), int(y * f), int(bw * f), int(bh * f)


LIKELY = {"area": 0.7, "coherence": 0.2, "lines": 0.2, "surround": 0.3, "glare": 0.2}   # see likely_code


def likely_code(gray: np.ndarray, roi: tuple[int, int, int, int]) -> bool:
    """Whether a texture patch (from `code_region`) looks like a code on a screen or paper,
    not printed text, a grid or a busy photograph. Judged at 120 lines, as code_region is:
    - its surround: a code has a quiet zone and sits on a screen, so the ring around the
      patch is lighter than the patch (or, in dark mode, darker): the ring's median differs
      from the patch's by at least 0.3 of the patch's contrast;
    - its edges: a code's gradients point every way modulo 90 degrees once blurred and
      tilted, but text lines, tiles and railings line up (4-fold orientation coherence at
      most 0.2), and text is lines with gaps (row means vary more than column means: at
      most 0.2 of the contrast apart);
    - its size: at most 70% of the frame (a busy photograph is textured all over).
    A glared screen (at least 20% of the patch saturated) skips the surround test: the
    reflection lifts the patch's median above its quiet zone's. On tuning presentations
    (seeds 4253, 4255, 7200, 7201) it let in the 7 glared code patches the surround test had
    turned away, 4 of which the crop or contrast step reads in 1-9 ms; of 201 texture patches
    in busy scenes (seeds 5, 4252) and the code-free photographs, 3 were that saturated and
    all 3 fail the edge tests.
    Tuned on patches the cascade needs (seed 7001 blurred, shaken, glared, dim and dark-mode
    codes; 720p seed 4244 and photo-like seed 4248 frames) against busy scenes (seeds 5 and
    4252) and the code-free photographs: it kept 38/38, 10/12 and 28/31 code patches and 0 of
    77 busy and 30 photograph patches."""
    h, w = gray.shape[:2]
    x, y, bw, bh = roi
    if bw * bh > LIKELY["area"] * w * h:
        return False
    f = max(1.0, h / 120)
    s = cv2.resize(gray, (max(1, int(w / f)), max(1, int(h / f))), interpolation=cv2.INTER_AREA).astype(np.float32)
    x0, y0 = int(x / f), int(y / f)
    x1, y1 = max(x0 + 2, int((x + bw) / f)), max(y0 + 2, int((y + bh) / f))
    patch = s[y0:y1, x0:x1]
    sd = float(patch.std()) + 1e-6
    gx, gy = cv2.Sobel(patch, cv2.CV_32F, 1, 0), cv2.Sobel(patch, cv2.CV_32F, 0, 1)
    mag, ang = cv2.cartToPolar(gx, gy)
    coherence = abs(complex((mag * np.cos(4 * ang)).sum(), (mag * np.sin(4 * ang)).sum())) / (float(mag.sum()) + 1e-6)
    lines = abs(float(patch.mean(axis=1).std()) - float(patch.mean(axis=0).std())) / sd
    if coherence > LIKELY["coherence"] or lines > LIKELY["lines"]:
        return False
    m = max(2, int(0.15 * max(x1 - x0, y1 - y0)))
    rx0, ry0, rx1, ry1 = max(0, x0 - m), max(0, y0 - m), min(s.shape[1], x1 + m), min(s.shape[0], y1 + m)
    ring = np.ones((ry1 - ry0, rx1 - rx0), bool)
    ring[y0 - ry0:y1 - ry0, x0 - rx0:x1 - rx0] = False
    if not ring.any():
        return False
    if np.count_nonzero(gray[y:y + bh, x:x + bw] >= 250) >= LIKELY["glare"] * bw * bh:
        return True
    surround = float(np.median(s[ry0:ry1, rx0:rx1][ring])) - float(np.median(patch))
    return abs(surround) >= LIKELY["surround"] * sd


# (defocus sigma, shake length, noise-to-signal) at 1x, chosen greedily on tuning frames (seeds 7001-7011)
LENS_AND_SHAKE: tuple[tuple[float, float, float], ...] = (
    (1.0, 5, 0.005), (1.5, 3, 0.02), (2.0, 0, 0.02), (1.0, 0, 0.02), (2.0, 3, 0.05), (1.0, 7, 0.02),
    (0.5, 11, 0.005))


def deblur_lens_and_shake(gray: np.ndarray, scale: float = 1.0,
                          kernels: tuple[tuple[float, float, float], ...] = LENS_AND_SHAKE):
    """Candidates deconvolved for defocus and shake together (`scale`: the image was upscaled
    by it from the frame; kernels are given at 1x)."""
    sp = Spectrum.of(gray)
    angle = motion_direction(gray)
    for sigma, length, k in kernels:
        psf = _psf_lens_and_shake(sigma * scale, length * scale, angle, sp.shape)
        yield f"wiener-lens{sigma:g}-shake{length:g}", wiener(sp, psf, gray.shape, k)
