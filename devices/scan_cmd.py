"""Read QR codes from a folder, an image, a video file or a camera.

SRC is a folder (its images in name order), an image file, a video file, a camera
(`0`, `/dev/video0`), `picamera` (the Raspberry Pi camera module) or `synthetic`
(rendered phone frames). One line per decoded code; `--all` adds a line for each frame
with no code. With `--json` each line is an object: `source` (the file name for a folder
or an image, the frame index for video and cameras), `text` (null: no code), `ms`
(the time that frame held the decoder) and `step` (which decoder step read it).

`--mode live` is the scanner the gate runs: zxing-cpp on every frame, the cascade beside
it on sampled frames (its reads come a little later, `step` "cascade:..."), a video file
played at its own rate, codes that stay in one place marked `"background": true` (and left
out of the plain output). `--mode thorough` reads every frame with every step, as long as
it takes. Default: live for cameras and video files, thorough for folders and images.

A camera is read until Ctrl-C or --frames. Exit status 0 when the source was read,
2 when it could not be opened (or a single image could not be read).
"""
from __future__ import annotations

import argparse
import json
import sys
import time

DECODER_NAMES = ("cascade", "zxing", "zbar")  # kept in step with devices.camera.DECODERS (a test checks)
MODES = ("live", "thorough")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--source", required=True, metavar="SRC",
                        help="folder, image, video file, camera index or /dev/videoN, picamera, synthetic")
    parser.add_argument("--decoder", default="cascade", choices=DECODER_NAMES,
                        help="cascade (default): zxing-cpp plus a cascade where a code seems present; "
                             "zxing: zxing-cpp alone; zbar: pyzbar in a worker process")
    parser.add_argument("--mode", choices=MODES, default=None,
                        help="live: the gate's scanner (default for cameras and video files); "
                             "thorough: every step on every frame (default for folders and images)")
    parser.add_argument("--background-s", type=float, default=10.0, metavar="S",
                        help="live: a code in one place this long is background, not a person's (0: off)")
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    parser.add_argument("--all", action="store_true", help="also a line for each frame with no code")
    parser.add_argument("--frames", type=int, default=0, metavar="N", help="stop after N frames (0: all)")
    parser.add_argument("--isolate", action="store_true",
                        help="run the decoder in a worker process (zbar always is)")
    cam = parser.add_argument_group("camera settings (where the camera has them)")
    cam.add_argument("--width", type=int, default=640)
    cam.add_argument("--height", type=int, default=480)
    cam.add_argument("--fps", type=float, default=None)
    cam.add_argument("--exposure", type=float, default=None, help="manual exposure (driver units)")
    cam.add_argument("--focus", type=float, default=None, help="manual focus (driver units)")


def _line(source: str | int, text: str | None, ms: float, step: str, as_json: bool, error: str | None = None,
          background: bool = False) -> str:
    if as_json:
        obj: dict[str, object] = {"source": source, "text": text, "ms": round(ms, 2), "step": step or None}
        if error:
            obj["error"] = error
        if background:
            obj["background"] = True
        return json.dumps(obj, ensure_ascii=False)
    if error:
        return f"{source}\t!{error}"
    return f"{source}\t{text if text is not None else '-'}"


def run(args: argparse.Namespace) -> int:
    import logging

    import cv2

    from devices.camera import CameraSettings, ImageFilesSource, SourceError, open_source

    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)  # our own message says it better
    # a camera that is lost, stalled or back, and decoder worker restarts, on stderr
    logging.basicConfig(level=logging.WARNING, format="gate scan: %(message)s", stream=sys.stderr)
    if args.frames < 0 or not 0 <= args.background_s <= 86400:
        print("gate scan: --frames must be 0 or more, --background-s between 0 and 86400", file=sys.stderr)
        return 2
    settings = CameraSettings(args.width, args.height, args.fps, args.exposure, args.focus)
    try:
        source = open_source(args.source, settings, pace=None if args.mode == "thorough" else (args.fps or 0))
    except SourceError as e:
        print(f"gate scan: {e}", file=sys.stderr)
        return 2
    by_name = isinstance(source, ImageFilesSource)  # files are named, video and camera frames numbered
    mode = args.mode or ("thorough" if by_name else "live")
    try:
        unread = (_live if mode == "live" else _thorough)(args, source, by_name)
    finally:
        source.close()
    if unread and isinstance(source, ImageFilesSource) and len(source.files) == 1:
        print(f"gate scan: cannot read {source.files[0]} as an image", file=sys.stderr)
        return 2
    return 0


def _thorough(args: argparse.Namespace, source, by_name: bool) -> int:
    """Every frame through every step, as long as it takes. Returns the unreadable files."""
    from devices.camera import make_decoder

    # files: every step on every frame, so a result does not depend on the machine's load
    decoder = make_decoder(args.decoder, isolate=True if args.isolate else None, thorough=True)
    out = sys.stdout
    n = unread = 0
    try:
        for frame in source:
            label: str | int = frame.name if by_name else frame.index
            if frame.image is None:
                unread += 1
                print(_line(label, None, 0.0, "", args.json, frame.error), file=out, flush=True)
            else:
                t0 = time.perf_counter()
                found = decoder.decode(frame.image)
                ms = (time.perf_counter() - t0) * 1000
                for d in found:
                    print(_line(label, d.text, ms, d.step, args.json), file=out, flush=True)
                if not found and args.all:
                    print(_line(label, None, ms, "", args.json), file=out, flush=True)
            n += 1
            if args.frames and n >= args.frames:
                break
    finally:
        decoder.close()
    return unread


def _live(args: argparse.Namespace, source, by_name: bool) -> int:
    """The gate's scanner: frames in order, at the source's pace (a camera's, a video's own
    rate) or as fast as they come (files); the cascade's reads when they come."""
    import threading

    from devices.camera import LiveDecoder, Scanner, make_decoder
    from devices.camera.scanner import FrameResult

    decoder = LiveDecoder() if args.decoder == "cascade" else make_decoder(
        args.decoder, isolate=True if args.isolate else None)
    out = sys.stdout
    lock = threading.Lock()
    counts = {"frames": 0, "unread": 0}
    enough = threading.Event()

    def on_frame(r: FrameResult) -> None:
        label: str | int = r.name if by_name else r.index
        with lock:
            if enough.is_set():
                return
            if r.error:
                counts["unread"] += 1
                print(_line(label, None, 0.0, "", args.json, r.error), file=out, flush=True)
            shown = [(d, bg) for d, bg in r.codes if args.json or not bg]
            for d, bg in shown:
                print(_line(label, d.text, r.ms, d.step, args.json, background=bg), file=out, flush=True)
            if not shown and args.all and not r.late and not r.error:
                print(_line(label, None, r.ms, "", args.json), file=out, flush=True)
            if not r.late:
                counts["frames"] += 1
                if args.frames and counts["frames"] >= args.frames:
                    enough.set()

    scanner = Scanner(source, decoder, on_frame=on_frame, background_s=args.background_s)
    scanner.start()
    try:
        while not scanner.wait(0.1):
            if enough.is_set():
                break
        if isinstance(decoder, LiveDecoder):
            decoder.flush(30.0)   # the last frame offered to the cascade
    except KeyboardInterrupt:
        pass
    finally:
        scanner.stop()
        decoder.close()
    return counts["unread"]
