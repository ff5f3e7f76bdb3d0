"""How many requests ``%%chat --map`` keeps in flight, and how fast it starts new ones.

The service limits a folder in one of two ways, and says only ``RESOURCE_EXHAUSTED``
when a request goes over: a limit on *concurrency* (the documented one for
synchronous generation: 10 requests in flight per model) or on *rate* (requests per
second, refilled like a token bucket). :class:`Pacer` learns which from what it sees
and controls that:

- a **window** (most requests in flight) starts at the documented limit and grows by
  three per answered request until the first refusal (slow start). A refusal of a
  request that went out with ``k`` others in flight says the limit is ``k``: the window
  becomes ``k`` at once (not a fraction of itself, which would leave throughput unused).
  It then probes one above only after a gap of answers that doubles each time the same
  level is refused again, so probing costs a handful of refusals over a whole job.
- a **rate** (starts per second) is engaged only by a rate limit's refusal: one whose
  wording names a rate quota (the service calls them ``….rate``), one with nothing else
  in flight, one at an in-flight level the service accepted since the last cut (a
  concurrency limit would not), or when an answer comes back from well above the level
  the window was cut to (that cut was a rate's storm, not a concurrency limit: it is
  taken back). The rate is cut to what the service accepted over the last second (at
  most 0.9 of itself, 0.8 when a cut did not hold), and grows by a few per cent a second
  while it is what holds starts back (AIMD), more slowly each time the same level is
  refused again. A lone refusal among many answers only pauses: it may be timing.

After any refusal nothing starts for about the time the service needs to take one more
(a slot freeing, or a token refilling), so a refused request is not refused again at
once.

Throughput at a concurrency limit ``L`` is then ``L / mean service time``, at a rate
limit the rate, with few rejections; a rejected request costs nothing and is sent
again. The class is pure (the caller passes the time), so it is tested against a
simulated service in virtual time (``tests/simulated_service.py``).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

#: The documented limit of synchronous generation (10 in flight per model): the prior.
START_WINDOW = 10
#: How much the window grows per answered request until the first refusal (x4 per RTT).
SLOW_START_STEP = 3
#: A refusal with no other among this many answers before it may be timing (a slot not
#: freed yet as its answer arrived), not a rate: it only pauses. At a rate even 4% over
#: the limit refusals come closer together than this, once the bucket is empty.
LONE_REFUSAL = 25
#: Answered requests between probes one above a level that was refused; doubles per strike.
PROBE_GAP = 25
#: The longest gap between probes, in answered requests.
MAX_PROBE_GAP = 2000
#: A rate-attributed rejection cuts the start rate to this share of itself (a second
#: cut soon after the first goes deeper)...
RATE_DECREASE = 0.9
RATE_DEEP_DECREASE = 0.8
#: ...and the rate grows by this share of itself per second while it holds starts back,
#: halved each time the same level is refused again.
RATE_INCREASE = 0.03
RATE_MIN_INCREASE = 0.002
#: Until the first refusal after it is engaged, the rate grows this much faster, as the
#: first estimate (the answers of the last second) is rough.
RATE_START_INCREASE = 0.3
#: A second refusal within this many seconds of a rate cut cuts deeper.
RATE_HORIZON = 2.0
#: Answers without a refusal after which the rate grows at full speed again.
RATE_CALM = 200
#: The slowest start rate (requests/s) the pacer ever drops to.
RATE_FLOOR = 0.2


@dataclass(frozen=True)
class Ticket:
    """One request's start: when, how many others were in flight, and the window then."""

    started: float
    others: int
    window: int


