"""How long the model takes: time to first token plus time per token, with a heavy tail.

Real replies take seconds and a few take much longer. :class:`ServiceTime` models a
request's generation time as ``(first_token + tokens * per_token) * F`` where ``F`` is
lognormal with median 1 and shape ``sigma``, drawn once per request from a seeded
generator (so a run is reproducible). The median of a reply of ``n`` tokens is
therefore ``first_token + n * per_token``, and its ``q``-quantile that times
``exp(sigma * z_q)``; :meth:`ServiceTime.quantile` says so, for tests and benchmarks.

A streamed reply sends its first chunk after ``first_token * F`` plus that chunk's
tokens at ``per_token * F`` each, and each later chunk after its own tokens; a unary
reply comes whole after the total. Off (``None``) by default, so tests stay fast.
"""

from __future__ import annotations

import math
import random
import threading
from dataclasses import dataclass
from statistics import NormalDist

__all__ = ["Pace", "ServiceClock", "ServiceTime"]


@dataclass(frozen=True)
class ServiceTime:
    """The service-time model's knobs; defaults give about 1 s for a 20-token reply."""

    #: Median seconds before the first token.
    first_token: float = 0.6
    #: Median seconds per generated token after it.
    per_token: float = 0.02
    #: Lognormal shape of the per-request factor: 0 is constant, 0.5 a long tail.
    sigma: float = 0.5
    #: Seed of the draws, so a run can be repeated.
    seed: int = 0

    def __post_init__(self) -> None:
        if self.first_token < 0 or self.per_token < 0 or self.sigma < 0:
            raise ValueError("service time parameters must not be negative")

    def median(self, tokens: int) -> float:
        """The median generation time of a reply of ``tokens`` tokens."""
        return self.first_token + tokens * self.per_token

    def quantile(self, tokens: int, q: float) -> float:
        """The ``q``-quantile (0 < q < 1) of the generation time of ``tokens`` tokens."""
        return self.median(tokens) * math.exp(self.sigma * NormalDist().inv_cdf(q))


@dataclass(frozen=True)
class Pace:
    """One request's draw: seconds to the first token and per token after it."""

    first_token: float
    per_token: float

    def total(self, tokens: int) -> float:
        return self.first_token + tokens * self.per_token


class ServiceClock:
    """Draws each request's :class:`Pace` from one seeded generator; thread-safe."""

    def __init__(self, model: ServiceTime) -> None:
        self.model = model
        self._random = random.Random(model.seed)
        self._lock = threading.Lock()

    def draw(self) -> Pace:
        with self._lock:
            factor = self._random.lognormvariate(0.0, self.model.sigma)
        return Pace(self.model.first_token * factor, self.model.per_token * factor)
