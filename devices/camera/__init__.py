"""Camera and QR decoding: frame sources, decoders, the scanner loop.

    from devices.camera import open_source, Scanner
    with Scanner(open_source("/dev/video0"), on_scan=print):   # the live decoder
        ...

See docs/camera.md. Heavy imports (OpenCV, zxing-cpp) happen when this package is imported,
so only code that needs the camera imports it.
"""
from devices.camera.decoders import DECODERS, DEFAULT_DECODER, CascadeDecoder, Decoded, Decoder, make_decoder
from devices.camera.live import LiveDecoder
from devices.camera.scanner import BackgroundCodes, Debouncer, FrameResult, ScanEvent, Scanner
from devices.camera.sources import (
                                    CameraSettings,
                                    CameraSource,
                                    Frame,
                                    FrameSource,
                                    ImageFilesSource,
                                    PiCameraSource,
                                    SourceError,
                                    SourceStatus,
                                    SyntheticSource,
                                    VideoFileSource,
                                    open_source,
)

__all__ = ["DECODERS", "DEFAULT_DECODER", "CascadeDecoder", "Decoded", "Decoder", "make_decoder",
           "LiveDecoder", "BackgroundCodes", "Debouncer", "FrameResult", "ScanEvent", "Scanner",
           "CameraSettings", "CameraSource", "Frame", "FrameSource",
           "ImageFilesSource", "PiCameraSource", "SourceError", "SourceStatus", "SyntheticSource",
           "VideoFileSource", "open_source"]
