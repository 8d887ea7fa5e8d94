"""What a decoder gives back, and the interface every decoder has.

Its own module so that the decoders (decoders.py), the worker-process wrapper
(isolated.py) and the live scanner's cascade worker (live.py) share it without importing
each other.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

Box = tuple[int, int, int, int]   # x, y, w, h in frame pixels


@dataclass(frozen=True)
class Decoded:
    """One code read from a frame."""
    text: str
    step: str = ""                       # which step of the strategy read it
    corners: tuple[tuple[int, int], ...] = ()  # in frame pixels, when the decoder gives them
    frame: int | None = None             # live cascade: the index of the frame it was read from

    @property
    def box(self) -> Box | None:
        """The corners' bounding box, when there are corners."""
        if not self.corners:
            return None
        xs, ys = [p[0] for p in self.corners], [p[1] for p in self.corners]
        return min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)


class Decoder(Protocol):
    name: str

    def decode(self, image: np.ndarray) -> list[Decoded]:
        """Codes in a BGR or grayscale frame; an empty list when there is none."""
        ...

    def close(self) -> None:
        ...
