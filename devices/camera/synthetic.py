"""Camera-like frames rendered from code texts: a phone held up to the gate camera.

A frame is a scene (wall, door frame, gradient light), a phone (body, bezel, a health-code
app screen with a 150-400 byte QR code) placed with a 3-D pose, then the camera: defocus,
hand shake, sensor noise, glare on the glass, low light, MJPEG compression. Every
distortion draws its strength from a range, so no two frames are alike, and a `style`
switches to a second, held-out family of parameters (other error-correction levels, module
colours, quiet zones, phone shapes) so the decoders are not tuned to one generator.
"""
from __future__ import annotations

import string
import zlib
from dataclasses import dataclass

import cv2
import numpy as np
import segno

from devices.camera.enhance import motion_kernel

# "empty" frames hold no code; every other distortion holds exactly one.
DISTORTIONS: tuple[str, ...] = ("clean", "tilt", "blur", "motion", "noise", "glare", "jpeg",
                                "lowlight", "inverted", "mixed", "empty")
STYLES: tuple[str, ...] = ("default", "holdout")

_BASE45 = string.digits + string.ascii_uppercase + " $%*+-./:"


def payload(rng: np.random.Generator, low: int = 150, high: int = 400) -> str:
    """A health-code-like text of low..high bytes: an HC1-style base45 token or a URL/JSON one."""
    n = int(rng.integers(low, high + 1))
    kind = rng.integers(3)
    if kind == 0:
        body = "".join(rng.choice(list(_BASE45), n - 4))
        return "HC1:" + body
    if kind == 1:
        head = "https://jkm.example.gov.cn/v?c="
        tail = "".join(rng.choice(list(string.ascii_letters + string.digits + "-_"), n - len(head)))
        return head + tail
    name = "".join(rng.choice(list(string.ascii_lowercase), 6))
    issued = int(rng.integers(1_000_000_000, 2_000_000_000))
    kid = "".join(rng.choice(list("0123456789abcdef"), 8))
    fields = '{"c":"G","n":"' + name + '","t":' + str(issued) + ',"k":"' + kid + '","s":"'
    sig = "".join(rng.choice(list(string.ascii_letters + string.digits + "+/"), max(8, n - len(fields) - 2)))
    return fields + sig + '"}'


@dataclass(frozen=True)
class Style:
    """The ranges one family of frames is drawn from."""
    ec_levels: tuple[str, ...]
    quiet: tuple[int, int]          # quiet zone in modules (apps often crop it)
    qr_frac: tuple[float, float]    # QR side as a fraction of the frame height
    module_colours: tuple[tuple[int, int, int], ...]  # BGR of dark modules (health-code colours)
    phone_aspect: tuple[float, float]
    bezel: tuple[float, float]      # bezel width as a fraction of phone width
    blur_sigma: tuple[float, float]
    motion_len: tuple[float, float]  # pixels at 480 lines
    noise_sigma: tuple[float, float]
    jpeg_q: tuple[int, int]
    glare_gain: tuple[float, float]
    low_gain: tuple[float, float]
    tilt_deg: tuple[float, float]


STYLE = {
    "default": Style(ec_levels=("m",), quiet=(2, 4), qr_frac=(0.40, 0.70),
                     module_colours=((0, 0, 0), (40, 140, 20), (30, 30, 30)),
                     phone_aspect=(1.9, 2.2), bezel=(0.03, 0.06),
                     blur_sigma=(1.2, 2.2), motion_len=(3, 9), noise_sigma=(10, 22),
                     jpeg_q=(12, 30), glare_gain=(0.8, 1.6), low_gain=(0.12, 0.3),
                     tilt_deg=(30, 50)),
    "holdout": Style(ec_levels=("l", "m", "q"), quiet=(1, 4), qr_frac=(0.36, 0.75),
                     module_colours=((0, 0, 0), (60, 160, 0), (0, 90, 200), (80, 40, 10)),
                     phone_aspect=(1.7, 2.3), bezel=(0.02, 0.09),
                     blur_sigma=(1.0, 2.4), motion_len=(3, 10), noise_sigma=(8, 24),
                     jpeg_q=(10, 35), glare_gain=(0.7, 1.8), low_gain=(0.1, 0.35),
                     tilt_deg=(28, 52)),
}


