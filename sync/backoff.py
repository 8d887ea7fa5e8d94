"""Exponential back-off with full jitter (AWS Architecture Blog, "Exponential Backoff
and Jitter"): sleep a uniform random time in [0, min(cap, base * 2**attempt)], so
fifty gates that lost the same link do not all come back in the same second."""
from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass
class Backoff:
    base_s: float = 0.5
    cap_s: float = 60.0
    attempt: int = 0
    rng: random.Random = field(default_factory=random.Random, repr=False)

    def ceiling(self) -> float:
        return min(self.cap_s, self.base_s * (2 ** min(self.attempt, 62)))

    def next_delay(self) -> float:
        """The delay before the next try; each call counts one more failure."""
        delay = self.rng.uniform(0, self.ceiling())
        self.attempt += 1
        return delay

    def reset(self) -> None:
        self.attempt = 0
