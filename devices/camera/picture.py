"""QR codes in pictures (PNG, JPEG): OpenCV reads the image, zxing-cpp the codes (regular QR
only, as at the camera: devices/camera/decoders.py).

Imported only by the commands that take a picture, so verifying text never loads OpenCV.
"""
from __future__ import annotations

import cv2
import numpy as np

from devices.camera.decoders import ZxingDecoder


class PictureError(ValueError):
    """The bytes are not an image we can read."""


def qr_texts(image: bytes) -> list[str]:
    """Every QR code's text in the image, in the order zxing-cpp finds them."""
    pixels = cv2.imdecode(np.frombuffer(image, np.uint8), cv2.IMREAD_GRAYSCALE)
    if pixels is None:
        raise PictureError("not an image OpenCV can read")
    return [found.text for found in ZxingDecoder().decode(pixels)]
