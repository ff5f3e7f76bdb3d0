"""``%%chat --map DATA --estimate``: what a job would cost and take, before paying for it.

Nothing that generates is sent. The model's own tokenizer counts the input (free, says
the pricing policy; paced under its documented 50 requests a second): every row of a
small job, an evenly spaced sample of :data:`SAMPLE` rows of a big one (and the
estimate says so). Rows already answered (the row cache) would not be sent and are not
counted. It reports the rows, the input tokens, the reply tokens at most (``max_tokens``
x rows), the expected time at the limits in force, and for ``--batch`` the service's
minimum billed size.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..core.conversation import Message
from ..core.errors import ChatError, Interrupted
from .mapping import classify, interrupt_as, is_rate_quota, prepare, service_of, text_generation
from .pacing import START_WINDOW, Pacer
from .row_cache import RowCache, request_key

if TYPE_CHECKING:
    from ..core.backend import RequestOptions
    from ..core.session import ChatSession
    from ..service.text_generation import TextGenerationBackend

#: Rows counted at most; a bigger job is estimated from an evenly spaced sample.
SAMPLE = 200
#: The tokenizer's documented quota (requests a second).
TOKENIZER_RPS = 50.0
#: "With models in batch mode, the minimum cost per run is 200,000 tokens." (Yandex AI
#: Studio pricing policy, "Cost of using models in batch mode":
#: https://yandex.cloud/en/docs/ai-studio/pricing#batch)
BATCH_MINIMUM_TOKENS = 200_000
#: The asynchronous mode's documented submit quotas (--deferred).
DEFERRED_RPS = 10.0
DEFERRED_PER_HOUR = 5000
#: Seconds a reply is assumed to take for the time estimate: nothing is generated to
#: measure it, and a reply of a few hundred tokens takes about this long.
ASSUMED_REPLY_SECONDS = 2.0


@dataclass
class Estimate:
    """What ``--estimate`` found; ``lines()`` is what it prints."""

    mode: str
    rows: int
    cached: int
    refused: int
    to_send: int
    counted: int
    input_tokens: int
    max_tokens: int
    concurrency: int

    @property
    def sampled(self) -> bool:
        return self.counted < self.to_send

    def reply_ceiling(self) -> int:
        return self.max_tokens * self.to_send

    def seconds(self) -> float:
        """Expected time at the limits in force (the documented quotas, or --concurrency)."""
        if self.mode == "--deferred":
            first = min(self.to_send, DEFERRED_PER_HOUR)
            rest = self.to_send - first
            return first / DEFERRED_RPS + rest / DEFERRED_PER_HOUR * 3600
        in_flight = min(self.concurrency, START_WINDOW)
        return self.to_send / in_flight * ASSUMED_REPLY_SECONDS

    def lines(self) -> list[str]:
        out = [f"Estimate for {self.mode} (nothing was generated):"]
        parts = [f"{self.rows:,} rows"]
        if self.cached:
            parts.append(f"{self.cached:,} already answered (kept, not sent again)")
        if self.refused:
            parts.append(f"{self.refused:,} that cannot be sent (their errors would stand "
                         "in their places)")
        out.append(f"  rows: {'; '.join(parts)}; {self.to_send:,} to send")
        how = (f"counted {self.counted:,} of {self.to_send:,} rows with the tokenizer, evenly "
               "spaced; the rest estimated from them" if self.sampled
               else "every row counted with the tokenizer")
        approx = "≈ " if self.sampled else ""
        out.append(f"  input tokens: {approx}{self.input_tokens:,} ({how})")
        out.append(f"  reply tokens: at most {self.reply_ceiling():,} (max_tokens "
                   f"{self.max_tokens:,} x {self.to_send:,} rows)")
        out.append(f"  time: {self._time_line()}")
        if self.mode == "--batch":
            total = self.input_tokens + self.reply_ceiling()
            out.append(
                f"  billed: at least {BATCH_MINIMUM_TOKENS:,} tokens per batch run (Yandex AI "
                "Studio pricing policy, batch mode)"
                + (f"; this job is {approx}{total:,} at most, so the minimum applies"
                   if total < BATCH_MINIMUM_TOKENS else ""))
        return out

    def _time_line(self) -> str:
        if self.mode == "--batch":
            return ("the service schedules batch runs itself: no documented time; follow it "
                    "with %chat batch status ID")
        took = _duration(self.seconds())
        if self.mode == "--deferred":
            return (f"≈ {took} to submit at the asynchronous mode's {DEFERRED_RPS:g} a second "
                    f"and {DEFERRED_PER_HOUR:,} an hour, then as long as the service takes")
        in_flight = min(self.concurrency, START_WINDOW)
        return (f"≈ {took} at {in_flight} requests in flight (the documented limit per model"
                f"{', or --concurrency' if self.concurrency < START_WINDOW else ''}) if a "
                f"reply takes {ASSUMED_REPLY_SECONDS:g} s; longer replies take longer")

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        text = "\n".join(self.lines())
        return {"text/plain": text}


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


def sample(count: int, size: int | None = None) -> list[int]:
    """Up to ``size`` (:data:`SAMPLE`) evenly spaced positions of ``count`` (all when fewer)."""
    size = SAMPLE if size is None else size
    if count <= size:
        return list(range(count))
    return sorted({int(i * count / size) for i in range(size)})


def count_tokens(backend: TextGenerationBackend, requests: Sequence[Sequence[Message]],
                 options: RequestOptions) -> list[int]:
    """Each request's input tokens by the model's tokenizer, paced under its quota."""
    counts = [0] * len(requests)
    pacer = Pacer(START_WINDOW, window=START_WINDOW, rate=TOKENIZER_RPS)

    async def one(model: Any, index: int) -> None:
        while True:
            wait = pacer.delay(time.monotonic())
            if wait != 0.0:
                await asyncio.sleep(min(wait, 0.05) if wait is not None else 0.005)
                continue
            ticket = pacer.start(time.monotonic())
            try:
                tokens = await model.tokenize(list(requests[index]))
            except asyncio.CancelledError:
                raise
            except Exception as err:
                if classify(err) == "quota":
                    pacer.rejected(ticket, time.monotonic(), rate=is_rate_quota(err))
                    continue
                pacer.failed(ticket, time.monotonic())
                raise
            pacer.accepted(ticket, time.monotonic())
            counts[index] = len(tokens)
            return

    async def produce(put: Callable[[Any], None]) -> None:
        put(("start", None))
        model = backend.model(options)
        await asyncio.gather(*(one(model, i) for i in range(len(requests))))
        put(("end", None))

    cancel = threading.Event()
    try:
        with interrupt_as(cancel):
            for kind, _ in backend.drive(produce, cancel=cancel):
                if cancel.is_set():
                    raise Interrupted("stopped")
                if kind == "end":
                    break
    except KeyboardInterrupt:
        raise Interrupted("Interrupted: the estimate was stopped; nothing was sent.") from None
    return counts


def estimate(session: ChatSession, template: str, data: Any, *, mode: str = "--map",
             column: str = "reply", system: str | None = None,
             options: RequestOptions | None = None, concurrency: int | None = None,
             fresh: bool = False) -> Estimate:
    """Count and reckon a job without sending anything that generates."""
    job = prepare(session, template, data, system=system, column=column, mode=mode)
    options = options if options is not None else session.options(stream=False)
    service = service_of(session)
    cached = 0
    requests = job.requests
    if not fresh and mode != "--batch":  # --batch sends every row again
        keys = [request_key(r, options, service) for r in requests]
        cache = RowCache(session.settings.cache_dir or None)
        try:
            found = cache.get_many(keys)
        except ChatError:
            found = {}
        finally:
            cache.close()
        requests = [r for r, k in zip(requests, keys) if k not in found]
        cached = len(job.requests) - len(requests)
    chosen = sample(len(requests))
    counts = count_tokens(text_generation(session, options, "--estimate"),
                          [requests[i] for i in chosen], options) \
        if chosen else []
    total = round(sum(counts) / len(counts) * len(requests)) if counts else 0
    return Estimate(
        mode=mode, rows=job.rows, cached=cached, refused=len(job.refused),
        to_send=len(requests), counted=len(chosen), input_tokens=total,
        max_tokens=options.max_tokens or 0,
        concurrency=concurrency or session.settings.max_concurrency,
    )
