"""A requests-per-second quota, as the service keeps one per folder."""

from __future__ import annotations

import time


class TokenBucket:
    """``rate`` requests a second, with a burst of one second's worth.

    The real quota (``ai.textGenerationCompletionRequestsPerSecond``) refuses what
    goes over the rate with RESOURCE_EXHAUSTED and costs nothing else: a client that
    sends in bursts loses the overflow, one that paces itself does not.
    """

    def __init__(self, rate: float) -> None:
        if rate <= 0:
            raise ValueError("quota rate must be positive")
        self.rate = rate
        self.capacity = max(1.0, rate)
        self._tokens = self.capacity
        self._clock = time.monotonic
        self._last = self._clock()

    def take(self) -> bool:
        """Spend one request if one is available now."""
        now = self._clock()
        self._tokens = min(self.capacity, self._tokens + (now - self._last) * self.rate)
        self._last = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False
