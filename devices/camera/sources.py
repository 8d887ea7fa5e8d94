"""Frame sources behind one interface: cameras, video files, folders, images, synthetic.

`open_source(spec)` picks one from a string: `0` or `/dev/video0` (a V4L2 camera),
`picamera` (the Raspberry Pi camera module, through picamera2), a folder (its images,
sorted by name), an image file, a video file, or `synthetic` (rendered phone frames).

A source's `read()` returns the next `Frame`, or None when there is none right now; its
`status` says why (`ended` for a file or folder that is done, `lost`/`stalled` for a
camera that went away, which it reopens by itself with a capped back-off).
"""
from __future__ import annotations

import enum
import logging
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np

log = logging.getLogger("gate.camera")

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".pgm", ".ppm", ".pbm"}


class SourceError(Exception):
    """A source that cannot be opened at all (no such file, not an image or a video)."""


class SourceStatus(str, enum.Enum):
    OPENING = "opening"   # not opened yet
    OK = "ok"             # giving frames
    STALLED = "stalled"   # open, but no frame for too long: will be reopened
    LOST = "lost"         # gone (unplugged, driver error): retrying with back-off
    ENDED = "ended"       # a file, folder or finite synthetic run is done
    CLOSED = "closed"


@dataclass(frozen=True)
class Frame:
    """One picture from a source. `image` is None only for a file that could not be read."""
    image: np.ndarray | None
    index: int
    time: float                 # time.monotonic() when it was captured (or read)
    name: str = ""              # file name for folders and images, else the index
    error: str | None = None    # why `image` is None
    truth: str | None = field(default=None, compare=False)  # synthetic frames: the code shown


class FrameSource(Protocol):
    name: str
    status: SourceStatus
    live: bool  # a camera: frames go stale, drop rather than queue

    def read(self) -> Frame | None: ...

    def close(self) -> None: ...


class _Iterable:
    """Iterate a finite source until it ends."""
    status: SourceStatus

    def read(self) -> Frame | None:  # pragma: no cover - overridden
        raise NotImplementedError

    def __iter__(self) -> Iterator[Frame]:
        while self.status not in (SourceStatus.ENDED, SourceStatus.CLOSED):
            f = self.read()
            if f is not None:
                yield f

    def close(self) -> None:
        self.status = SourceStatus.CLOSED

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@dataclass
class CameraSettings:
    """What to ask of a camera; each is applied only where the driver has it."""
    width: int | None = 640
    height: int | None = 480
    fps: float | None = None
    exposure: float | None = None   # None: automatic. V4L2 units (often 100 us steps)
    focus: float | None = None      # None: autofocus where there is one
    mjpeg: bool = True              # USB cameras give 720p at full rate only as MJPEG


def _device(spec: int | str) -> int | str:
    if isinstance(spec, int):
        return spec
    s = str(spec)
    return int(s) if s.isdigit() else s


