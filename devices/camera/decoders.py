"""QR decoders behind one interface, and the cascade that beats each of them.

`make_decoder(name)` gives one of DECODERS:
- `zxing`: zxing-cpp on the whole frame, as it comes.
- `zbar`: pyzbar (libzbar0), run in a worker process (zbar has known native crashes).
- `cascade` (default): zxing-cpp first; only when that fails and a code seems present
  (zxing found a symbol it could not read, or the frame has a code-like patch) a cascade
  of region crops, sharpening, contrast, thresholding and Wiener deblurring, each
  tried with zxing-cpp, stopping at the first valid read; symbols zxing places but cannot
  correct go to the soft reader (soft.py), and last, finder patterns zxing could not place
  are looked for (finders.py). Frames without a code leave after one zxing pass and a
  small texture check.
Only results that pass the QR Reed-Solomon check are returned, so a cascade step can fail
to read but cannot invent a text.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import cv2
import numpy as np

from devices.camera import enhance, finders, soft
from devices.camera.decoded import Box, Decoded, Decoder
from devices.camera.isolated import IsolatedDecoder

Corners = tuple[tuple[int, int], ...]

__all__ = ["DECODERS", "DEFAULT_DECODER", "RETRIES", "CascadeDecoder", "Decoded", "Decoder", "PlacedRetry",
           "ZbarDecoder", "ZxingDecoder", "corners_of", "make_decoder", "to_gray"]


def to_gray(image: np.ndarray) -> np.ndarray:
    if image.ndim == 2:
        return image
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2GRAY)
    return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)


def corners_of(pos: Any, dx: float = 0, dy: float = 0, scale: float = 1.0) -> Corners:
    """A zxing-cpp position's four corners in frame pixels (from a crop at `dx, dy` scaled by `scale`)."""
    return tuple((int(round(p.x / scale + dx)), int(round(p.y / scale + dy)))
                 for p in (pos.top_left, pos.top_right, pos.bottom_right, pos.bottom_left))


class ZxingDecoder:
    """zxing-cpp, regular QR codes only, on the frame as given."""
    name = "zxing"

    def __init__(self) -> None:
        import zxingcpp
        self._zx = zxingcpp
        # zxing-cpp 3's QRCode is a family with Micro QR and rMQR. Health codes are regular
        # QR codes, and a Micro QR M1 has only two check codewords: a patterned background
        # "read" as one gave a six-digit text on a tuning frame.
        self._formats: Any = getattr(zxingcpp.BarcodeFormat, "QRCodeModel2", zxingcpp.BarcodeFormat.QRCode)
        self.local, self.fixed = zxingcpp.Binarizer.LocalAverage, zxingcpp.Binarizer.FixedThreshold

    def read(self, gray: np.ndarray, errors: bool = False, **kw: Any) -> list[Any]:
        # Plain: the code's own characters. The default (HRI) writes a control character as
        # "<SOH>", which is not the text the code holds (a real photograph's vCard has two).
        return self._zx.read_barcodes(gray, formats=self._formats, return_errors=errors,
                                      text_mode=self._zx.TextMode.Plain, **kw)

    def decode(self, image: np.ndarray) -> list[Decoded]:
        return [Decoded(b.text, "zxing", corners_of(b.position)) for b in self.read(to_gray(image)) if b.valid]

    def close(self) -> None:
        pass


class ZbarDecoder:
    """pyzbar in this process. make_decoder("zbar") wraps it in a worker process."""
    name = "zbar"

    def __init__(self) -> None:
        from pyzbar import pyzbar
        self._zbar = pyzbar

    def decode(self, image: np.ndarray) -> list[Decoded]:
        out = []
        for d in self._zbar.decode(to_gray(image), symbols=[self._zbar.ZBarSymbol.QRCODE]):
            try:
                text = d.data.decode("utf-8")
            except UnicodeDecodeError:
                text = d.data.decode("latin-1")
            out.append(Decoded(text, "zbar", tuple((p.x, p.y) for p in d.polygon)))
        return out

    def close(self) -> None:
        pass


