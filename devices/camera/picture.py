"""QR codes in a picture file (PNG, JPEG): OpenCV reads the image, zxing-cpp the codes
(regular QR only, as at the camera: devices/camera/decoders.py).

The camera's side of `gate codes verify IMAGE` and of the EU test cases' picture step: the
command modules pass `qr_texts` to the codes, which know nothing of cameras.
"""
from __future__ import annotations

import cv2
import numpy as np

from .decoders import ZxingDecoder


class PictureError(ValueError):
    """The bytes are not an image we can read."""


def qr_texts(image: bytes) -> list[str]:
    """Every QR code's text in the image, in the order zxing-cpp finds them."""
    pixels = cv2.imdecode(np.frombuffer(image, np.uint8), cv2.IMREAD_GRAYSCALE)
    if pixels is None:
        raise PictureError("not an image OpenCV can read")
    return [found.text for found in ZxingDecoder().decode(pixels)]
