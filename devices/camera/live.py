"""The live decoder: zxing-cpp on every frame at once, the cascade beside it.

A gate's camera mostly sees no code, often a busy scene (notices, a queue, patterned
clothes), and a code that zxing-cpp can read must be read on the first frame that shows
it. So `LiveDecoder.decode_frame` runs only zxing-cpp (about 1 ms) and returns; where
zxing-cpp placed a symbol it could not read (a likely code), the fast path first spends a
few ms on cheap retries of that region (`decoders.PlacedRetry`: binarised, half size,
sharpened), which read most blurred, shaken and glared phones on the frame that first shows
them. When the frame gave no person's code it is offered to the cascade, which runs in a
worker process on a sampled frame:
- **sampled**: the worker takes the newest frame offered when it is free; a frame where
  zxing-cpp placed a symbol it could not read (a likely code) goes at once, others at most
  every `sample_s`;
- **capped**: a token bucket holds the worker to `cpu_share` of one core on average (its
  own CPU time, as the worker measures it); a likely code may spend the bucket's
  reserve, other frames wait until it is full again; the worker also runs at a slightly
  lower priority (nice 2) than the scanner;
- **abandoned**: a likely code offered while the worker is busy with an ordinary frame
  stops that frame's cascade between two steps;
- **delivered**: a read is handed to `on_late` as soon as the worker makes it (from the
  feeder thread), or returned by the next `decode_frame` when there is no `on_late`.
A worker that dies is restarted; its frame is lost, the fast path never is.
"""
from __future__ import annotations

import logging
import multiprocessing as mp
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

import numpy as np

from devices.camera.decoded import Box, Decoded
from devices.camera.decoders import CascadeDecoder, PlacedRetry, ZxingDecoder, corners_of, to_gray

log = logging.getLogger("gate.camera")

Corners = tuple[tuple[int, int], ...]


def worker_cascade(budget_ms: float, clock: Callable[[], float] = time.process_time) -> CascadeDecoder:
    """The cascade as the live worker runs it (the bench's CPU model makes the same one):
    - its budget is `budget_ms` of the worker's own CPU time, so a machine loaded by other
      work does not cut a likely frame's cascade short (with a wall-clock budget, round two's
      bench under a load of 8-25 read 3 of 5 shaken phones, of which the cascade alone reads
      3 on their first frame in 13-44 ms of CPU and zxing-cpp a fourth);
    - the soft reader on a symbol zxing-cpp placed comes after the two cheapest candidates,
      not after all of them: the fast path's retries tried the cheap versions already;
    - a region whose gradients all run one way (a shaken phone) tries the motion kernels
      first (`enhance.shake`);
    - a code-like patch the cascade just failed on gets two more frames before it is taken
      for a poster and tried on one frame in six: a phone held still looks like the same
      patch, and the next frame's fresh shake or glare often reads."""
    return CascadeDecoder(budget_ms=budget_ms, retry_every=6, clock=clock, placed_first=True,
                          shaken_first=True, stale_grace=2)


def _cascade_worker(conn: Connection, abort: Any, budget_ms: float) -> None:
    """The worker process: one frame at a time, answering (index, reads, cpu ms, wall ms, abandoned)."""
    try:
        os.nice(2)   # the scanner's fast path comes first when the cores are all busy
    except OSError:
        pass
    cascade = worker_cascade(budget_ms)
    conn.send("ready")
    while True:
        try:
            msg = conn.recv()
        except EOFError:
            return
        if msg is None:
            return
        index, shape, dtype, buf, region, paint = msg
        img = np.frombuffer(buf, dtype=dtype).reshape(shape)
        c0, t0 = time.process_time(), time.perf_counter()
        try:
            out = [(d.text, d.step, d.corners) for d in cascade.decode(img, region, paint=paint, stop=abort.is_set)]
        except Exception:   # a Python error on one frame is logged, the worker goes on
            log.exception("cascade failed on frame %s", index)
            out = []
        try:
            conn.send((index, out, (time.process_time() - c0) * 1000, (time.perf_counter() - t0) * 1000,
                       abort.is_set()))
        except (BrokenPipeError, OSError):
            return   # the scanner closed while this frame was in the cascade


@dataclass
class LiveStats:
    frames: int = 0            # frames through the fast path
    fast_reads: int = 0        # codes zxing-cpp read on the fast path (retries included)
    retried: int = 0           # frames the fast path retried (zxing placed a symbol it could not read)
    retry_reads: int = 0       # frames a retry read
    retry_skipped: int = 0     # frames not retried: the same unread symbol, in the same place, just failed
    offered: int = 0           # frames offered to the cascade
    cascaded: int = 0          # frames the cascade worker took
    abandoned: int = 0         # cascades stopped for a likelier frame
    abandon_ms: float = 0.0    # the longest wait from asking a cascade to stop to the worker being free
    late_reads: int = 0        # codes the cascade read
    cascade_cpu_ms: float = 0.0   # the worker's CPU time on frames
    crashes: int = 0