# The live fast path's retries on a symbol zxing-cpp placed but could not read (a likely
# code): a few cheap versions of its region, zxing-cpp alone on each. Chosen greedily by reads
# per ms on the first frames of presentations zxing-cpp could not read (tuning seeds
# 7100-7109): binarised at 15 px reads glare and dark patches, half size sharpened reads
# blur, mildly sharpened reads blur and shake; these three read 39 of 53 such frames in
# about 4 ms of CPU, all five 43 in about 8 ms (the other 10, glare and mixed, need the soft
# reader or deblurring: the worker). (step, image from the crop, binarizer,
# scale of the image against the frame)
RETRIES: tuple[tuple[str, Callable[[np.ndarray], np.ndarray], str, float], ...] = (
    ("binary15", lambda c: enhance.adaptive_binary(c, 15), "fixed", 1.0),
    ("half-sharpen", lambda c: enhance.unsharp(cv2.resize(c, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA),
                                               1.0, 1.5), "local", 0.5),
    ("sharpen1", lambda c: enhance.unsharp(enhance.stretch(c, every=2), 1.0, 2.0), "local", 1.0),
    ("binary31", lambda c: enhance.adaptive_binary(enhance.stretch(c, every=2), 31), "fixed", 1.0),
    ("sharpen", lambda c: enhance.unsharp(enhance.stretch(c, every=2), 2.0, 1.5), "fixed", 1.0),
)


SHAKEN = 0.3   # the region's gradient anisotropy from which it is taken as shaken (enhance.shake)


class PlacedRetry:
    """The fast path's retries (RETRIES) on the region of symbols zxing-cpp placed but could
    not read, and only there: a frame where zxing placed nothing costs nothing more. A
    placed symbol that stays put and is not read (a finder-like sign on the wall, a poster's
    broken corner) is retried on one frame in `every`, so a static scene does not pay the
    retries on every frame."""

    def __init__(self, zx: ZxingDecoder, every: int = 8) -> None:
        self.zx, self.every = zx, every
        self.tried = 0        # frames retried
        self.reads = 0        # frames a retry read
        self.skipped = 0      # frames not retried: the same symbol failed just before
        self._failed: tuple[tuple[int, int, int, int], np.ndarray, int] | None = None

    def __call__(self, gray: np.ndarray, found: list[Any]) -> list[Decoded]:
        detected = _region_of(found, gray.shape)
        if detected is None:
            return []
        roi = _grow(detected, gray.shape, 0.15)
        look = _thumb(gray, roi)
        old = self._failed
        same = old is not None and _iou(roi, old[0]) > 0.6 and float(cv2.absdiff(look, old[1]).mean()) < 12
        if same and old is not None:
            self._failed = (old[0], old[1], old[2] + 1)
            if (old[2] + 1) % self.every:
                self.skipped += 1
                return []
        self.tried += 1
        x, y, w, h = roi
        crop = gray[y:y + h, x:x + w]
        for step, make, binarizer, scale in RETRIES:
            got = self.zx.read(make(crop), try_rotate=False,
                               binarizer=self.zx.fixed if binarizer == "fixed" else self.zx.local)
            good = [Decoded(b.text, "retry:" + step, corners_of(b.position, x, y, scale)) for b in got if b.valid]
            if good:
                self.reads += 1
                self._failed = None
                return good
        if not same:
            self._failed = (roi, look, 0)
        return []


@dataclass
class CascadeStats:
    """What the cascade did, for the bench and the logs."""
    frames: int = 0
    cascades: int = 0           # frames where the cascade ran
    skipped: int = 0            # texture-only hints where the cascade had just failed
    unlikely: int = 0           # texture-only hints where nothing looked like a code
    by_step: dict[str, int] = field(default_factory=dict)


