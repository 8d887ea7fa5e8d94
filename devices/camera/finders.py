"""Placing a QR symbol zxing-cpp could not place, for the soft reader.

zxing-cpp finds a symbol by scanning binarised rows for the finder's 1:1:3:1:1 runs; blur
that merges a module's rings, or glare across a run, and it finds nothing, although a
person still sees the three finders as blobs. Here they are found the way a person sees
them: normalised cross-correlation with a blurred finder (dark square, light ring, dark
core, light separator) at the module sizes a phone at a gate shows. Three that form a
right isosceles triangle, with the same module size, make a symbol: its size comes from
their distance, the fixed patterns pick the version, the format information is read here,
and soft.read() does the rest, with its misread guard.
"""
from __future__ import annotations

import itertools
from functools import cache

import cv2
import numpy as np
from segno import consts as qr

from devices.camera import soft

SCALE = 2.0        # pixels per module the image is resized to, for each module size tried
MIN_SCORE = 0.45   # correlation a finder must reach
MAX_PEAKS = 12


@cache
def _template(turn: int) -> np.ndarray:
    """A finder with its light separator, 9x9 modules at SCALE px, slightly blurred;
    turned by 0 or 45 degrees (the correlation of a square falls off as it turns)."""
    k = 8
    m = np.zeros((9 * k, 9 * k), np.float32)
    ring = np.maximum(*np.abs(np.mgrid[0:9 * k, 0:9 * k] - (9 * k - 1) / 2)) / k
    m[(ring < 3.5) & ((ring >= 2.5) | (ring < 1.5))] = 1.0
    if turn:
        rot = cv2.getRotationMatrix2D(((9 * k - 1) / 2, (9 * k - 1) / 2), 45, 1.0)
        m = np.asarray(cv2.warpAffine(m, rot, m.shape[::-1], flags=cv2.INTER_LINEAR, borderValue=0), np.float32)
    size = int(round(9 * SCALE))
    t = cv2.resize(m, (size, size), interpolation=cv2.INTER_AREA)
    return cv2.GaussianBlur(1.0 - t, (0, 0), 0.6)   # dark = low, as in the image


def candidates(gray: np.ndarray, modules: tuple[float, ...] = (2.0, 2.5, 3.2, 4.0, 5.0, 6.3, 8.0)
               ) -> list[tuple[float, float, float, float]]:
    """Finder-like blobs: (x, y, module size, score), best first."""
    found = []
    for u in modules:
        f = SCALE / u
        if min(gray.shape[:2]) * f < 2 * 9 * SCALE:    # too small to hold a symbol at this size
            continue
        small = cv2.resize(gray, None, fx=f, fy=f, interpolation=cv2.INTER_AREA if f < 1 else cv2.INTER_LINEAR)
        small = small.astype(np.float32)
        for turn in (0, 1):
            t = _template(turn)
            score = cv2.matchTemplate(small, t, cv2.TM_CCOEFF_NORMED)
            peaks = (score >= MIN_SCORE) & (score == cv2.dilate(score, np.ones((7, 7), np.uint8)))
            for y, x in zip(*np.nonzero(peaks), strict=True):
                c = (t.shape[1] - 1) / 2
                found.append(((x + c) / f, (y + c) / f, u, float(score[y, x])))
    found.sort(key=lambda p: -p[3])
    kept: list[tuple[float, float, float, float]] = []
    for p in found:   # one per blob: the best module size and turn
        if all(np.hypot(p[0] - q[0], p[1] - q[1]) > 3 * min(p[2], q[2]) for q in kept):
            kept.append(p)
        if len(kept) == MAX_PEAKS:
            break
    return kept


def symbols(gray: np.ndarray, limit: int = 2, tries: int = 60) -> list[soft.Symbol]:
    """Symbols made of finder candidates, most finder-like first, with their version and
    format read; at most `limit`, after at most `tries` placements. Three finders make a
    symbol; where only two were found (glare on the third, or it is at the frame's edge)
    the third is put where a right isosceles triangle needs it."""
    peaks = candidates(gray)
    out: list[soft.Symbol] = []
    for tl, tr, bl in itertools.islice(_triangles(peaks), tries):
        sym = _place(gray, tl, tr, bl)
        if sym is not None:
            out.append(sym)
            if len(out) == limit:
                break
    return out


