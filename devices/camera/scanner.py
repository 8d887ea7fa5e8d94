"""The scanner: a camera loop in its own threads that turns frames into scan events.

One thread grabs frames and keeps only the newest (a live camera's old frames are
worthless: a person waiting at the gate wants the code read now); another decodes
whatever is newest when it is free. Frames the decoder had no time for are dropped and
counted, never queued. A code held up for several seconds is one scan: a text is
reported again only after it has been out of sight for `debounce_s`.
"""
from __future__ import annotations

import datetime as dt
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from devices.camera.decoders import Decoded, Decoder
from devices.camera.sources import Frame, FrameSource, SourceStatus

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ScanEvent:
    """One code read: what, from which frame, when, and how long decoding took."""
    text: str
    frame_index: int
    frame_time: float       # time.monotonic() when the frame was captured
    at: dt.datetime         # wall clock (UTC) when the scan was reported
    latency_ms: float       # decode time of that frame
    step: str = ""          # which decoder step read it


class Debouncer:
    """Same text within `hold_s` of its last sighting: the same scan."""

    def __init__(self, hold_s: float = 3.0) -> None:
        self.hold_s = hold_s
        self._last_seen: dict[str, float] = {}

    def is_new(self, text: str, now: float) -> bool:
        last = self._last_seen.get(text)
        self._last_seen[text] = now
        # forget texts long gone so the table stays small on a gate that runs for months
        if len(self._last_seen) > 256:
            self._last_seen = {t: s for t, s in self._last_seen.items() if now - s <= self.hold_s}
        return last is None or now - last > self.hold_s


@dataclass
class ScannerStats:
    frames: int = 0          # frames grabbed
    decoded: int = 0         # frames decoded (the rest were dropped)
    dropped: int = 0         # frames replaced by a newer one before the decoder got to them
    scans: int = 0
    errors: int = 0          # decoder exceptions (the loop carries on)


class Scanner:
    """Grab from `source`, decode with `decoder`, report new codes to `on_scan` and `events`."""

    def __init__(self, source: FrameSource, decoder: Decoder, *, debounce_s: float = 3.0,
                 on_scan: Callable[[ScanEvent], None] | None = None,
                 on_status: Callable[[SourceStatus], None] | None = None, region_hold_s: float = 1.0) -> None:
        self.source, self.decoder = source, decoder
        self.debounce = Debouncer(debounce_s)
        self.on_scan, self.on_status = on_scan, on_status
        self.events: queue.Queue[ScanEvent] = queue.Queue(maxsize=100)
        self.stats = ScannerStats()
        self.region_hold_s = region_hold_s
        self._latest: Frame | None = None
        self._cv = threading.Condition()
        self._stop = threading.Event()
        self._source_done = False
        self._threads: list[threading.Thread] = []
        self._region: tuple[tuple[int, int, int, int], float] | None = None
        self._status = source.status

    @property
    def status(self) -> SourceStatus:
        return self._status

    def start(self) -> Scanner:
        self._threads = [threading.Thread(target=self._grab_loop, name="scanner-grab", daemon=True),
                         threading.Thread(target=self._decode_loop, name="scanner-decode", daemon=True)]
        for t in self._threads:
            t.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        with self._cv:
            self._cv.notify_all()
        for t in self._threads:
            t.join(timeout)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until a finite source is used up and its last frame decoded."""
        for t in self._threads:
            t.join(timeout)
        return not any(t.is_alive() for t in self._threads)

    def __enter__(self) -> Scanner:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _set_status(self, status: SourceStatus) -> None:
        if status != self._status:
            self._status = status
            if self.on_status:
                self.on_status(status)

    def _grab_loop(self) -> None:
        live = getattr(self.source, "live", True)
        try:
            while not self._stop.is_set():
                frame = self.source.read()
                self._set_status(self.source.status)
                if frame is None:
                    if self.source.status in (SourceStatus.ENDED, SourceStatus.CLOSED):
                        break
                    self._stop.wait(min(0.05, getattr(self.source, "retry_in", 0.0)) or 0.005)
                    continue
                with self._cv:
                    if not live:  # a file: every frame matters, wait for the decoder
                        while self._latest is not None and not self._stop.is_set():
                            self._cv.wait(0.1)
                    self.stats.frames += 1
                    if self._latest is not None:
                        self.stats.dropped += 1
                    self._latest = frame
                    self._cv.notify_all()
        except Exception:
            log.exception("frame source %s failed", getattr(self.source, "name", "?"))
        finally:
            with self._cv:
                self._source_done = True
                self._cv.notify_all()

    def _decode_loop(self) -> None:
        while True:
            with self._cv:
                while self._latest is None and not self._stop.is_set() and not self._source_done:
                    self._cv.wait(0.1)
                frame, self._latest = self._latest, None
                self._cv.notify_all()
                if frame is None:
                    return  # stopped, or the source is done and everything is decoded
            if frame.image is not None:
                self._decode(frame)

    def _decode(self, frame: Frame) -> None:
        region = None
        if self._region and frame.time - self._region[1] <= self.region_hold_s:
            region = self._region[0]
        t0 = time.perf_counter()
        try:
            if region is not None and getattr(self.decoder, "uses_region", False):
                # where the code was a moment ago: the cascade looks there even when the
                # frame's own cues are too blurred (several frames combine this way)
                found: list[Decoded] = self.decoder.decode(frame.image, region=region)  # type: ignore[call-arg]
            else:
                found = self.decoder.decode(frame.image)
        except Exception:
            self.stats.errors += 1
            log.exception("decoder %s failed on frame %d", self.decoder.name, frame.index)
            return
        ms = (time.perf_counter() - t0) * 1000
        self.stats.decoded += 1
        for d in found:
            if d.corners:
                xs, ys = [p[0] for p in d.corners], [p[1] for p in d.corners]
                self._region = ((min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)), frame.time)
            if not self.debounce.is_new(d.text, frame.time):
                continue
            ev = ScanEvent(d.text, frame.index, frame.time, dt.datetime.now(dt.UTC), ms, d.step)
            self.stats.scans += 1
            try:
                self.events.put_nowait(ev)
            except queue.Full:  # nobody is reading the queue: keep the newest
                try:
                    self.events.get_nowait()
                except queue.Empty:
                    pass
                self.events.put_nowait(ev)
            if self.on_scan:
                try:
                    self.on_scan(ev)
                except Exception:
                    log.exception("on_scan callback failed")