class CascadeDecoder:
    """zxing-cpp first; a cascade of enhancement steps only where a code seems present."""
    name = "cascade"
    uses_region = True

    def __init__(self, budget_ms: float = 250.0, retry_every: int = 3, soft_tries: int = 4,
                 clock: Callable[[], float] = time.perf_counter, placed_first: bool = False,
                 shaken_first: bool = False, stale_grace: int = 0) -> None:
        self.zx = ZxingDecoder()
        # A poster or a patterned shirt that looks like a code to the texture check, frame
        # after frame, would cost a cascade on every frame: where the cascade just failed on a
        # texture-only hint, the same patch (same place, same look) gets the cascade again on
        # only one frame in `retry_every`. Different pictures (a folder of photos) are not
        # affected.
        self.retry_every = retry_every
        # ... after `stale_grace` more tries: a phone held still that the cascade just missed
        # looks like the same patch, and the next frame (fresh shake, noise, glare) often reads
        self.stale_grace = stale_grace
        self._stale: tuple[tuple[int, int, int, int], np.ndarray, int] | None = None
        # A safety stop for a slow machine: the next frame comes soon. All the steps take
        # about 50-120 ms at 640x480 here, so it binds only on a loaded or slow machine
        # (a Raspberry Pi 4 is some 3x slower: raise it there if frames are few).
        self.budget_ms = budget_ms
        # the budget's clock: wall time by default; the live worker gives its own CPU time, so
        # a machine loaded by others does not cut a likely frame's cascade short
        self.clock = clock
        # the live worker: the fast path's retries already tried the cheap versions of a
        # symbol zxing-cpp placed, so the soft reader on that symbol comes after the first two
        # candidates, not after all of them; a shaken region tries the motion kernels first
        self.placed_first = placed_first
        self.shaken_first = shaken_first
        self.soft_tries = soft_tries       # soft reads a frame may use
        self._soft_tries = soft_tries      # left for the frame being decoded
        self.stats = CascadeStats()

    def decode(self, image: np.ndarray, region: Box | None = None, *, paint: Sequence[Corners] = (),
               stop: Callable[[], bool] | None = None) -> list[Decoded]:
        """`region` (x, y, w, h): where the previous frame had a code (the scanner passes it).
        `paint`: codes already read in this frame (a poster the scanner knows), flattened out
        before looking for another. `stop()`: checked between steps; True abandons the frame
        (the live scanner has a more promising one)."""
        gray = to_gray(image)
        if paint:
            gray = _painted(gray, paint)
        self.stats.frames += 1
        found = self.zx.read(gray, errors=True)
        good = [Decoded(b.text, "zxing", corners_of(b.position)) for b in found if b.valid]
        if good:
            return self._count(good)
        self._soft_tries = self.soft_tries
        origin = (0.0, 0.0, 1.0)
        # zxing's half-found symbol is precise but often only a finder pattern; the texture
        # patch covers the whole code; the previous frame's code is a good guess too
        detected = _region_of(found, gray.shape)
        roi = _union(detected, region, enhance.code_region(gray))
        if roi is None:
            return self._count(self._soft(found, gray, "soft", origin))
        texture_only = detected is None and region is None
        look = _thumb(gray, roi) if texture_only else None
        same = texture_only and self._same_as_stale(roi, look)
        if same and self._stale:
            seen = self._stale[2] + 1
            self._stale = (self._stale[0], self._stale[1], seen)
            if seen > self.stale_grace and seen % self.retry_every:
                self.stats.skipped += 1
                return self._count(self._soft(found, gray, "soft", origin))
        if texture_only and not enhance.likely_code(gray, roi):
            # text, a grid, a busy photograph: the texture check fires, but nothing there
            # looks like a code (see enhance.likely_code); the cascade would only cost time
            self.stats.unlikely += 1
            return self._count(self._soft(found, gray, "soft", origin))
        self.stats.cascades += 1
        deadline = self.clock() + self.budget_ms / 1000
        colour = image if image.ndim == 3 and image.shape[2] == 3 else None
        if colour is not None and paint:
            colour = None   # the painted gray is the one to read
        for attempt in self._attempts(gray, roi, colour, found):
            good = attempt()
            if good:
                self._stale = None
                return self._count(good[:1])
            if self.clock() > deadline or (stop is not None and stop()):
                break
        if texture_only and not same and look is not None:
            self._stale = (roi, look, 0)
        return []

    def _attempts(self, gray: np.ndarray, roi: tuple[int, int, int, int], colour: np.ndarray | None,
                  found: list[Any]) -> Iterator[Callable[[], list[Decoded]]]:
        """The cascade's tries, in order of reads per ms (measured on the first frames of
        presentations the fast path could not read, tuning seeds 7100-7108):
        1. zxing-cpp alone on each cheap candidate (crops, contrast, sharpening, threshold,
           Wiener deblurring at 1x): 2-10 ms each; symbols they place are kept;
        2. the soft reader (10-230 ms a try, at most `soft_tries` a frame) on the symbols zxing
           placed in the frame, then on those the candidates placed, in the cascade's old
           order (which the thorough rates were measured with);
        3. the fine deblurring candidates (20-50 ms each), each with its soft read;
        4. finder patterns zxing never placed (`_locate`, 100-300 ms).
        Before this order the soft reader came first and after every candidate: a blurred
        phone zxing had placed cost 100-400 ms before the 5 ms sharpening that reads it."""
        held: list[tuple[int, int, str, np.ndarray, list[Any], tuple[float, float, float]]] = []

        def first_pass(rank: int, step: str, make: Callable[[], np.ndarray | None],
                       where: tuple[float, float, float]) -> Callable[[], list[Decoded]]:
            def attempt() -> list[Decoded]:
                img = make()
                if img is None:
                    return []
                for sub, (binarizer, tag) in enumerate(((self.zx.local, ""), (self.zx.fixed, "+fixed"))):
                    got = self.zx.read(img, errors=True, try_rotate=False, binarizer=binarizer)
                    good = [Decoded(b.text, step + tag, corners_of(b.position, *where)) for b in got if b.valid]
                    if good:
                        return good
                    if any(not b.valid for b in got):
                        held.append((rank, sub, step + tag, img, got, where))
                return []
            return attempt

        cheap, fine = self._candidates(gray, roi, colour)
        # the soft reader on the frame's own symbol: after every cheap candidate, or in the
        # live worker (placed_first) after the two cheapest (the fast path tried the others)
        soft_at = 2 if self.placed_first else len(cheap)
        for i, (rank, step, make, where) in enumerate(cheap):
            if i == soft_at:
                yield partial(self._soft, found, gray, "soft", (0.0, 0.0, 1.0))
            yield first_pass(rank, step, make, where)
        if soft_at >= len(cheap):
            yield partial(self._soft, found, gray, "soft", (0.0, 0.0, 1.0))

        def soft_held(i: int) -> list[Decoded]:
            _, _, step, img, got, where = held[i]
            return self._soft(got, img, step + "+soft", where)
        held.sort(key=lambda h: (h[0], h[1]))   # filled by now: the first pass is over
        for i in range(len(held)):
            if self._soft_tries <= 0:
                break
            yield partial(soft_held, i)

        def fine_read(step: str, make: Callable[[], np.ndarray], where: tuple[float, float, float]) -> list[Decoded]:
            return self._read(make(), step, where)
        for step, make, where in fine:
            yield partial(fine_read, step, make, where)
        yield partial(self._locate, gray, roi)

    def _locate(self, gray: np.ndarray, roi: tuple[int, int, int, int]) -> list[Decoded]:
        """The last step: symbols zxing never placed, from finder patterns found here
        (finders.py), through the soft reader. Some 100-300 ms, so only when the steps
        before it had time to fail."""
        x, y, w, h = _grow(roi, gray.shape, 0.15)
        norm = min(1.0, 480 / gray.shape[0])   # finders.py looks for modules of 2-8 px at 480 lines
        crop = gray[y:y + h, x:x + w]
        if norm < 1:
            crop = cv2.resize(crop, None, fx=norm, fy=norm, interpolation=cv2.INTER_AREA)
        for sym in finders.symbols(crop):
            text = soft.read(crop, sym)
            if text is not None:
                corners = tuple((int(round(px / norm + x)), int(round(py / norm + y))) for px, py in sym.corners)
                return [Decoded(text, "finders+soft", corners)]
        return []

    def _read(self, img: np.ndarray, step: str, where: tuple[float, float, float]) -> list[Decoded]:
        """zxing-cpp on one candidate, then its unreadable symbols through the soft reader; then
        the same with a fixed threshold (a candidate's contrast is already stretched, and there
        zxing places symbols the local-average binarizer broke up)."""
        for binarizer, tag in ((self.zx.local, ""), (self.zx.fixed, "+fixed")):
            found = self.zx.read(img, errors=True, try_rotate=False, binarizer=binarizer)
            good = [Decoded(b.text, step + tag, corners_of(b.position, *where)) for b in found if b.valid]
            good = good or self._soft(found, img, step + tag + "+soft", where)
            if good:
                return good
        return []

    def _soft(self, found, img: np.ndarray, step: str, where: tuple[float, float, float]) -> list[Decoded]:
        """Symbols zxing placed but could not correct, read again with erasures (soft.py);
        at most `soft_tries` a frame, as each costs some 10-40 ms."""
        for b in found:
            if b.valid or self._soft_tries <= 0 or (sym := soft.symbol_of(b)) is None:
                continue
            self._soft_tries -= 1
            text = soft.read(img, sym)
            if text is not None:
                return [Decoded(text, step, corners_of(b.position, *where))]
        return []

    def _same_as_stale(self, roi: tuple[int, int, int, int], look: np.ndarray | None) -> bool:
        if self._stale is None or look is None or _iou(roi, self._stale[0]) <= 0.6:
            return False
        return float(cv2.absdiff(look, self._stale[1]).mean()) < 12

    def _count(self, out: list[Decoded]) -> list[Decoded]:
        for d in out:
            self.stats.by_step[d.step] = self.stats.by_step.get(d.step, 0) + 1
        return out

    def _candidates(self, gray: np.ndarray, roi: tuple[int, int, int, int], colour: np.ndarray | None
                    ) -> tuple[list[tuple[int, str, Callable[[], np.ndarray | None], tuple[float, float, float]]],
                               list[tuple[str, Callable[[], np.ndarray], tuple[float, float, float]]]]:
        """Enhanced versions of the code's region, made when tried: the cheap ones (with
        their rank in the cascade's old order, for the soft reads) and the fine ones."""
        x, y, w, h = _grow(roi, gray.shape, 0.15)
        # the steps are tuned at 480 lines: bring bigger frames' regions to that scale
        # (it also shortens their blur in pixels), then give small codes more pixels per module
        norm = min(1.0, 480 / gray.shape[0])
        scale = norm * min(2.0, max(1.0, 600 / (norm * max(w, h))))
        crop = enhance.stretch(gray[y:y + h, x:x + w])
        if norm < 1:
            crop = cv2.resize(crop, None, fx=norm, fy=norm, interpolation=cv2.INTER_AREA)
        up = scale / norm  # from the tuned scale to the one zxing gets
        base = enhance.upscale(crop, up) if up > 1.05 else crop
        where = (float(x), float(y), scale)
        wiener = enhance.Deblurrer(crop)

        def sized(img: np.ndarray) -> np.ndarray:
            return enhance.upscale(img, up) if up > 1.05 else img

        def dark() -> np.ndarray | None:
            # a green/yellow/red code: its darkest channel has the contrast luma lost
            if colour is None or not enhance.colourful(colour[y:y + h, x:x + w]):
                return None
            d = enhance.stretch(enhance.darkest_channel(colour[y:y + h, x:x + w]))
            d = cv2.resize(d, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC if scale > 1 else cv2.INTER_AREA)
            return enhance.unsharp(d, 2.0 * up, 1.5)

        # the old order's ranks: sharpen 0, colour 1, contrast 2, smooth-sharpen 3, threshold 4,
        # crop 5, motion 4-10 6-9, gauss 1.6/2.4 10-11, noisy motion 12-15, sharp gauss 16-17
        steps: dict[str, tuple[int, Callable[[], np.ndarray | None]]] = {
            "crop": (5, lambda: base),
            "contrast": (2, lambda: enhance.unsharp(enhance.clahe(base), 2.0 * up, 1.5)),
            "wiener-motion8": (8, lambda: sized(wiener.motion(8))),
            "wiener-gauss1.6": (10, lambda: sized(wiener.gauss(1.6))),
            # noise (sensor, JPEG, Bayer) first smoothed away, then the code's edges sharpened
            "smooth-sharpen": (3, lambda: enhance.unsharp(cv2.GaussianBlur(base, (0, 0), 1.0 * up), 2.5 * up, 2.0)),
            "wiener-motion6": (7, lambda: sized(wiener.motion(6))),
            "threshold": (4, lambda: enhance.adaptive_binary(base, int(31 * up))),
            "wiener-gauss2.2-sharp": (17, lambda: sized(wiener.gauss(2.2, k=0.003))),
            "sharpen": (0, lambda: enhance.unsharp(base, 2.0 * up, 1.5)),
            "colour": (1, dark),
            "wiener-motion4": (6, lambda: sized(wiener.motion(4))),
            "wiener-motion10": (9, lambda: sized(wiener.motion(10))),
            "wiener-gauss2.4": (11, lambda: sized(wiener.gauss(2.4))),
            "wiener-motion6-noisy": (13, lambda: sized(wiener.motion(6, k=0.03))),
            "wiener-motion4-noisy": (12, lambda: sized(wiener.motion(4, k=0.03))),
            "wiener-motion8-noisy": (14, lambda: sized(wiener.motion(8, k=0.03))),
            "wiener-motion10-noisy": (15, lambda: sized(wiener.motion(10, k=0.03))),
            "wiener-gauss1.8-sharp": (16, lambda: sized(wiener.gauss(1.8, k=0.003))),
        }
        order = list(steps)
        if self.shaken_first and wiener.anisotropy >= SHAKEN:
            # gradients along one direction only: a shaken code (see enhance.shake). The
            # crop, then the motion kernels (most shaken codes the crop does not read need
            # 6-8 px, then 4), contrast, the long and the noisy kernels; then the rest as usual
            first = ["crop", "wiener-motion8", "wiener-motion6", "wiener-motion4", "contrast", "wiener-motion10",
                     "wiener-motion6-noisy", "wiener-motion8-noisy"]
            order = first + [s for s in order if s not in first]
        cheap = [(steps[step][0], step, steps[step][1], where) for step in order]
        # a small region again at twice the size, where a kernel is drawn more exactly; then
        # defocus and shake together
        fine_f = 2.0 if max(crop.shape) <= 400 else 1.0
        big = enhance.upscale(crop, fine_f) if fine_f > 1 else crop
        r = up / fine_f

        def resized(img: np.ndarray) -> np.ndarray:
            return (cv2.resize(img, None, fx=r, fy=r, interpolation=cv2.INTER_AREA if r < 1 else cv2.INTER_CUBIC)
                    if abs(r - 1) > 0.05 else img)

        def lazily(gen: Iterator[tuple[str, np.ndarray]], names: list[str]
                   ) -> list[tuple[str, Callable[[], np.ndarray], tuple[float, float, float]]]:
            return [(name, lambda: resized(next(gen)[1]), where) for name in names]

        fine = []
        if fine_f > 1:
            fine += lazily(enhance.deblur_motion(big, (8, 12, 16, 20), name_scale=2),
                           [f"wiener-motion{n:g}-fine" for n in (4, 6, 8, 10)])
        fine += lazily(enhance.deblur_lens_and_shake(big, fine_f),
                       [f"wiener-lens{s:g}-shake{n:g}" for s, n, _ in enhance.LENS_AND_SHAKE])
        return cheap, fine

    def close(self) -> None:
        pass


