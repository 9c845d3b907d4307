"""Retry policy: exponential backoff with full jitter, capped (AWS architecture blog, 2015)."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class RetryPolicy:
    """How many attempts a delivery gets, and its exponential backoff with jitter."""

    max_attempts: int = 8
    base_s: float = 0.5
    max_s: float = 300.0

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait before attempt number `attempt + 1` (attempt counts from 1)."""
        cap = min(self.max_s, self.base_s * (2 ** max(0, attempt - 1)))
        return (rng or random).uniform(cap / 2, cap)

    def exhausted(self, attempts: int) -> bool:
        return attempts >= self.max_attempts
