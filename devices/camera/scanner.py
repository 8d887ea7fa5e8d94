"""The scanner: a camera loop in its own threads that turns frames into scan events.

One thread grabs frames and keeps only the newest (a live camera's old frames are
worthless: a person waiting at the gate wants the code read now); another decodes
whatever is newest when it is free. Frames the decoder had no time for are dropped and
counted, never queued. The default decoder is the live one (live.py): zxing-cpp on every
frame, the cascade in a capped worker beside it, whose reads arrive a little later. A
code held up for several seconds is one scan: a text is reported again only after it has
been out of sight for `debounce_s`. A code that stays in one place for `background_s`
(a poster, a code on the guard's desk) is background: never a scan again.
"""
from __future__ import annotations

import datetime as dt
import logging
import queue
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from devices.camera.decoded import Box, Decoded, Decoder
from devices.camera.live import LiveDecoder
from devices.camera.sources import Frame, FrameSource, SourceStatus

log = logging.getLogger("gate.camera")


@dataclass(frozen=True)
class ScanEvent:
    """One code read: what, from which frame, when, and how long decoding took."""
    text: str
    frame_index: int
    frame_time: float       # time.monotonic() when the frame was captured
    at: dt.datetime         # wall clock (UTC) when the scan was reported
    latency_ms: float       # fast path: that frame's decode time; cascade: from the frame's capture to the read
    step: str = ""          # which decoder step read it ("cascade:..." for the live cascade)


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
class _Place:
    box: Box
    since: float
    last: float


def _same_place(a: Box, b: Box) -> bool:
    """Two boxes of one code that has not moved: centres within a quarter of its size,
    sizes within a quarter of each other (a hand-held phone drifts more than that)."""
    size = max(a[2], a[3], b[2], b[3], 1)
    dx = (a[0] + a[2] / 2) - (b[0] + b[2] / 2)
    dy = (a[1] + a[3] / 2) - (b[1] + b[3] / 2)
    grow = max(a[2], a[3], 1) / max(b[2], b[3], 1)
    return (dx * dx + dy * dy) ** 0.5 <= 0.25 * size and 0.75 <= grow <= 1.33


class BackgroundCodes:
    """Codes that stay in one place: a venue-code poster on the wall, a code on the guard's
    desk. A text seen at the same place (see `_same_place`) for `after_s` without a gap of
    more than `gap_s` is background from then on, even after being hidden for a while
    (a person standing in front of the poster), until it has not been seen there for
    `forget_s`. The same text elsewhere, or another code in front, is not."""

    def __init__(self, after_s: float = 10.0, gap_s: float = 2.0, forget_s: float = 600.0) -> None:
        self.after_s, self.gap_s, self.forget_s = after_s, gap_s, forget_s
        self._places: dict[str, list[_Place]] = {}

    def _match(self, text: str, box: Box) -> _Place | None:
        return next((p for p in self._places.get(text, ()) if _same_place(p.box, box)), None)

    def _settled(self, p: _Place) -> bool:
        return p.last - p.since >= self.after_s

    def see(self, d: Decoded, now: float) -> bool:
        """Record a sighting; True when the code is background."""
        box = d.box
        if box is None or self.after_s <= 0:
            return False
        p = self._match(d.text, box)
        if p is not None and now - p.last > (self.forget_s if self._settled(p) else self.gap_s):
            self._places[d.text].remove(p)
            p = None
        if p is None:
            p = _Place(box, now, now)
            self._places.setdefault(d.text, []).append(p)
        p.box, p.last = box, now
        if len(self._places) > 64:   # a gate runs for months: forget what is long gone
            self._places = {t: ps for t, ps in self._places.items()
                            if any(now - p.last <= self.forget_s for p in ps)}
        return self._settled(p)

    def known(self, d: Decoded) -> bool:
        """Whether this code is background already (without recording a sighting)."""
        box = d.box
        p = None if box is None else self._match(d.text, box)
        return p is not None and self._settled(p)

    def places(self) -> list[tuple[str, Box]]:
        return [(t, p.box) for t, ps in self._places.items() for p in ps if self._settled(p)]


@dataclass(frozen=True)
class FrameResult:
    """What one frame gave (for `gate scan` and logs): each code with whether it is background."""
    index: int
    name: str
    codes: list[tuple[Decoded, bool]] = field(default_factory=list)
    ms: float = 0.0          # the time this frame held the decoder (live cascade: the cascade's)
    late: bool = False       # a live cascade read, reported after later frames
    error: str | None = None  # a file that could not be read


@dataclass
class ScannerStats:
    frames: int = 0          # frames grabbed
    decoded: int = 0         # frames decoded (the rest were dropped)
    dropped: int = 0         # frames replaced by a newer one before the decoder got to them
    scans: int = 0
    background: int = 0      # sightings of background codes (not scans)
    errors: int = 0          # decoder exceptions (the loop carries on)