def _painted(gray: np.ndarray, codes: Sequence[Corners]) -> np.ndarray:
    """The frame with each code's quadrilateral (grown by a tenth) filled flat with its own
    mean: it is read already, so it gives neither a texture cue nor a symbol."""
    out = gray.copy()
    for corners in codes:
        pts = np.array(corners, np.float32)
        c = pts.mean(axis=0)
        poly = np.round(c + (pts - c) * 1.2).astype(np.int32)
        mask = np.zeros(gray.shape, np.uint8)
        cv2.fillConvexPoly(mask, poly, 255)
        if mask.any():
            out[mask > 0] = int(cv2.mean(gray, mask)[0])
    return out


def _region_of(found, shape) -> tuple[int, int, int, int] | None:
    """Bounding box of the symbols zxing detected but could not read."""
    pts = [(p.x, p.y) for b in found if not b.valid
           for p in (b.position.top_left, b.position.top_right, b.position.bottom_right, b.position.bottom_left)]
    if not pts:
        return None
    a = np.array(pts)
    x0, y0 = a.min(axis=0)
    x1, y1 = a.max(axis=0)
    if x1 - x0 < 16 or y1 - y0 < 16:
        return None
    return int(x0), int(y0), int(x1 - x0), int(y1 - y0)


def _union(*rois: tuple[int, int, int, int] | None) -> tuple[int, int, int, int] | None:
    """The bounding box of the overlapping regions (the largest region's cluster)."""
    rs = sorted((r for r in rois if r is not None), key=lambda r: -r[2] * r[3])
    if not rs:
        return None
    x0, y0, x1, y1 = rs[0][0], rs[0][1], rs[0][0] + rs[0][2], rs[0][1] + rs[0][3]
    for x, y, w, h in rs[1:]:
        if x < x1 and x + w > x0 and y < y1 and y + h > y0:
            x0, y0, x1, y1 = min(x0, x), min(y0, y), max(x1, x + w), max(y1, y + h)
    return x0, y0, x1 - x0, y1 - y0


