"""A simulated gate camera: a live source that shows an empty scene until somebody holds
a phone up (`show`), then rendered frames of that phone's code for as long as they hold
it. The demo and the tests drive the real scanner and decoders with it, like OctoPrint's
virtual printer drives the real serial code."""
from __future__ import annotations

import threading
import time

import numpy as np

from devices.camera.sources import Frame, SourceStatus


class SimulatedCamera:
    """A FrameSource at `fps`; `show(text, seconds, distortion)` puts a phone in view."""

    def __init__(self, fps: float = 10.0, size: tuple[int, int] = (640, 480), seed: int = 0) -> None:
        from devices.camera import synthetic
        self._render = synthetic.render
        self.fps, self.size, self.seed = fps, size, seed
        self.name, self.live, self.status = "sim", True, SourceStatus.OK
        self._index = 0
        self._next_at = time.monotonic()
        self._lock = threading.Lock()
        self._shown: tuple[str, str, float, int] | None = None  # text, distortion, until, presentation
        self._presentations = 0
        self._empty: np.ndarray | None = None

    def show(self, text: str, seconds: float = 1.0, distortion: str = "clean") -> None:
        """A phone showing `text` in front of the camera for `seconds`."""
        with self._lock:
            self._presentations += 1
            self._shown = (text, distortion, time.monotonic() + seconds, self._presentations)

    def clear(self) -> None:
        with self._lock:
            self._shown = None

    def read(self) -> Frame | None:
        if self.status != SourceStatus.OK:
            return None
        wait = self._next_at - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        self._next_at = max(self._next_at + 1 / self.fps, time.monotonic() - 1 / self.fps)
        with self._lock:
            shown = self._shown
            if shown is not None and time.monotonic() > shown[2]:
                shown = self._shown = None
        i = self._index
        self._index += 1
        if shown is None:
            if self._empty is None:  # an empty scene does not change: render it once
                self._empty = self._render(None, "empty", np.random.default_rng(self.seed), self.size)
            return Frame(self._empty, i, time.monotonic(), str(i))
        text, distortion, _, presentation = shown
        # one scene per presentation, the optics (shake, noise) new on every frame
        img = self._render(text, distortion, np.random.default_rng([self.seed, presentation]), self.size,
                           optics=np.random.default_rng([self.seed, presentation, i]))
        return Frame(img, i, time.monotonic(), str(i), truth=text)

    def close(self) -> None:
        self.status = SourceStatus.CLOSED