def _triangles(peaks):
    """(TL, TR, BL) finder centres: from three candidates, best first; then from two."""
    triples = []
    for a, b, c in itertools.combinations(peaks, 3):
        for tl, tr, bl in ((a, b, c), (b, a, c), (c, a, b)):
            t = _oriented(tl, tr, bl)
            if t is not None:
                triples.append((tl[3] + tr[3] + bl[3], t))
    for _, t in sorted(triples, key=lambda x: -x[0]):
        yield t
    pairs = sorted(itertools.combinations(peaks, 2), key=lambda pq: -(pq[0][3] + pq[1][3]))
    for p, q in pairs:
        d = np.subtract(q[:2], p[:2])
        turn = np.array([-d[1], d[0]])
        u = (p[2] + q[2]) / 2
        # p-q is a leg with the right angle at p, or at q
        guesses = [(p, q, tuple(np.add(p[:2], s * turn)) + (u, 0.0)) for s in (1, -1)]
        guesses += [(q, p, tuple(np.add(q[:2], s * turn)) + (u, 0.0)) for s in (1, -1)]
        mid = np.add(p[:2], q[:2]) / 2
        guesses += [(tuple(mid + s * turn / 2) + (u, 0.0), p, q) for s in (1, -1)]           # the hypotenuse
        for tl, tr, bl in guesses:
            t = _oriented(tl, tr, bl)
            if t is not None:
                yield t


def _oriented(tl, tr, bl):
    """The three as (TL, TR, BL) if they make a finder triangle with its right angle at tl."""
    us = (tl[2], tr[2], bl[2])
    if max(us) > 1.6 * min(us):
        return None
    v1 = np.subtract(tr[:2], tl[:2])
    v2 = np.subtract(bl[:2], tl[:2])
    l1, l2 = float(np.hypot(*v1)), float(np.hypot(*v2))
    if min(l1, l2) < 8 * max(us) or max(l1, l2) > 1.5 * min(l1, l2) or abs(float(v1 @ v2)) > 0.35 * l1 * l2:
        return None
    return (tl, tr, bl) if v1[0] * v2[1] - v1[1] * v2[0] > 0 else (tl, bl, tr)   # TR clockwise from BL


def _place(gray: np.ndarray, tl, tr, bl) -> soft.Symbol | None:
    """The symbol whose finders are centred here: of the versions the distance allows, the
    one whose fixed patterns fit best, refined; and its format."""
    u = (tl[2] + tr[2] + bl[2]) / 3
    leg = (np.hypot(tr[0] - tl[0], tr[1] - tl[1]) + np.hypot(bl[0] - tl[0], bl[1] - tl[1])) / 2
    guess = (leg / u + 7 - 17) / 4
    fits = []
    for version in range(max(1, int(guess) - 2), min(40, int(guess) + 3) + 1):
        n = 17 + 4 * version
        # module (x, y) -> image: the finder centres are at 3.5 and n - 3.5
        a = cv2.getAffineTransform(np.array([(3.5, 3.5), (n - 3.5, 3.5), (3.5, n - 3.5)], np.float32),
                                   np.array([tl[:2], tr[:2], bl[:2]], np.float32))
        corners = cv2.transform(np.array([[(0, 0), (n, 0), (n, n), (0, n)]], np.float32), a)[0]
        fits.append((soft.fit(gray, corners, n, *soft.fixed_points(version)), version, corners))
    fits.sort(key=lambda f: -f[0])
    if not fits or fits[0][0] < 0.3:      # not a QR symbol's fixed patterns
        return None
    _, version, corners = fits[0]
    sym = soft.refine(gray, soft.Symbol(corners, version, "M", 0))
    if soft.fit(gray, sym.corners, sym.size, *soft.fixed_points(version)) < 0.5:
        return None
    values = soft.sample(gray, sym)
    found = read_format(255 - values if soft.inverted(values) else values)
    return None if found is None else soft.Symbol(sym.corners, version, *found)


def read_format(values: np.ndarray) -> tuple[str, int] | None:
    """EC level and mask from the two copies of the format information (15 bits each, BCH
    coded): the valid word that agrees best with both copies, weighted by how sure each
    module is, and within 3 bits of one of them."""
    n = values.shape[0]
    dark, sure = soft.decide(values)
    copies = (_FORMAT_1, [(r if r < 9 else n - 17 + r, c if c < 9 else n - 17 + c) for r, c in _FORMAT_2])
    seen = [np.array([dark[r, c] for r, c in copy]) for copy in copies]
    weight = [np.array([sure[r, c] for r, c in copy]) for copy in copies]
    best = None
    for index, word in enumerate(qr.FORMAT_INFO):
        bits = np.array([(word >> (14 - i)) & 1 for i in range(15)], bool)
        distance = min(int((s != bits).sum()) for s in seen)
        score = sum(float((w * np.where(s == bits, 1, -1)).sum()) for s, w in zip(seen, weight, strict=True))
        if distance <= 3 and (best is None or score > best[0]):
            best = (score, index)
    if best is None:
        return None
    ec = {v: k for k, v in qr.ERROR_MAPPING.items()}[best[1] >> 3]
    return ec, best[1] & 7


# (row, column) of format bits 14..0: around the top-left finder; then beside the bottom-left
# and top-right finders (written for a 17-module symbol: rows and columns above 8 move with n)
_FORMAT_1 = [(8, c) for c in range(6)] + [(8, 7), (8, 8), (7, 8)] + [(r, 8) for r in range(5, -1, -1)]
_FORMAT_2 = [(r, 8) for r in range(16, 9, -1)] + [(8, c) for c in range(9, 17)]