class CameraSource(_Iterable):
    """A V4L2 camera through OpenCV, by index (0) or path (/dev/video0).

    `capture_factory(device, api)` makes the capture object; it is cv2.VideoCapture and
    the seam where tests put a fake one. A camera that fails to open, or gives no frame
    for `stall_s` seconds (or `stall_reads` failed reads in a row), is released and
    reopened after a back-off that doubles from `backoff_s` up to `backoff_max_s`.
    """
    live = True

    def __init__(self, device: int | str = 0, settings: CameraSettings | None = None, *,
                 capture_factory: Callable[..., Any] | None = None, backoff_s: float = 0.5,
                 backoff_max_s: float = 10.0, stall_s: float = 2.0, stall_reads: int = 10,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.device = _device(device)
        self.name = f"camera {device}"
        self.settings = settings or CameraSettings()
        self.factory = capture_factory or cv2.VideoCapture
        self.backoff_s, self.backoff_max_s = backoff_s, backoff_max_s
        self.stall_s, self.stall_reads = stall_s, stall_reads
        self.clock = clock
        self.status = SourceStatus.OPENING
        self.reopens = 0            # times the camera was reopened after a failure
        self.last_error = ""
        self._cap: Any = None
        self._delay = backoff_s
        self._retry_at = 0.0
        self._index = 0
        self._fails = 0
        self._last_frame_at = 0.0

    def open(self) -> bool:
        """Try to open now. True when the camera is giving frames (or at least opened)."""
        api = cv2.CAP_V4L2 if os.name == "posix" and self.factory is cv2.VideoCapture else cv2.CAP_ANY
        self.last_error = ""
        try:
            cap = self.factory(self.device, api)
            opened = bool(cap.isOpened())
        except Exception as e:  # noqa: BLE001 - a broken driver must not kill the loop
            cap, opened, self.last_error = None, False, f"{type(e).__name__}: {e}"
        if not opened:
            self.last_error = self.last_error or "cannot open device"
            if cap is not None:
                cap.release()
            self._schedule_retry(SourceStatus.LOST)
            return False
        self._cap = cap
        self._apply(cap)
        if self.status in (SourceStatus.LOST, SourceStatus.STALLED):
            log.warning("camera %s reopened", self.device)
        self.status = SourceStatus.OK
        self._fails = 0
        self._delay = self.backoff_s
        self._last_frame_at = self.clock()
        return True

    def _apply(self, cap: Any) -> None:
        s = self.settings
        props: list[tuple[int, float]] = [(cv2.CAP_PROP_BUFFERSIZE, 1)]  # keep no stale frames in the driver
        if s.mjpeg:
            props.append((cv2.CAP_PROP_FOURCC, cv2.VideoWriter.fourcc(*"MJPG")))
        if s.width:
            props.append((cv2.CAP_PROP_FRAME_WIDTH, s.width))
        if s.height:
            props.append((cv2.CAP_PROP_FRAME_HEIGHT, s.height))
        if s.fps:
            props.append((cv2.CAP_PROP_FPS, s.fps))
        if s.exposure is not None:
            props += [(cv2.CAP_PROP_AUTO_EXPOSURE, 1), (cv2.CAP_PROP_EXPOSURE, s.exposure)]  # V4L2: 1 = manual
        else:
            props.append((cv2.CAP_PROP_AUTO_EXPOSURE, 3))
        if s.focus is not None:
            props += [(cv2.CAP_PROP_AUTOFOCUS, 0), (cv2.CAP_PROP_FOCUS, s.focus)]
        for prop, value in props:
            try:
                if not cap.set(prop, value):
                    log.debug("camera %s does not take property %s", self.device, prop)
            except Exception:  # noqa: BLE001 - optional settings never stop the camera
                log.debug("camera %s rejected property %s", self.device, prop)

    def _schedule_retry(self, status: SourceStatus) -> None:
        if self.status == SourceStatus.OK:
            log.warning("camera %s %s: %s", self.device, status.value, self.last_error)
        self.status = status
        self._retry_at = self.clock() + self._delay
        self._delay = min(self._delay * 2, self.backoff_max_s)

    def _drop(self, status: SourceStatus, why: str) -> None:
        self.last_error = why
        try:
            if self._cap is not None:
                self._cap.release()
        except Exception:  # noqa: BLE001
            pass
        self._cap = None
        self._schedule_retry(status)

    @property
    def retry_in(self) -> float:
        """Seconds until the next reopen attempt (0 when open)."""
        return 0.0 if self._cap is not None else max(0.0, self._retry_at - self.clock())

    def read(self) -> Frame | None:
        if self.status == SourceStatus.CLOSED:
            return None
        if self._cap is None:
            if self.clock() < self._retry_at:
                return None
            if self.status != SourceStatus.OPENING:
                self.reopens += 1
            if not self.open():
                return None
        try:
            ok, img = self._cap.read()
        except Exception as e:  # noqa: BLE001 - e.g. the device vanished mid-read
            ok, img = False, None
            self.last_error = f"{type(e).__name__}: {e}"
        now = self.clock()
        if not ok or img is None or getattr(img, "size", 0) == 0:
            self._fails += 1
            if self._fails >= self.stall_reads or now - self._last_frame_at > self.stall_s:
                self._drop(SourceStatus.STALLED, self.last_error or "no frames")
            return None
        self.status = SourceStatus.OK
        self._fails = 0
        self._last_frame_at = now
        self._index += 1
        return Frame(img, self._index - 1, now, str(self._index - 1))

    def __iter__(self) -> Iterator[Frame]:
        while self.status != SourceStatus.CLOSED:
            f = self.read()
            if f is None:
                time.sleep(min(0.05, self.retry_in) or 0.005)
                continue
            yield f

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
        self._cap = None
        self.status = SourceStatus.CLOSED


class PiCameraSource(_Iterable):
    """The Raspberry Pi camera module through picamera2 (libcamera).

    picamera2 ships with Raspberry Pi OS (`sudo apt install python3-picamera2`); make the
    venv with `--system-site-packages` to see it. It is imported only here.
    """
    live = True

    def __init__(self, camera: int = 0, settings: CameraSettings | None = None) -> None:
        try:
            from picamera2 import Picamera2
        except ImportError as e:
            raise SourceError("picamera2 is not installed: on Raspberry Pi OS run "
                              "`sudo apt install python3-picamera2` and create the venv with "
                              "--system-site-packages") from e
        s = settings or CameraSettings()
        self.name = f"picamera {camera}"
        self.status = SourceStatus.OPENING
        try:
            self._cam = Picamera2(camera)
            # "RGB888" is B,G,R in memory: what OpenCV calls BGR
            cfg = self._cam.create_video_configuration(main={"size": (s.width or 640, s.height or 480),
                                                             "format": "RGB888"}, buffer_count=2)
            self._cam.configure(cfg)
            controls: dict[str, Any] = {}
            if s.fps:
                controls["FrameRate"] = s.fps
            if s.exposure is not None:
                controls.update(AeEnable=False, ExposureTime=int(s.exposure))
            if s.focus is not None:
                controls.update(AfMode=0, LensPosition=float(s.focus))  # manual focus, dioptres
            if controls:
                self._cam.set_controls(controls)
            self._cam.start()
        except Exception as e:
            raise SourceError(f"cannot open Raspberry Pi camera {camera}: {e}") from e
        self.status = SourceStatus.OK
        self._index = 0

    def read(self) -> Frame | None:
        try:
            img = self._cam.capture_array("main")
        except Exception as e:  # noqa: BLE001
            log.warning("picamera: %s", e)
            self.status = SourceStatus.STALLED
            return None
        self.status = SourceStatus.OK
        self._index += 1
        return Frame(np.ascontiguousarray(img[..., :3]), self._index - 1, time.monotonic(), str(self._index - 1))

    def close(self) -> None:
        try:
            self._cam.stop()
            self._cam.close()
        finally:
            self.status = SourceStatus.CLOSED


class VideoFileSource(_Iterable):
    """Frames of a video file, all of them, in order. `pace`: play it at this many frames a
    second (0: the file's own rate), as a camera would give them; then it is `live`."""
    live = False

    def __init__(self, path: str | Path, pace: float | None = None) -> None:
        self.path = Path(path)
        self.name = self.path.name
        if not self.path.is_file():
            raise SourceError(f"no such video file: {self.path}")
        self._cap = cv2.VideoCapture(str(self.path))
        if not self._cap.isOpened():
            raise SourceError(f"cannot open {self.path} as a video")
        self.status = SourceStatus.OK
        self._index = 0
        self.fps = 0.0
        if pace is not None:
            own = float(self._cap.get(cv2.CAP_PROP_FPS) or 0)
            self.fps = pace or (own if 1 <= own <= 240 else 25.0)
            self.live = True
        self._next_at = time.monotonic()

    def read(self) -> Frame | None:
        if self.status != SourceStatus.OK:
            return None
        if self.fps:   # a camera's pace
            wait = self._next_at - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            self._next_at = max(self._next_at + 1 / self.fps, time.monotonic() - 1 / self.fps)
        ok, img = self._cap.read()
        if not ok:
            self.status = SourceStatus.ENDED
            self._cap.release()
            return None
        self._index += 1
        return Frame(img, self._index - 1, time.monotonic(), str(self._index - 1))

    def close(self) -> None:
        self._cap.release()
        self.status = SourceStatus.CLOSED


class ImageFilesSource(_Iterable):
    """Image files in name order: a folder's images, or one image. Unreadable files come
    through as a Frame with `error` set, so a bad file is reported, not silently skipped."""
    live = False

    def __init__(self, path: str | Path) -> None:
        p = Path(path)
        if p.is_dir():
            self.files = sorted((f for f in p.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES),
                                key=lambda f: f.name)
        elif p.is_file():
            self.files = [p]
        else:
            raise SourceError(f"no such file or folder: {p}")
        self.name = p.name
        self.status = SourceStatus.OK if self.files else SourceStatus.ENDED
        self._index = 0

    def read(self) -> Frame | None:
        if self.status != SourceStatus.OK:
            return None
        f = self.files[self._index]
        self._index += 1
        if self._index >= len(self.files):
            self.status = SourceStatus.ENDED
        img = cv2.imread(str(f), cv2.IMREAD_COLOR)
        if img is None:
            return Frame(None, self._index - 1, time.monotonic(), f.name, error="unreadable image")
        return Frame(img, self._index - 1, time.monotonic(), f.name)


class SyntheticSource(_Iterable):
    """Camera-like frames rendered from code texts (the demo and the tests use it).

    Each text is shown for `hold` frames, each with a distortion drawn in turn from
    `distortions`, then `gap` frames with no code; the whole run repeats `repeat` times
    (0: forever, like a camera). `Frame.truth` is the text shown.
    """

    def __init__(self, texts: list[str], distortions: tuple[str, ...] = ("clean",), *, hold: int = 5,
                 gap: int = 3, repeat: int = 1, seed: int = 0, size: tuple[int, int] = (640, 480),
                 fps: float | None = None, style: str = "default") -> None:
        from devices.camera import synthetic
        self._render = synthetic.render
        self.texts, self.distortions = list(texts), tuple(distortions)
        self.hold, self.gap, self.repeat, self.seed = hold, gap, repeat, seed
        self.size, self.fps, self.style = size, fps, style
        self.name = "synthetic"
        self.live = fps is not None
        self.status = SourceStatus.OK
        self._plan = [(t, k) for t in self.texts for k in range(hold)] + [(None, k) for k in range(gap)]
        if not self._plan:
            self.status = SourceStatus.ENDED
        self._index = 0
        self._next_at = time.monotonic()

    def read(self) -> Frame | None:
        if self.status != SourceStatus.OK:
            return None
        i = self._index
        if self.repeat and i >= self.repeat * len(self._plan):
            self.status = SourceStatus.ENDED
            return None
        if self.fps:  # a live camera's pace
            wait = self._next_at - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            self._next_at = max(self._next_at + 1 / self.fps, time.monotonic() - 1 / self.fps)
        text, k = self._plan[i % len(self._plan)]
        rng = np.random.default_rng([self.seed, i])
        dist = "empty" if text is None else self.distortions[i % len(self.distortions)]
        img = self._render(text, dist, rng, self.size, self.style)
        self._index += 1
        if self.repeat and self._index >= self.repeat * len(self._plan):
            self.status = SourceStatus.ENDED
        return Frame(img, i, time.monotonic(), str(i), truth=text)


VIDEO_SUFFIXES = {".avi", ".mp4", ".mkv", ".mov", ".webm", ".mjpeg", ".mjpg", ".m4v", ".h264", ".ts"}


def open_source(spec: str, settings: CameraSettings | None = None, pace: float | None = None) -> FrameSource:
    """A source from a command-line string. Raises SourceError with the reason. `pace`: a
    video file is played at this rate (0: its own), as a camera gives frames."""
    s = spec.strip()
    if s.isdigit() or s.startswith("/dev/video"):
        cam = CameraSource(s, settings)
        if not cam.open():
            raise SourceError(f"cannot open camera {s}: {cam.last_error}")
        return cam
    if s == "picamera" or s.startswith("picamera:"):
        return PiCameraSource(int(s.partition(":")[2] or 0), settings)
    if s == "synthetic" or s.startswith("synthetic:"):
        from devices.camera import synthetic
        rng = np.random.default_rng(0)
        n = int(s.partition(":")[2] or 4)
        return SyntheticSource([synthetic.payload(rng) for _ in range(n)], synthetic.DISTORTIONS[:-1])
    p = Path(s)
    if p.is_dir() or (p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES):
        return ImageFilesSource(p)
    if p.is_file():
        return VideoFileSource(p, pace)
    raise SourceError(f"no such source: {spec} (a folder, an image, a video file, a camera index "
                      f"or /dev/videoN, picamera, or synthetic)")
