"""Frame sources: a camera that fails and comes back (a fake capture device), files, folders."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from devices.camera import synthetic
from devices.camera.sources import (
    CameraSettings,
    CameraSource,
    ImageFilesSource,
    SourceError,
    SourceStatus,
    SyntheticSource,
    VideoFileSource,
    open_source,
)

from conftest import Clock, FakeCapture, FakeDevice


def camera(dev: FakeDevice, clock: Clock, **kw) -> CameraSource:
    return CameraSource("/dev/video0", CameraSettings(1280, 720, 30, exposure=150, focus=10),
                        capture_factory=lambda d, api: FakeCapture(dev, d, api), clock=clock,
                        backoff_s=0.5, backoff_max_s=4.0, stall_s=2.0, stall_reads=3, **kw)


def test_camera_settings_are_applied_where_the_camera_has_them():
    dev, clock = FakeDevice(), Clock()
    cam = camera(dev, clock)
    f = cam.read()
    assert f is not None and f.image.shape == (48, 64, 3) and cam.status == SourceStatus.OK
    assert dev.props[cv2.CAP_PROP_FRAME_WIDTH] == 1280 and dev.props[cv2.CAP_PROP_FRAME_HEIGHT] == 720
    assert dev.props[cv2.CAP_PROP_FPS] == 30 and dev.props[cv2.CAP_PROP_EXPOSURE] == 150
    assert dev.props[cv2.CAP_PROP_BUFFERSIZE] == 1
    assert cv2.CAP_PROP_FOCUS not in dev.props  # refused, and the camera still works


def test_camera_unplugged_is_lost_then_reopened_with_capped_backoff(caplog):
    caplog.set_level("WARNING", logger="devices.camera.sources")
    dev, clock = FakeDevice(), Clock()
    cam = camera(dev, clock)
    assert [cam.read() is not None for _ in range(3)] == [True, True, True]
    dev.present = False  # unplugged
    for _ in range(3):
        assert cam.read() is None
    assert cam.status == SourceStatus.STALLED
    assert cam.retry_in == pytest.approx(0.5)
    # reopen attempts fail; each waits twice as long, up to the cap
    waits = []
    for _ in range(6):
        assert cam.read() is None          # too early: no attempt
        opens = dev.opens
        clock.t += cam.retry_in
        assert cam.read() is None          # attempt, fails
        assert dev.opens == opens + 1 and cam.status == SourceStatus.LOST
        waits.append(cam.retry_in)
    assert waits == [1.0, 2.0, 4.0, 4.0, 4.0, 4.0]
    dev.present = True  # plugged back in
    clock.t += cam.retry_in
    f = cam.read()
    assert f is not None and cam.status == SourceStatus.OK
    assert cam.reopens == 7
    logged = [r.getMessage() for r in caplog.records]
    assert logged == ["camera /dev/video0 stalled: no frames", "camera /dev/video0 reopened"]  # no spam
    # and the back-off starts small again next time
    dev.giving = False
    for _ in range(3):
        cam.read()
    assert cam.status == SourceStatus.STALLED and cam.retry_in == pytest.approx(0.5)


def test_camera_that_stops_giving_frames_is_stalled_by_time():
    dev, clock = FakeDevice(), Clock()
    cam = CameraSource(0, capture_factory=lambda d, api: FakeCapture(dev, d, api), clock=clock,
                       stall_s=2.0, stall_reads=1000)
    assert cam.read() is not None
    dev.giving = False
    clock.t += 1.0
    assert cam.read() is None and cam.status == SourceStatus.OK  # a hiccup, not yet stalled
    clock.t += 1.5
    assert cam.read() is None and cam.status == SourceStatus.STALLED


def test_camera_driver_that_raises_is_lost_not_fatal():
    clock = Clock()

    def broken(device, api):
        raise RuntimeError("VIDIOC_STREAMON: No such device")

    cam = CameraSource(0, capture_factory=broken, clock=clock)
    assert cam.open() is False
    assert cam.status == SourceStatus.LOST and "No such device" in cam.last_error


def test_open_source_names_what_is_wrong(tmp_path):
    with pytest.raises(SourceError, match="no such source"):
        open_source(str(tmp_path / "missing.avi"))
    with pytest.raises(SourceError, match="cannot open camera"):
        open_source("/dev/video63")
    bad = tmp_path / "clip.avi"
    bad.write_bytes(b"not a video at all")
    with pytest.raises(SourceError, match="as a video"):
        open_source(str(bad))


def test_folder_source_in_name_order_with_unreadable_files_reported(tmp_path):
    texts = []
    for i, name in enumerate(["b.png", "a.jpg", "c.JPG"]):
        text = synthetic.payload(np.random.default_rng(i))
        texts.append((name, text))
        cv2.imwrite(str(tmp_path / name), synthetic.render(text, "clean", i))
    (tmp_path / "d.png").write_bytes(b"\x89PNG broken")
    (tmp_path / "notes.txt").write_text("not an image")
    src = open_source(str(tmp_path))
    assert isinstance(src, ImageFilesSource)
    frames = list(src)
    assert [f.name for f in frames] == ["a.jpg", "b.png", "c.JPG", "d.png"]
    assert frames[3].image is None and frames[3].error == "unreadable image"
    assert all(f.image is not None for f in frames[:3])
    assert src.status == SourceStatus.ENDED
    one = list(open_source(str(tmp_path / "b.png")))
    assert [f.name for f in one] == ["b.png"]


def write_video(path, frames, fps=10.0):
    h, w = frames[0].shape[:2]
    out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (w, h))
    assert out.isOpened()
    for f in frames:
        out.write(f)
    out.release()


def test_video_source_gives_every_frame_in_order(tmp_path):
    frames = [np.full((120, 160, 3), 20 * i, np.uint8) for i in range(6)]
    path = tmp_path / "clip.avi"
    write_video(path, frames)
    src = open_source(str(path))
    assert isinstance(src, VideoFileSource)
    got = list(src)
    assert [f.index for f in got] == list(range(6))
    assert [int(f.image.mean() / 20 + 0.5) for f in got] == list(range(6))
    assert src.status == SourceStatus.ENDED


def test_synthetic_source_shows_each_text_then_nothing():
    src = SyntheticSource(["HC1:" + "A" * 150, "HC1:" + "B" * 150], ("clean", "blur"), hold=2, gap=1, size=(320, 240))
    frames = list(src)
    assert [f.truth for f in frames] == ["HC1:" + "A" * 150] * 2 + ["HC1:" + "B" * 150] * 2 + [None]
    assert frames[0].image.shape == (240, 320, 3)