def _thumb(gray: np.ndarray, roi: tuple[int, int, int, int]) -> np.ndarray:
    x, y, w, h = roi
    return cv2.resize(gray[y:y + h, x:x + w], (16, 16), interpolation=cv2.INTER_AREA)


def _iou(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    ix = max(0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / float(a[2] * a[3] + b[2] * b[3] - inter or 1)


def _grow(roi: tuple[int, int, int, int], shape: tuple[int, ...], frac: float) -> tuple[int, int, int, int]:
    x, y, w, h = roi
    # a region smaller than a readable code is part of one (a finder pattern): look around it
    least = shape[0] * 0.4
    if w < least:
        x, w = int(x - (least - w) / 2), int(least)
    if h < least:
        y, h = int(y - (least - h) / 2), int(least)
    mx, my = int(w * frac) + 8, int(h * frac) + 8
    x0, y0 = max(0, x - mx), max(0, y - my)
    x1, y1 = min(shape[1], x + w + mx), min(shape[0], y + h + my)
    return x0, y0, x1 - x0, y1 - y0


# name: what it is (`gate scan --decoder NAME`)
DECODERS: dict[str, str] = {
    "cascade": "zxing-cpp, then crops, sharpening, contrast, deblurring and a soft reader with erasures (default)",
    "zxing": "zxing-cpp on the whole frame",
    "zbar": "pyzbar (libzbar0), in a worker process",
}
DEFAULT_DECODER = "cascade"


def make_decoder(name: str = DEFAULT_DECODER, isolate: bool | None = None, thorough: bool = False) -> Decoder:
    """A decoder by name. `isolate` runs it in a worker process (default: only zbar).
    `thorough`: no time budget per frame (files, where a result should not depend on the
    machine's load; a live camera wants the next frame instead)."""
    if name not in DECODERS:
        raise ValueError(f"unknown decoder {name!r}; one of {', '.join(DECODERS)}")
    if isolate is None:
        isolate = name == "zbar"
    if isolate:
        return IsolatedDecoder(name, partial(make_decoder, name, isolate=False, thorough=thorough))
    if name == "zxing":
        return ZxingDecoder()
    if name == "zbar":
        return ZbarDecoder()
    return CascadeDecoder(budget_ms=float("inf")) if thorough else CascadeDecoder()