class Scanner:
    """Grab from `source`, decode with `decoder` (default: a `LiveDecoder`, closed with the
    scanner), report new codes to `on_scan` and `events`; `on_frame` sees every frame's
    codes, background ones included. `background_s` <= 0 turns background codes off."""

    def __init__(self, source: FrameSource, decoder: Decoder | None = None, *, debounce_s: float = 3.0,
                 on_scan: Callable[[ScanEvent], None] | None = None,
                 on_status: Callable[[SourceStatus], None] | None = None, region_hold_s: float = 1.0,
                 background_s: float = 10.0, on_frame: Callable[[FrameResult], None] | None = None) -> None:
        self._owns_decoder = decoder is None
        self.source = source
        self.decoder: Decoder = decoder if decoder is not None else LiveDecoder()
        self.debounce = Debouncer(debounce_s)
        self.background = BackgroundCodes(background_s)
        self.on_scan, self.on_status, self.on_frame = on_scan, on_status, on_frame
        if isinstance(self.decoder, LiveDecoder):
            self.decoder.on_late = self._late
            self.decoder.background = self._known_background
        self._report_lock = threading.Lock()
        self._frame_times: OrderedDict[int, tuple[float, str]] = OrderedDict()   # index: capture time, name
        self.events: queue.Queue[ScanEvent] = queue.Queue(maxsize=100)
        self.stats = ScannerStats()
        self.region_hold_s = region_hold_s
        self._latest: Frame | None = None
        self._cv = threading.Condition()
        self._stop = threading.Event()
        self._source_done = False
        self._threads: list[threading.Thread] = []
        self._region: tuple[Box, float] | None = None
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
        if self._owns_decoder:
            self.decoder.close()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until a finite source is used up and its last frame decoded (with the live
        decoder, through the cascade too)."""
        for t in self._threads:
            t.join(timeout)
        done = not any(t.is_alive() for t in self._threads)
        if done and isinstance(self.decoder, LiveDecoder):
            self.decoder.flush(timeout if timeout is not None else 30.0)
        return done

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
            elif self.on_frame:
                self.on_frame(FrameResult(frame.index, frame.name, error=frame.error or "no image"))

    def _decode(self, frame: Frame) -> None:
        assert frame.image is not None
        region = None
        if self._region and frame.time - self._region[1] <= self.region_hold_s:
            region = self._region[0]
        with self._report_lock:
            self._frame_times[frame.index] = (frame.time, frame.name)
            while len(self._frame_times) > 512:
                self._frame_times.popitem(last=False)
        t0 = time.perf_counter()
        try:
            if isinstance(self.decoder, LiveDecoder):
                found = self.decoder.decode_frame(frame.image, frame.index, region)
            elif region is not None and getattr(self.decoder, "uses_region", False):
                # where the code was a moment ago: the cascade looks there even when the
                # frame's own cues are too blurred (several frames combine this way)
                found = self.decoder.decode(frame.image, region=region)  # type: ignore[call-arg]
            else:
                found = self.decoder.decode(frame.image)
        except Exception:
            self.stats.errors += 1
            log.exception("decoder %s failed on frame %d", self.decoder.name, frame.index)
            return
        ms = (time.perf_counter() - t0) * 1000
        self.stats.decoded += 1
        self._report(found, frame.index, frame.name, frame.time, ms, late=False)

    def _known_background(self, d: Decoded) -> bool:
        with self._report_lock:   # the cascade's reads update the places from another thread
            return self.background.known(d)

    def _late(self, found: list[Decoded]) -> None:
        """Reads from the live cascade, on its feeder thread, as soon as they are made."""
        index = found[0].frame if found[0].frame is not None else -1
        with self._report_lock:
            frame_time, name = self._frame_times.get(index, (time.monotonic(), str(index)))
        self._report(found, index, name, frame_time, (time.monotonic() - frame_time) * 1000, late=True)

    def _report(self, found: list[Decoded], index: int, name: str, frame_time: float, ms: float, *,
                late: bool) -> None:
        with self._report_lock:
            codes = []
            for d in found:
                background = self.background.see(d, frame_time)
                codes.append((d, background))
                if background:
                    self.stats.background += 1
                    continue
                if d.box is not None:
                    self._region = (d.box, frame_time)
                if not self.debounce.is_new(d.text, frame_time):
                    continue
                ev = ScanEvent(d.text, index, frame_time, dt.datetime.now(dt.UTC), ms, d.step)
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
            if self.on_frame:
                try:
                    self.on_frame(FrameResult(index, name, codes, ms, late))
                except Exception:
                    log.exception("on_frame callback failed")
