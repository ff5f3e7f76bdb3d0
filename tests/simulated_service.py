"""A simulated service in virtual time, to test ``pacing.Pacer`` in milliseconds.

The service has a concurrency limit (requests in flight; more is refused at once) or a
rate limit (a token bucket holding one second's worth, as the emulator keeps one), and
a lognormal service time. The client sends rows as the pacer allows and sends refused
rows again. Everything is deterministic for a seed; a 2,000-row job runs in ~50 ms.
"""

from __future__ import annotations

import heapq
import math
import random
from dataclasses import dataclass, field
from typing import Any

from yagpt_magic.bulk.pacing import Pacer, Ticket


@dataclass
class Service:
    """What the service limits and how long it takes."""

    concurrency: int | None = None
    rate: float | None = None
    mean: float = 1.0
    sigma: float = 0.6
    rtt: float = 0.002
    #: Seconds after the reply leaves that the slot is freed (> rtt/2: after the client
    #: has the answer, so it may send the next one to a still-full service).
    release_lag: float = 0.0
    #: (from this virtual second, the concurrency limit is ...): another client taking
    #: part of the folder's quota, or giving it back.
    changes: tuple[tuple[float, int], ...] = ()

    def concurrency_at(self, now: float) -> int | None:
        limit = self.concurrency
        for since, value in self.changes:
            if now >= since:
                limit = value
        return limit

    def limit_throughput(self) -> float:
        """Rows per second at the limit: ``concurrency / mean``, or the rate."""
        bounds = []
        if self.concurrency is not None:
            bounds.append(self.concurrency / self.mean)
        if self.rate is not None:
            bounds.append(self.rate)
        return min(bounds) if bounds else math.inf


@dataclass
class Result:
    rows: int
    seconds: float
    rejected: int
    peak_in_flight: int
    windows: list[int] = field(default_factory=list, repr=False)  # after each answer
    times: list[float] = field(default_factory=list, repr=False)  # of each answer

    def window_at(self, when: float) -> int:
        """The window after the last answer before ``when`` (virtual seconds)."""
        index = max(0, sum(1 for t in self.times if t <= when) - 1)
        return self.windows[index]

    @property
    def throughput(self) -> float:
        return self.rows / self.seconds


class Oracle(Pacer):
    """A client that knows the concurrency limit: exactly ``limit`` in flight, never more.

    What no client can beat at that limit with those service times (the end of a job,
    where fewer rows than the limit are left, takes the longest of the last replies).
    """

    def __init__(self, limit: int) -> None:
        super().__init__(limit, window=limit)

    def accepted(self, ticket: Ticket, now: float) -> None:
        self.in_flight -= 1

    def rejected(self, ticket: Ticket, now: float) -> None:
        self.in_flight -= 1
        self.rejections += 1


def simulate(service: Service, rows: int, pacer: Pacer, *, seed: int = 0) -> Result:
    """Run ``rows`` requests through ``pacer`` against ``service``; virtual seconds."""
    rng = random.Random(seed)
    mu = math.log(service.mean) - service.sigma ** 2 / 2
    events: list[tuple[float, int, str, Any]] = []
    counter = 0

    def at(time: float, kind: str, payload: Any = None) -> None:
        nonlocal counter
        counter += 1
        heapq.heappush(events, (time, counter, kind, payload))

    left, done, busy, rejected, peak = rows, 0, 0, 0, 0
    tokens = service.rate or 0.0
    last_fill = 0.0
    wake_at = math.inf
    windows: list[int] = []
    times: list[float] = []
    now = 0.0

    def pump() -> None:
        nonlocal left, wake_at
        while left:
            wait = pacer.delay(now)
            if wait is None:
                return
            if wait > 0:
                if now + wait < wake_at:
                    wake_at = now + wait
                    at(wake_at, "wake")
                return
            ticket = pacer.start(now)
            left -= 1
            at(now + service.rtt / 2, "arrive", ticket)

    def take_token() -> bool:
        nonlocal tokens, last_fill
        if service.rate is None:
            return True
        tokens = min(max(1.0, service.rate), tokens + (now - last_fill) * service.rate)
        last_fill = now
        if tokens >= 1.0:
            tokens -= 1.0
            return True
        return False

    pump()
    while events:
        now, _, kind, payload = heapq.heappop(events)
        if kind == "wake":
            if now >= wake_at:
                wake_at = math.inf
        elif kind == "arrive":
            limit = service.concurrency_at(now)
            over = limit is not None and busy >= limit
            if over or not take_token():
                rejected += 1
                at(now + service.rtt / 2, "refused", payload)
            else:
                busy += 1
                peak = max(peak, busy)
                took = rng.lognormvariate(mu, service.sigma)
                at(now + took + service.release_lag, "release")
                at(now + took + service.rtt / 2, "answer", payload)
        elif kind == "release":
            busy -= 1
        elif kind == "answer":
            pacer.accepted(payload, now)
            done += 1
            windows.append(pacer.window)
            times.append(now)
        elif kind == "refused":
            pacer.rejected(payload, now)
            left += 1
        pump()
        if done == rows:
            break
    return Result(rows, now, rejected, peak, windows, times)