class Pacer:
    """An adaptive concurrency window plus a rate pacer engaged only by a rate limit.

    The caller asks :meth:`delay` before each start (``0``: go now; a number: the
    rate allows the next start that many seconds from now; ``None``: the window is
    full, wait for a reply), calls :meth:`start` when it sends, and then exactly one
    of :meth:`accepted` or :meth:`rejected` with the ticket.
    """

    def __init__(self, cap: int, *, window: int = START_WINDOW,
                 rate: float | None = None) -> None:
        """``rate``: start paced at this many starts a second (a documented rate quota)."""
        if cap < 1:
            raise ValueError("cap must be at least 1")
        self.cap = cap
        self.window = max(1, min(cap, window))
        self.rate: float | None = rate
        self.slow_start = True
        self.in_flight = 0
        #: Requests started and quota rejections seen, for the summary and the benchmark.
        self.attempts = 0
        self.rejections = 0
        self._next = -math.inf
        self._gap_count = 0
        self._refused_at: int | None = None  # the in-flight count last refused
        self._strikes = 0
        self._window_cut_at = -math.inf
        self._accepted_levels: dict[int, int] = {}  # since the cut: others -> acceptances
        self._latency = 0.0  # mean service time of accepted requests (EWMA)
        self._rate_cut_at = -math.inf
        self._rate_refusal_at = -LONE_REFUSAL - 1  # answers counted at the last refusal
        self._answered = 0
        self._rate_refused_at: float | None = None
        self._rate_strikes = 0
        self._rate_cuts = 0
        self._answers: deque[float] = deque()  # acceptance times, the last second
        self._held_by_rate = False

    # -- asking --------------------------------------------------------------------
    def delay(self, now: float) -> float | None:
        """Seconds until the next start may go (0: now); None while the window is full."""
        if self.in_flight >= self.window:
            return None
        wait = self._next - now
        if wait > 0:
            self._held_by_rate = True
            return wait
        return 0.0

    def start(self, now: float) -> Ticket:
        ticket = Ticket(now, self.in_flight, self.window)
        self.in_flight += 1
        self.attempts += 1
        if self.rate is not None:
            self._next = max(now, self._next + 1.0 / self.rate) if self._next > -math.inf \
                else now + 1.0 / self.rate
        return ticket

    # -- answers -------------------------------------------------------------------
    def accepted(self, ticket: Ticket, now: float) -> None:
        """The service answered this request: remember the level, grow the limits."""
        self.in_flight -= 1
        latency = max(0.0, now - ticket.started)
        self._latency = latency if not self._latency else 0.9 * self._latency + 0.1 * latency
        if ticket.started >= self._window_cut_at:
            self._accepted_levels[ticket.others] = self._accepted_levels.get(ticket.others, 0) + 1
        self._answered += 1
        self._answers.append(now)
        if len(self._answers) > 4096:
            self._answers.popleft()
        refused = self._refused_at
        if refused is not None and ticket.others >= refused + max(2, refused // 4):
            self._misjudged(now)
        self._grow_window()
        self._grow_rate()

    def _misjudged(self, now: float) -> None:
        """The service accepted well more in flight than the level the window was cut to
        (more than answers on their way back, or requests still queued in our channel at
        the start, could explain): that refusal was a rate limit's, not a concurrency
        limit's. Take the window cut back and pace the rate instead."""
        self.window = max(self.window, min(self.cap, self._refused_at or self.window))
        self._refused_at, self._strikes = None, 0
        self._window_cut_at = -math.inf
        if self.rate is None:
            # As fast as the window allows: if the rate is what the service limits, its
            # next refusals cut this down (and a wrong call costs no throughput).
            while self._answers and self._answers[0] < now - 1.0:
                self._answers.popleft()
            self.rate = max(RATE_FLOOR, float(len(self._answers)),
                            self.window / max(self._latency, 1e-3))
            self._rate_cut_at = now
            self._rate_cuts = 1

    def failed(self, ticket: Ticket, now: float) -> None:
        """The request failed for its own reason (not a limit): its slot is free again."""
        self.in_flight -= 1

    def rejected(self, ticket: Ticket, now: float, *, rate: bool = False) -> None:
        """The service refused this request for a limit: cut what the refusal points at.

        ``rate``: the refusal says it is a rate quota's (the service names its
        per-second quotas ``….rate``); without it, the pacer tells from what it saw.
        """
        self.in_flight -= 1
        self.rejections += 1
        self.slow_start = False
        self._pause(now)
        if rate:
            self._cut_rate(ticket, now)
            return
        if ticket.others == 0 or (
            ticket.started >= self._window_cut_at
            and self._accepted_since_cut(ticket.others) >= 2
        ):
            # A concurrency limit does not refuse a level it accepted since the cut (one
            # acceptance may be a race: an answer still on its way had freed its slot
            # there): this refusal is a rate limit's.
            self._cut_rate(ticket, now)
            if ticket.others + 1 >= ticket.window and ticket.started >= self._window_cut_at:
                # It also filled the window: the window may be what the service refused
                # (a concurrency limit that shrank: another client took part of it).
                self.window = max(1, min(self.window, ticket.others))
                self._gap_count = 0
            return
        self._cut_window(ticket, now)

    def _accepted_since_cut(self, others: int) -> int:
        """Requests sent since the window's cut with ``others`` or more in flight, accepted."""
        return sum(n for level, n in self._accepted_levels.items() if level >= others)

    def _pause(self, now: float) -> None:
        """No start for about the time the service needs to take one more request.

        That is a slot freeing (at a concurrency limit) or a token refilling (at a rate
        limit): retried at once, a refused request would only be refused again.
        """
        while self._answers and self._answers[0] < now - 1.0:
            self._answers.popleft()
        slot = self._latency / max(1, self.in_flight)
        token = 1.0 / max(1, len(self._answers))
        self._next = max(self._next, now + min(max(slot, token), 1.0))

    # -- the window ----------------------------------------------------------------
    def _grow_window(self) -> None:
        if self.window >= self.cap or self.in_flight + 1 < self.window:
            return  # the window was not in use: it is not what holds starts back
        if self.slow_start:
            self.window = min(self.cap, self.window + SLOW_START_STEP)
            return
        self._gap_count += 1
        at_ceiling = self._refused_at is not None and self.window + 1 >= self._refused_at
        gap = min(MAX_PROBE_GAP, PROBE_GAP << max(0, self._strikes - 1)) if at_ceiling \
            else self.window
        if self._gap_count >= gap:
            self._gap_count = 0
            self.window += 1
            if self._refused_at is not None and self.window > self._refused_at:
                self._refused_at, self._strikes = None, 0  # the limit grew

    def _cut_window(self, ticket: Ticket, now: float) -> None:
        level = ticket.others + 1
        if ticket.started < self._window_cut_at and self._refused_at is not None:
            # Sent before the last cut, with its burst: the lowest level refused counts.
            self._refused_at = min(self._refused_at, level)
        else:
            self._strikes = self._strikes + 1 if level == self._refused_at else 1
            self._refused_at = level
            self._window_cut_at = now
            self._accepted_levels.clear()
        self.window = max(1, min(self.window, ticket.others))
        self._gap_count = 0

    # -- the rate --------------------------------------------------------------------
    def _cut_rate(self, ticket: Ticket, now: float) -> None:
        if ticket.started < self._rate_cut_at:
            return  # sent before the last cut, with its burst: that cut was for it too
        lone = self._answered - self._rate_refusal_at > LONE_REFUSAL
        self._rate_refusal_at = self._answered
        if lone:
            return  # one refusal alone may be timing, not the rate: the pause is enough
        while self._answers and self._answers[0] < now - 1.0:
            self._answers.popleft()
        # Engaged for the first time, the rate is what the service accepted over the
        # last second (a bucket's burst included: too high rather than too low).
        level = self.rate if self.rate is not None else max(float(len(self._answers)), 1.0)
        refused = self._rate_refused_at
        near = refused is not None and abs(level / refused - 1.0) < 0.1
        self._rate_strikes = self._rate_strikes + 1 if near else 1
        self._rate_refused_at = level
        # Refused again soon after a cut: that cut was too small, go deeper.
        deep = now - self._rate_cut_at < RATE_HORIZON
        self._rate_cut_at = now
        self._rate_cuts += 1
        self.rate = max(RATE_FLOOR, level * (RATE_DEEP_DECREASE if deep else RATE_DECREASE))
        self._next = now + 1.0 / self.rate  # a pause: the bucket refills a little

    def _grow_rate(self) -> None:
        if self.rate is None or not self._held_by_rate:
            return
        self._held_by_rate = False
        # RATE_INCREASE of itself per second (spread over a second's answers), halved
        # for each time the same level was refused again: probing gets rarer.
        if self._answered - self._rate_refusal_at > RATE_CALM:
            self._rate_strikes = 0  # long without a refusal: the limit may have grown
        if self._rate_strikes <= 1 and self._rate_cuts == 1:
            share = RATE_START_INCREASE  # engaged once, never refused since: find the level
        else:
            share = max(RATE_MIN_INCREASE, RATE_INCREASE / (1 << max(0, self._rate_strikes - 1)))
        self.rate += share