@dataclass
class _Offer:
    index: int
    image: np.ndarray
    region: Box | None
    paint: tuple[Corners, ...]
    likely: bool
    at: float


class LiveDecoder:
    """zxing-cpp on the caller's thread; the cascade in a capped worker process."""
    name = "live"

    def __init__(self, *, cpu_share: float = 0.5, sample_s: float = 0.1, budget_ms: float = 250.0,
                 bucket_ms: float = 500.0, reserve_ms: float = 250.0,
                 on_late: Callable[[list[Decoded]], None] | None = None,
                 background: Callable[[Decoded], bool] | None = None, start_timeout_s: float = 60.0,
                 retries: bool = True) -> None:
        if not 0 < cpu_share <= 1:
            raise ValueError(f"cpu_share must be in (0, 1], not {cpu_share}")
        self.fast = ZxingDecoder()
        self.retry = PlacedRetry(self.fast) if retries else None
        self.cpu_share, self.sample_s, self.budget_ms = cpu_share, sample_s, budget_ms
        self.bucket_ms, self.reserve_ms = bucket_ms, min(reserve_ms, bucket_ms)
        self.on_late = on_late
        self.background = background     # the scanner's: a code known to stay in one place
        self.start_timeout_s = start_timeout_s
        self.stats = LiveStats()
        self._ctx = mp.get_context("spawn")   # fork is unsafe with the scanner's threads
        self._abort = self._ctx.Event()
        self._proc: Any = None
        self._conn: Connection | None = None
        self._cv = threading.Condition()
        self._offer: _Offer | None = None
        self._current: _Offer | None = None
        self._late: list[Decoded] = []
        self.costs: dict[int, tuple[float, float]] = {}   # frame index: the cascade's CPU ms, wall ms (recent)
        self._tokens = bucket_ms
        self._refilled = time.monotonic()
        self._last_sample = 0.0
        self._abort_at: float | None = None
        self._closed = False
        self._ready = threading.Event()
        self.running = False     # the cascade worker is up
        self._feeder = threading.Thread(target=self._feed, name="live-cascade-feeder", daemon=True)
        self._feeder.start()

    # -- the fast path -------------------------------------------------------------------

    def decode(self, image: np.ndarray) -> list[Decoded]:
        return self.decode_frame(image)

    def decode_frame(self, image: np.ndarray, index: int | None = None, region: Box | None = None) -> list[Decoded]:
        """Codes zxing-cpp reads in this frame, and any the cascade read since the last call
        (when there is no `on_late`). Offers the frame to the cascade when it gave no
        person's code."""
        gray = to_gray(image)
        found = self.fast.read(gray, errors=True)
        good = [Decoded(b.text, "zxing", corners_of(b.position), index) for b in found if b.valid]
        self.stats.frames += 1
        people = [d for d in good if self.background is None or not self.background(d)]
        likely = any(not b.valid for b in found)
        if not people and likely and self.retry is not None:
            tried, skipped = self.retry.tried, self.retry.skipped
            more = [Decoded(d.text, d.step, d.corners, index) for d in self.retry(gray, found)
                    if not any(d.text == g.text for g in good)]
            self.stats.retried += self.retry.tried - tried
            self.stats.retry_skipped += self.retry.skipped - skipped
            self.stats.retry_reads += bool(more)
            good += more
            people = [d for d in good if self.background is None or not self.background(d)]
        self.stats.fast_reads += len(good)
        if not people:
            offer = _Offer(self.stats.frames - 1 if index is None else index, image, region,
                           tuple(d.corners for d in good if d.corners), likely, time.monotonic())
            with self._cv:
                self._offer = offer
                self.stats.offered += 1
                self._cv.notify_all()
        if self.on_late is None and self._late:
            with self._cv:
                good, self._late = good + self._late, []
        return good

    # -- the cascade worker --------------------------------------------------------------

    def _start(self) -> bool:
        try:
            parent, child = self._ctx.Pipe()
            proc = self._ctx.Process(target=_cascade_worker, args=(child, self._abort, self.budget_ms),
                                     daemon=True, name="live-cascade")
            proc.start()
            child.close()
            started = parent.poll(self.start_timeout_s) and parent.recv() == "ready"
        except (OSError, RuntimeError, EOFError) as e:
            log.error("live cascade worker: %s", e)
            proc, started = None, False
        if not started:
            if proc is not None:
                proc.kill()
            log.error("live cascade worker did not start; zxing-cpp alone reads frames")
            self._ready.set()
            return False
        self._proc, self._conn = proc, parent
        self.running = True
        self._ready.set()
        return True

    def _refill(self, now: float) -> None:
        self._tokens = min(self.bucket_ms, self._tokens + (now - self._refilled) * 1000 * self.cpu_share)
        self._refilled = now

    def _may_send(self, offer: _Offer, now: float) -> bool:
        self._refill(now)
        if offer.likely:
            return self._tokens > 0
        return self._tokens >= self.reserve_ms and now - self._last_sample >= self.sample_s

    def _feed(self) -> None:
        if not self._start():
            return
        while True:
            with self._cv:
                if self._closed:
                    return
                current, offer = self._current, self._offer
                busy = current is not None
                if current is not None:
                    if offer is not None and offer.likely and not current.likely and not self._abort.is_set():
                        self._abort.set()   # a likelier frame: stop the ordinary one
                        self._abort_at = time.monotonic()
                elif offer is not None and self._may_send(offer, time.monotonic()):
                    self._current, self._offer = offer, None
                    self._last_sample = time.monotonic()
                else:
                    self._cv.wait(0.01)
                    continue
            if busy:
                self._collect()
            else:
                self._send(self._current)

    def _send(self, offer: _Offer | None) -> None:
        assert offer is not None and self._conn is not None
        img = np.ascontiguousarray(offer.image)
        self._abort.clear()
        try:
            self._conn.send((offer.index, img.shape, img.dtype.str, img.tobytes(), offer.region, offer.paint))
            self.stats.cascaded += 1
        except (BrokenPipeError, EOFError, OSError):
            self._died()

    def _collect(self) -> None:
        assert self._conn is not None
        try:
            if not self._conn.poll(0.005):
                if not self._proc.is_alive():
                    self._died()
                return
            index, out, cpu_ms, wall_ms, abandoned = self._conn.recv()
        except (EOFError, OSError):
            self._died()
            return
        reads = [Decoded(t, "cascade:" + s, tuple(tuple(p) for p in c), index) for t, s, c in out]
        with self._cv:
            self._current = None
            self._refill(time.monotonic())
            self._tokens -= cpu_ms
            self.stats.cascade_cpu_ms += cpu_ms
            self.costs[index] = (cpu_ms, wall_ms)
            if len(self.costs) > 256:
                del self.costs[next(iter(self.costs))]
            self.stats.abandoned += bool(abandoned)
            if abandoned and self._abort_at is not None:
                self.stats.abandon_ms = max(self.stats.abandon_ms, (time.monotonic() - self._abort_at) * 1000)
            self._abort_at = None
            self.stats.late_reads += len(reads)
            if reads and self.on_late is None:
                self._late += reads
            self._cv.notify_all()
        if reads and self.on_late is not None:
            try:
                self.on_late(reads)
            except Exception:
                log.exception("on_late callback failed")

    def _died(self) -> None:
        self.stats.crashes += 1
        code = self._proc.exitcode if self._proc is not None else None
        log.warning("live cascade worker died (exit code %s) on frame %s; restarting", code,
                    self._current.index if self._current else "-")
        self._stop_worker()
        self.running = False
        with self._cv:
            self._current = None
            if self._closed:
                return
        self._start()

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def wait_ready(self, timeout: float | None = None) -> bool:
        """Block until the worker has started (the fast path works before that); False
        when it could not start."""
        return self._ready.wait(timeout) and self.running

    def idle(self) -> bool:
        with self._cv:
            return self._current is None and self._offer is None

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until the frame offered last has been through the cascade (end of a file)."""
        deadline = time.monotonic() + timeout
        if not self._ready.wait(timeout) or not self.running:
            return True   # no worker: nothing will come
        with self._cv:
            if self._offer is not None:
                self._offer.likely = True   # sent whatever the sampling interval
            while (self._current is not None or self._offer is not None) and time.monotonic() < deadline:
                self._cv.wait(0.01)
                self._refill(time.monotonic())
                if self._offer is not None and self._tokens <= 0:
                    self._tokens = 1.0   # the last frame of a file is worth the wait
            return self._current is None and self._offer is None

    def _stop_worker(self) -> None:
        conn, proc = self._conn, self._proc
        self._conn = self._proc = None
        if conn is not None:
            try:
                conn.send(None)
            except (BrokenPipeError, OSError):
                pass
            conn.close()
        if proc is not None:
            proc.join(0.5)
            if proc.is_alive():
                proc.kill()
                proc.join(1)

    def close(self) -> None:
        with self._cv:
            self._closed = True
            self._abort.set()
            self._cv.notify_all()
        self._feeder.join(5)
        self._stop_worker()

    def __enter__(self) -> LiveDecoder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