def qr_modules(text: str, ec: str = "m") -> np.ndarray:
    """The QR symbol as a bool array, True = dark module, no quiet zone.

    The mask comes from the text instead of segno's search for the best one, which takes
    most of a frame's rendering time; any mask is a valid code.
    """
    mask = zlib.crc32(text.encode()) % 8
    return np.array(segno.make(text, error=ec, micro=False, boost_error=False, mask=mask).matrix, dtype=bool)


def _u(rng: np.random.Generator, lo_hi: tuple[float, float]) -> float:
    return float(rng.uniform(*lo_hi))


def _background(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    """A wall with a light gradient, a door frame, posters, low-frequency texture."""
    c0, c1 = rng.uniform(60, 220, 3), rng.uniform(40, 200, 3)
    ang = rng.uniform(0, 2 * np.pi)
    sh, sw = h // 8 + 1, w // 8 + 1  # smooth light: drawn small, scaled up
    yy, xx = np.mgrid[0:sh, 0:sw].astype(np.float32)
    t = ((xx / sw - 0.5) * np.cos(ang) + (yy / sh - 0.5) * np.sin(ang)) + 0.5
    small = (c0[None, None, :] * (1 - t[..., None]) + c1[None, None, :] * t[..., None]).astype(np.float32)
    tex = cv2.resize(rng.normal(0, 12, (h // 32 + 1, w // 32 + 1)).astype(np.float32), (sw, sh),
                     interpolation=cv2.INTER_CUBIC)
    img = cv2.resize(small + tex[..., None], (w, h), interpolation=cv2.INTER_LINEAR)
    img = np.clip(img, 0, 255).astype(np.uint8)
    for _ in range(int(rng.integers(2, 7))):  # door frames, posters, a railing
        x0, y0 = int(rng.integers(0, w)), int(rng.integers(0, h))
        x1, y1 = x0 + int(rng.integers(10, w // 2)), y0 + int(rng.integers(10, h // 2))
        colour = tuple(int(v) for v in rng.uniform(0, 255, 3))
        cv2.rectangle(img, (x0, y0), (x1, y1), colour, -1 if rng.random() < 0.6 else int(rng.integers(2, 8)))
    if rng.random() < 0.5:  # printed text on a notice: fine high-contrast texture, not a code
        x0, y0 = int(rng.integers(0, w - 80)), int(rng.integers(0, h - 60))
        for k in range(int(rng.integers(3, 8))):
            cv2.putText(img, "".join(rng.choice(list(string.ascii_uppercase), 8)), (x0, y0 + 12 * k),
                        cv2.FONT_HERSHEY_SIMPLEX, 0.35, (20, 20, 20), 1, cv2.LINE_AA)
    return img


def _notice(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    """A printed notice: paper, a heading, lines of small text, sometimes a table."""
    paper = np.full((h, w, 3), [int(v) for v in rng.uniform(200, 250, 3)], np.uint8)
    ink = (20, 20, 20) if rng.random() < 0.7 else (30, 30, 190)
    y = int(rng.integers(8, 20))
    cv2.putText(paper, "".join(rng.choice(list(string.ascii_uppercase), int(rng.integers(4, 10)))), (8, y + 14),
                cv2.FONT_HERSHEY_DUPLEX, float(rng.uniform(0.5, 0.9)), ink, 2, cv2.LINE_AA)
    y += 30
    scale = float(rng.uniform(0.28, 0.45))
    step = int(12 + 30 * scale)
    table = rng.random() < 0.35
    while y < h - 6:
        words = " ".join("".join(rng.choice(list(string.ascii_lowercase), int(rng.integers(2, 9))))
                         for _ in range(12))
        cv2.putText(paper, words, (6, y), cv2.FONT_HERSHEY_SIMPLEX, scale, ink, 1, cv2.LINE_AA)
        if table:
            cv2.line(paper, (4, y + 4), (w - 4, y + 4), ink, 1)
        y += step
    if table:
        for x in np.linspace(4, w - 4, int(rng.integers(3, 6))):
            cv2.line(paper, (int(x), 40), (int(x), h - 4), ink, 1)
    return paper


def busy_background(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    """What a gate camera sees behind the people: notices pasted on the wall, tiles, a
    railing, a patterned shirt, signs with nested squares that look like a finder pattern.
    No code anywhere (a code on a poster is a code: see the scanner's background codes)."""
    img = _background(rng, w, h)
    for _ in range(int(rng.integers(2, 5))):          # notices
        nw, nh = int(rng.uniform(0.2, 0.45) * w), int(rng.uniform(0.3, 0.6) * h)
        x, y = int(rng.integers(0, w - nw)), int(rng.integers(0, h - nh))
        img[y:y + nh, x:x + nw] = _notice(rng, nw, nh)
    kind = rng.integers(3)
    gw, gh = int(rng.uniform(0.2, 0.5) * w), int(rng.uniform(0.2, 0.5) * h)
    x, y = int(rng.integers(0, w - gw)), int(rng.integers(0, h - gh))
    cell = int(rng.integers(6, 24))
    patch = img[y:y + gh, x:x + gw]
    dark = tuple(int(v) for v in rng.uniform(0, 90, 3))
    if kind == 0:        # tiles or a fence: a grid of lines
        patch[::cell, :] = dark
        patch[:, ::cell] = dark
    elif kind == 1:      # a checked shirt or a chequered floor
        yy, xx = np.mgrid[0:gh, 0:gw]
        patch[((yy // cell) + (xx // cell)) % 2 == 0] = dark
    else:                # a railing
        for bx in range(0, gw, cell):
            cv2.rectangle(patch, (bx, 0), (bx + max(2, cell // 3), gh), dark, -1)
    for _ in range(int(rng.integers(1, 5))):          # signs with nested squares
        m = int(rng.integers(3, 9))
        cx, cy = int(rng.integers(7 * m, w - 7 * m)), int(rng.integers(7 * m, h - 7 * m))
        cv2.rectangle(img, (cx - int(3.5 * m), cy - int(3.5 * m)), (cx + int(3.5 * m), cy + int(3.5 * m)), dark, -1)
        cv2.rectangle(img, (cx - int(2.5 * m), cy - int(2.5 * m)), (cx + int(2.5 * m), cy + int(2.5 * m)),
                      (240, 240, 240), -1)
        cv2.rectangle(img, (cx - int(1.5 * m), cy - int(1.5 * m)), (cx + int(1.5 * m), cy + int(1.5 * m)), dark, -1)
    return img


def _screen(rng: np.random.Generator, text: str | None, st: Style, qr_px: float,
            inverted: bool) -> tuple[np.ndarray, float]:
    """A health-code app screen. Returns the screen (BGR) and its width in phone units."""
    aspect = _u(rng, st.phone_aspect)
    sw = int(qr_px / 0.72)  # the QR fills about 70% of the screen width, as in the apps
    sw = max(sw, 80)
    sh = int(sw * aspect)
    bg = (34, 34, 34) if inverted else (250, 250, 250)
    scr = np.full((sh, sw, 3), bg, np.uint8)
    head = tuple(int(v) for v in (rng.uniform(120, 200), rng.uniform(100, 180), rng.uniform(0, 60)))
    cv2.rectangle(scr, (0, 0), (sw, int(sh * 0.08)), head, -1)
    fg_text = (200, 200, 200) if inverted else (90, 90, 90)
    for k in range(4):  # name, time, place lines above and below the code
        y = int(sh * (0.13 + 0.03 * k))
        cv2.rectangle(scr, (int(sw * 0.15), y), (int(sw * rng.uniform(0.4, 0.85)), y + max(2, sh // 120)), fg_text, -1)
    if text is not None:
        mods = qr_modules(text, str(rng.choice(st.ec_levels)))
        quiet = int(rng.integers(st.quiet[0], st.quiet[1] + 1))
        n = mods.shape[0] + 2 * quiet
        px = max(2, int(round(qr_px * 2 / n)))  # rendered at ~2x, the warp brings it down
        colour = np.array(st.module_colours[int(rng.integers(len(st.module_colours)))], np.uint8)
        sym = np.ones((n, n), bool)
        sym[quiet:quiet + mods.shape[0], quiet:quiet + mods.shape[0]] = ~mods
        tile = np.empty((n, n, 3), np.uint8)
        if inverted:  # dark mode: light modules on a dark screen
            tile[sym], tile[~sym] = bg, (235, 235, 235)
        else:
            tile[sym], tile[~sym] = (255, 255, 255), colour
        tile = cv2.resize(tile, (n * px, n * px), interpolation=cv2.INTER_NEAREST)
        side = int(sw * 0.72)
        tile = cv2.resize(tile, (side, side), interpolation=cv2.INTER_AREA)
        x0, y0 = (sw - side) // 2, int(sh * 0.3)
        scr[y0:y0 + side, x0:x0 + side] = tile
    else:  # an app screen with no code: a list of records
        for k in range(10):
            y = int(sh * (0.3 + 0.05 * k))
            right = int(sw * rng.uniform(0.3, 0.9))
            cv2.rectangle(scr, (int(sw * 0.08), y), (right, y + max(3, sh // 60)), fg_text, -1)
    return scr, sw


def _phone(rng: np.random.Generator, scr: np.ndarray, st: Style) -> np.ndarray:
    sh, sw = scr.shape[:2]
    b = max(3, int(sw * _u(rng, st.bezel)))
    body = np.full((sh + 4 * b, sw + 2 * b, 3), 0, np.uint8)
    body[:] = (int(rng.uniform(10, 60)),) * 3
    body[2 * b:2 * b + sh, b:b + sw] = scr
    return body


def _pose(rng: np.random.Generator, pw: int, ph: int, w: int, h: int, scale: float, tilt: float,
          anchor: tuple[float, float], reach: float) -> np.ndarray:
    """Homography from the phone image to the frame: a 3-D rotation and a pinhole camera.

    The phone is placed so that `anchor` (the code's centre on the phone) lands at a random
    point at least `reach` pixels from the frame edges: the person holds the code in view.
    """
    ax, ay = np.radians(rng.uniform(-1, 1, 2) * tilt)
    az = np.radians(rng.uniform(-25, 25))
    rx = np.array([[1, 0, 0], [0, np.cos(ax), -np.sin(ax)], [0, np.sin(ax), np.cos(ax)]])
    ry = np.array([[np.cos(ay), 0, np.sin(ay)], [0, 1, 0], [-np.sin(ay), 0, np.cos(ay)]])
    rz = np.array([[np.cos(az), -np.sin(az), 0], [np.sin(az), np.cos(az), 0], [0, 0, 1]])
    r = rz @ ry @ rx
    src = np.array([[0, 0], [pw, 0], [pw, ph], [0, ph], anchor], np.float32)
    pts3 = np.c_[src - [anchor[0], anchor[1]], np.zeros(5)] * scale
    f = 1.1 * w  # a wide-ish lens, like the USB cameras at gates
    cam = pts3 @ r.T + [0, 0, f]
    proj = f * cam[:, :2] / cam[:, 2:3]
    lo_x, hi_x = min(reach, w / 2), max(w - reach, w / 2)
    lo_y, hi_y = min(reach, h / 2), max(h - reach, h / 2)
    target = np.array([rng.uniform(lo_x, hi_x), rng.uniform(lo_y, hi_y)])
    dst = (proj - proj[4] + target).astype(np.float32)
    return cv2.getPerspectiveTransform(src[:4], dst[:4])


def _glare(rng: np.random.Generator, img: np.ndarray, centre: np.ndarray, radius: float, gain: float) -> np.ndarray:
    """A window or lamp reflected in the phone glass: a bright soft blob, saturating at its core."""
    h, w = img.shape[:2]
    c = centre + rng.uniform(-0.6, 0.6, 2) * radius
    sx, sy = radius * rng.uniform(0.25, 0.6), radius * rng.uniform(0.12, 0.35)
    th = rng.uniform(0, np.pi)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    u = (xx - c[0]) * np.cos(th) + (yy - c[1]) * np.sin(th)
    v = -(xx - c[0]) * np.sin(th) + (yy - c[1]) * np.cos(th)
    blob = np.exp(-0.5 * ((u / sx) ** 2 + (v / sy) ** 2)) * 255 * gain
    return np.clip(img.astype(np.float32) + blob[..., None], 0, 255).astype(np.uint8)


def _jpeg(img: np.ndarray, q: int) -> np.ndarray:
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, int(q)])
    return np.asarray(cv2.imdecode(buf, cv2.IMREAD_COLOR), np.uint8)


def render(text: str | None, distortion: str = "clean", rng: np.random.Generator | int = 0,
           size: tuple[int, int] = (640, 480), style: str = "default",
           optics: np.random.Generator | None = None, busy: bool = False) -> np.ndarray:
    """One BGR camera frame showing `text` as a QR on a phone (None: no code) with a distortion.

    `rng` draws the scene (wall, phone, pose, light); `optics`, when given, draws what
    changes from frame to frame while a person holds still (blur, shake, noise, glare
    position, compression), so a burst of frames of one presentation can be rendered.
    `busy`: the scene is `busy_background` (notices, grids, finder-like signs).
    """
    if distortion not in DISTORTIONS:
        raise ValueError(f"unknown distortion {distortion!r}; one of {', '.join(DISTORTIONS)}")
    rng = np.random.default_rng(rng) if not isinstance(rng, np.random.Generator) else rng
    orng = optics or rng
    st = STYLE[style]
    w, h = size
    k = h / 480  # distortion strengths are given at 480 lines
    effects = {distortion}
    if distortion == "mixed":
        effects = set(rng.choice(["tilt", "blur", "motion", "noise", "glare", "jpeg", "lowlight", "inverted"],
                                 int(rng.integers(2, 4)), replace=False))
    if distortion == "empty":
        effects = set(rng.choice(["blur", "motion", "noise", "glare", "jpeg", "lowlight", "inverted"],
                                 int(rng.integers(0, 3)), replace=False))
        text = None
    img = busy_background(rng, w, h) if busy else _background(rng, w, h)
    qr_px = _u(rng, st.qr_frac) * h
    centre = np.array([w / 2, h / 2])
    radius = qr_px / 2
    show_phone = text is not None or rng.random() < 0.6  # empty frames: a phone with no code, or nobody
    if show_phone:
        scr, sw = _screen(rng, text, st, qr_px * 1.6, "inverted" in effects)
        phone = _phone(rng, scr, st)
        ph, pw = phone.shape[:2]
        tilt = _u(rng, st.tilt_deg) if "tilt" in effects else 12.0
        b = (pw - scr.shape[1]) // 2  # bezel: b at the sides, 2b at the top (see _phone)
        anchor = (b + scr.shape[1] / 2, 2 * b + 0.3 * scr.shape[0] + 0.36 * scr.shape[1])
        hmg = _pose(rng, pw, ph, w, h, 1 / 1.6, tilt, anchor, 0.62 * qr_px)
        # pre-filter against aliasing: the warp shrinks the screen by about 1.6x
        phone = cv2.GaussianBlur(phone, (0, 0), 0.6)
        warped = cv2.warpPerspective(phone, hmg, (w, h), flags=cv2.INTER_LINEAR)
        mask = cv2.warpPerspective(np.full((ph, pw), 255, np.uint8), hmg, (w, h), flags=cv2.INTER_LINEAR)
        a = (mask.astype(np.float32) / 255)[..., None]
        # the screen glows: in low light it stays brighter than the scene
        if "lowlight" in effects:
            g = _u(rng, st.low_gain)
            img = (img.astype(np.float32) * g * 0.5)
            warped = warped.astype(np.float32) * min(1.0, g * 1.8)
            img = img * (1 - a) + warped * a
        else:
            img = img.astype(np.float32) * (1 - a) + warped.astype(np.float32) * a
        img = np.clip(img, 0, 255).astype(np.uint8)
        centre = cv2.perspectiveTransform(np.array([[anchor]], np.float32), hmg)[0, 0]
    elif "lowlight" in effects:
        img = (img.astype(np.float32) * _u(rng, st.low_gain) * 0.5).astype(np.uint8)
    # optics and sensor, in the order light meets them
    if "glare" in effects:
        img = _glare(orng, img, centre, radius, _u(orng, st.glare_gain))
    if "blur" in effects:
        img = cv2.GaussianBlur(img, (0, 0), _u(orng, st.blur_sigma) * k)
    else:
        img = cv2.GaussianBlur(img, (0, 0), orng.uniform(0.4, 0.8) * k)  # every lens is a little soft
    if "motion" in effects:
        img = cv2.filter2D(img, -1, motion_kernel(_u(orng, st.motion_len) * k, orng.uniform(0, np.pi)))
    sigma = _u(orng, st.noise_sigma) if "noise" in effects else orng.uniform(1.5, 4)
    if "lowlight" in effects:
        sigma = max(sigma, orng.uniform(6, 12))  # gain turned up in the dark
    f = img.astype(np.float32) + orng.standard_normal(img.shape, dtype=np.float32) * np.float32(sigma)
    img = np.clip(f, 0, 255).astype(np.uint8)
    q = int(orng.integers(st.jpeg_q[0], st.jpeg_q[1] + 1)) if "jpeg" in effects else int(orng.integers(70, 92))
    return _jpeg(img, q)  # USB cameras deliver MJPEG


@dataclass(frozen=True)
class Sample:
    """A rendered frame and the truth about it."""
    image: np.ndarray
    text: str | None
    distortion: str


def samples(n: int, distortions: tuple[str, ...] = DISTORTIONS, seed: int = 0,
            size: tuple[int, int] = (640, 480), style: str = "default") -> list[Sample]:
    """`n` frames per distortion, reproducible from `seed`."""
    out = []
    for d_i, d in enumerate(distortions):
        for i in range(n):
            rng = np.random.default_rng([seed, d_i, i, size[0]])
            text = None if d == "empty" else payload(rng)
            out.append(Sample(render(text, d, rng, size, style), text, d))
    return out


def burst(text: str | None, distortion: str, n: int, seed: int, size: tuple[int, int] = (640, 480),
          style: str = "default", busy: bool = False) -> list[np.ndarray]:
    """`n` frames of one presentation: the same scene and pose, fresh optics each frame.
    Harder than independent frames: a phone that glares in one frame glares in the next."""
    return [render(text, distortion, np.random.default_rng(seed), size, style,
                   optics=np.random.default_rng([seed, k]), busy=busy) for k in range(n)]


def busy_frames(n: int, seed: int, size: tuple[int, int] = (640, 480)) -> list[np.ndarray]:
    """`n` busy frames with no code: the busy background, with or without a person's phone
    showing something else, through the camera's usual optics."""
    return [render(None, "empty", np.random.default_rng([seed, i]), size, busy=True) for i in range(n)]
