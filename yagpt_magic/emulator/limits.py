"""The service's documented limits, and the counters that enforce them.

Foundation Models "Quotas and limits" (yandex.cloud/docs/foundation-models/concepts/limits,
2025): at most 10 concurrent generations per model in synchronous mode; in asynchronous
mode 10 requests a second to submit, 50 a second to get a result and 5,000 an hour to
submit; 50 tokenization requests a second. :class:`Limits` holds those numbers (each
None for "no limit"), :class:`Limiter` counts what is in flight and what each quota has
left. A request over a limit is refused with RESOURCE_EXHAUSTED in the service's wording
(:func:`.catalogue.limit_exceeded`) and costs nothing else, as the real quotas do.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, fields

__all__ = ["SECONDS_PER_HOUR", "Limiter", "Limits", "TokenBucket"]

SECONDS_PER_HOUR = 3600.0


@dataclass
class Limits:
    """The documented quotas, per folder (concurrency per folder and model); None: none."""

    #: Synchronous generations in flight per model (TextGenerationService/Completion,
    #: streamed or not); the next one is refused until one ends.
    concurrent_generations: int | None = 10
    #: TextGenerationAsyncService/Completion submits a second.
    async_submit_rps: float | None = 10.0
    #: ... and an hour.
    async_submit_per_hour: int | None = 5000
    #: OperationService/Get calls a second on deferred completions ("getting a response").
    operation_poll_rps: float | None = 50.0
    #: TokenizerService calls (Tokenize and TokenizeCompletion) a second.
    tokenizer_rps: float | None = 50.0

    @classmethod
    def off(cls) -> Limits:
        """No limit at all: for a test or a benchmark that measures something else."""
        return cls(**{f.name: None for f in fields(cls)})

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if value is not None and value <= 0:
                raise ValueError(f"{f.name} must be positive or None (no limit), not {value}")


class TokenBucket:
    """``rate`` requests a second, with a burst of ``capacity`` (one second's worth).

    The real quota (``ai.textGenerationCompletionRequestsPerSecond``) refuses what
    goes over the rate with RESOURCE_EXHAUSTED and costs nothing else: a client that
    sends in bursts loses the overflow, one that paces itself does not.
    """

    def __init__(self, rate: float, capacity: float | None = None) -> None:
        if rate <= 0:
            raise ValueError("quota rate must be positive")
        self.rate = rate
        self.capacity = capacity if capacity is not None else max(1.0, rate)
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


class Limiter:
    """Rate buckets and in-flight counts, keyed by quota and scope; thread-safe.

    ``refusals`` counts what each quota refused, by quota name.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._buckets: dict[tuple[str, str], TokenBucket] = {}
        self._in_flight: Counter[str] = Counter()
        self.refusals: Counter[str] = Counter()

    def take(self, quota: str, scope: str, rate: float, capacity: float | None = None) -> bool:
        """Spend one request of ``quota`` in ``scope``; False (and counted) when none is left.

        A bucket is rebuilt when its rate or capacity changes, so a new setting applies at
        once.
        """
        with self._lock:
            key = (quota, scope)
            bucket = self._buckets.get(key)
            if bucket is None or bucket.rate != rate or (
                capacity is not None and bucket.capacity != capacity
            ):
                bucket = self._buckets[key] = TokenBucket(rate, capacity)
            if bucket.take():
                return True
            self.refusals[quota] += 1
            return False

    def enter(self, quota: str, scope: str, limit: int) -> bool:
        """Count one more call in flight in ``scope``; False (and counted) when at ``limit``."""
        with self._lock:
            if self._in_flight[scope] >= limit:
                self.refusals[quota] += 1
                return False
            self._in_flight[scope] += 1
            return True

    def leave(self, scope: str) -> None:
        """One call in flight in ``scope`` has ended."""
        with self._lock:
            self._in_flight[scope] -= 1
            if self._in_flight[scope] <= 0:
                del self._in_flight[scope]

    def in_flight(self, scope: str) -> int:
        with self._lock:
            return self._in_flight[scope]

    def reset(self) -> None:
        """Fresh buckets and no refusals; calls in flight stay counted until they end."""
        with self._lock:
            self._buckets.clear()
            self.refusals.clear()
