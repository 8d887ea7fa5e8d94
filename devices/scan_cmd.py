"""Read QR codes from a folder, an image, a video file or a camera.

SRC is a folder (its images in name order), an image file, a video file, a camera
(`0`, `/dev/video0`), `picamera` (the Raspberry Pi camera module) or `synthetic`
(rendered phone frames). One line per decoded code; `--all` adds a line for each frame
with no code. With `--json` each line is an object: `source` (the file name for a folder
or an image, the frame index for video and cameras), `text` (null: no code), `ms`
(decode time) and `step` (which decoder step read it).

A camera is read until Ctrl-C or --frames. Exit status 0 when the source was read,
2 when it could not be opened or not one of its images could be read.
"""
from __future__ import annotations

import argparse
import json
import sys
import time

DECODER_NAMES = ("cascade", "zxing", "zbar")  # kept in step with devices.camera.DECODERS (a test checks)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--source", required=True, metavar="SRC",
                        help="folder, image, video file, camera index or /dev/videoN, picamera, synthetic")
    parser.add_argument("--decoder", default="cascade", choices=DECODER_NAMES,
                        help="cascade (default): zxing-cpp plus a cascade where a code seems present; "
                             "zxing: zxing-cpp alone; zbar: pyzbar in a worker process")
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


def _line(source: str | int, text: str | None, ms: float, step: str, as_json: bool, error: str | None = None) -> str:
    if as_json:
        obj = {"source": source, "text": text, "ms": round(ms, 2), "step": step or None}
        if error:
            obj["error"] = error
        return json.dumps(obj, ensure_ascii=False)
    if error:
        return f"{source}\t!{error}"
    return f"{source}\t{text if text is not None else '-'}"


def run(args: argparse.Namespace) -> int:
    import cv2

    from devices.camera import CameraSettings, ImageFilesSource, SourceError, make_decoder, open_source

    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)  # our own message says it better
    settings = CameraSettings(args.width, args.height, args.fps, args.exposure, args.focus)
    try:
        source = open_source(args.source, settings)
    except SourceError as e:
        print(f"gate scan: {e}", file=sys.stderr)
        return 2
    # files: every step on every frame, so a result does not depend on the machine's load
    decoder = make_decoder(args.decoder, isolate=True if args.isolate else None,
                           thorough=not getattr(source, "live", True))
    by_name = isinstance(source, ImageFilesSource)  # files are named, video and camera frames numbered
    out = sys.stdout
    n = unreadable = 0
    try:
        for frame in source:
            label: str | int = frame.name if by_name else frame.index
            if frame.image is None:
                unreadable += 1
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
        source.close()
        decoder.close()
    if by_name and n and unreadable == n:  # not one of the files was an image: nothing was read
        print(f"gate scan: {args.source}: no readable image", file=sys.stderr)
        return 2
    return 0
