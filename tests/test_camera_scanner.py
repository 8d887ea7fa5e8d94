"""The scanner loop: its own threads, newest frame only, debounce, events, faults."""
from __future__ import annotations

import threading
import time

import numpy as np

from devices.camera.decoders import Decoded, make_decoder
from devices.camera.scanner import Debouncer, Scanner
from devices.camera.sources import CameraSource, Frame, SourceStatus, SyntheticSource

A, B = "HC1:" + "A1" * 80, "HC1:" + "B2" * 80


def test_debounce_one_scan_per_presentation():
    d = Debouncer(hold_s=3.0)
    assert d.is_new(A, 0.0)
    assert not d.is_new(A, 1.0) and not d.is_new(A, 3.5) and not d.is_new(A, 6.0)  # held up: one scan
    assert d.is_new(B, 6.1)
    assert d.is_new(A, 9.5)  # taken away for more than 3 s, shown again: a new scan


def test_file_frames_all_decoded_held_code_is_one_event():
    src = SyntheticSource([A, B], ("clean", "jpeg", "noise"), hold=4, gap=2, repeat=1, size=(640, 480))
    events = []
    sc = Scanner(src, make_decoder("cascade"), debounce_s=5.0, on_scan=events.append)
    sc.start()
    assert sc.wait(60)
    assert [e.text for e in events] == [A, B]
    assert events[0].frame_index == 0 and events[1].frame_index == 4
    assert all(e.latency_ms > 0 and e.frame_time > 0 and e.at.tzinfo is not None for e in events)
    assert sc.stats.frames == sc.stats.decoded == 10 and sc.stats.dropped == 0
    assert sc.events.qsize() == 2


class FastCamera:
    """A live source that has a new frame every 2 ms, numbered."""
    live = True
    name = "fast"

    def __init__(self, n: int) -> None:
        self.n, self.i, self.status = n, 0, SourceStatus.OK

    def read(self):
        if self.i >= self.n:
            self.status = SourceStatus.ENDED
            return None
        time.sleep(0.002)
        self.i += 1
        return Frame(np.zeros((8, 8), np.uint8), self.i - 1, time.monotonic(), str(self.i - 1))

    def close(self):
        pass


class SlowDecoder:
    """Takes 30 ms a frame and remembers which frames it saw."""
    name = "slow"

    def __init__(self) -> None:
        self.seen: list[int] = []

    def decode(self, image):
        time.sleep(0.03)
        self.seen.append(int(image[0, 0]))
        return []

    def close(self):
        pass


def test_live_frames_are_dropped_never_queued():
    class Numbered(FastCamera):
        def read(self):
            f = super().read()
            if f is not None:
                f.image[0, 0] = f.index % 256
            return f

    dec = SlowDecoder()
    sc = Scanner(Numbered(200), dec)
    sc.start()
    assert sc.wait(30)
    s = sc.stats
    assert s.frames == 200
    assert s.dropped > 50                        # the decoder could not keep up...
    assert s.decoded + s.dropped == s.frames     # ...and each frame was decoded or dropped, none waits
    assert dec.seen == sorted(dec.seen)          # always the newest, in order


def test_a_decoder_error_does_not_stop_the_loop():
    class Flaky:
        name = "flaky"
        calls = 0

        def decode(self, image):
            Flaky.calls += 1
            if Flaky.calls == 2:
                raise ValueError("bad frame")
            return [Decoded(A, "test")]

        def close(self):
            pass

    src = SyntheticSource([A], ("clean",), hold=4, gap=0, size=(160, 120))
    sc = Scanner(src, Flaky(), debounce_s=0.0)
    sc.start()
    assert sc.wait(30)
    assert sc.stats.errors == 1 and sc.stats.decoded == 3 and sc.stats.scans >= 1


def test_camera_lost_and_back_is_seen_by_the_scanner():
    from conftest import FakeCapture, FakeDevice

    dev = FakeDevice()
    cam = CameraSource(0, capture_factory=lambda d, api: FakeCapture(dev, d, api),
                       backoff_s=0.02, backoff_max_s=0.1, stall_s=0.2, stall_reads=3)
    statuses: list[SourceStatus] = []
    sc = Scanner(cam, make_decoder("zxing"), on_status=statuses.append)
    sc.start()
    try:
        wait_for(lambda: sc.stats.decoded >= 3)
        dev.present = False
        wait_for(lambda: sc.status == SourceStatus.LOST)
        seen = sc.stats.frames
        time.sleep(0.3)
        assert sc.stats.frames == seen  # no frames while it is gone
        dev.present = True
        wait_for(lambda: sc.status == SourceStatus.OK and sc.stats.frames > seen)
    finally:
        sc.stop()
    assert statuses[:3] == [SourceStatus.OK, SourceStatus.STALLED, SourceStatus.LOST]
    assert statuses[-1] == SourceStatus.OK and cam.reopens >= 2


def wait_for(cond, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_stop_ends_both_threads():
    sc = Scanner(SyntheticSource([A], ("clean",), repeat=0, fps=30, size=(160, 120)), make_decoder("zxing"))
    sc.start()
    wait_for(lambda: sc.stats.decoded >= 2)  # a camera-paced source that never ends
    sc.stop()
    assert not any(t.is_alive() for t in threading.enumerate() if t.name.startswith("scanner-"))
