"""Figure 9: ``%%chat --map`` at the service's documented limits, against the ways people
do it by hand.

The service's shape (Foundation Models "Quotas and limits"): at most ``L`` generations
in flight per model in synchronous mode (10 documented; 3 and 50 measured too), the
next refused with RESOURCE_EXHAUSTED; a lognormal service time (the emulator's model:
time to first token plus time per token, times a lognormal factor of shape 0.5), scaled
down uniformly to a mean of :data:`MEAN` s so a run takes minutes, not an hour. The
emulator (``benchmarks/server.py``) runs in a process of its own; each approach runs in
a fresh client process against a fresh emulator (its own counters, a full bucket):

- ours: ``mapping.run_rows`` (what ``%%chat --map`` runs), 2,000 rows, its default cap;
- a client that knows the limit: exactly ``L`` in flight from the first request
  (``asyncio.Semaphore(L)`` over the async SDK). No client can beat it with these
  service times: the end of a job waits for the slowest of the last replies;
- the sequential loop a user writes first: ``model.run(row)`` one after another;
- an unbounded ``asyncio.gather`` over all rows with the async SDK's default retries;
- a rate-limited service (40 requests/s, no concurrency limit): ours;
- ``--deferred`` against the asynchronous mode's documented 10 submits a second;
- resume: ours interrupted at half (a KeyboardInterrupt in the consuming thread, as a
  notebook interrupt arrives), then the same rows in a new process with the same cache.

Completions and refusals are the emulator's own counts, printed when it stops.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from .common import FOLDER, KEY, Row

#: Mean service time (s): the real ~1 s, scaled down uniformly (every ratio kept).
MEAN = 0.25
SIGMA = 0.5
#: Reply tokens (fixed, so the service time is the model's, not the text's length).
REPLY_TOKENS = 20
PER_TOKEN_SHARE = 0.4  # of the median, spent on the reply's tokens (the rest: first token)
LIMITS = (10, 3, 50)
RATE = 40.0
DEFERRED_RPS = 10.0


def service_time_flags(mean: float = MEAN) -> list[str]:
    """Emulator flags for a lognormal service time of ``mean`` seconds on average."""
    median = mean / math.exp(SIGMA ** 2 / 2)
    per_token = median * PER_TOKEN_SHARE / REPLY_TOKENS
    first = median - per_token * REPLY_TOKENS
    return ["--first-token", f"{first:.6f}", "--per-token", f"{per_token:.6f}",
            "--service-time-sigma", str(SIGMA), "--reply-tokens", str(REPLY_TOKENS)]


@contextmanager
def _emulator(stats: dict[str, int], flags: Sequence[str]) -> Iterator[str]:
    """A fresh emulator process with ``flags``; ``stats`` gets its counts when it stops."""
    args = [sys.executable, "-m", "benchmarks.server", "--api-key", KEY, "--stats", *flags]
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                               text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if "listening on " not in line:
            raise RuntimeError("the benchmark emulator did not start")
        yield line.rsplit("listening on ", 1)[1].strip()
    finally:
        process.terminate()
        out, _ = process.communicate(timeout=60)
        for word in out.split():
            name, _, value = word.partition("=")
            if value.isdigit():
                stats[name] = int(value)


def _worker(address: str, approach: str, rows: int, cache: str, limit: int) -> dict[str, Any]:
    """Run one approach in a new interpreter; it prints one JSON line of results."""
    env = {**os.environ, "YC_API_KEY": KEY, "YC_FOLDER_ID": FOLDER,
           "YC_API_ENDPOINT": address, "YAGPT_INSECURE": "1"}
    code = f"from benchmarks.many import work; work({approach!r}, {rows}, {cache!r}, {limit})"
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=3600)
    if done.returncode:
        raise RuntimeError(f"{approach} failed: {done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _texts(rows: int) -> list[str]:
    return [f"Review {i}: the delivery was {'fast' if i % 3 else 'late'}." for i in range(rows)]


class _Clock:
    """A progress callback that notes when each row is answered (and can stop at half:
    a KeyboardInterrupt in the consuming thread, where a notebook interrupt lands)."""

    def __init__(self, stop_at: int | None = None) -> None:
        self.stop_at = stop_at
        self.times: list[float] = []

    def start(self, outcome: Any) -> None:
        pass

    def update(self, outcome: Any, kind: str) -> None:
        import time

        if kind == "row":
            self.times.append(time.perf_counter())
        if self.stop_at is not None and outcome.done() >= self.stop_at:
            raise KeyboardInterrupt

    def close(self, outcome: Any = None) -> None:
        pass


def sustained(times: Sequence[float]) -> float:
    """Rows/s between the 5th and the 95th percent of rows answered: the rate at the limit,
    without the ramp at the start and the drain at the end (where fewer rows than the limit
    are left, and the job waits for the slowest of the last replies, whoever sends them)."""
    ordered = sorted(times)
    if len(ordered) < 20:
        return 0.0
    first, last = int(len(ordered) * 0.05), int(len(ordered) * 0.95)
    span = ordered[last] - ordered[first]
    return (last - first) / span if span > 0 else 0.0


def _ours(approach: str, messages: list[list[dict[str, str]]], cache: str) -> dict[str, Any]:
    from yagpt_magic.bulk.mapping import run_rows
    from yagpt_magic.bulk.pacing import Pacer
    from yagpt_magic.bulk.row_cache import RowCache
    from yagpt_magic.core.errors import Interrupted
    from yagpt_magic.core.session import ChatSession
    from yagpt_magic.core.settings import Settings
    from yagpt_magic.service.live import LiveBackends

    settings = Settings()
    session = ChatSession(settings, LiveBackends(settings))
    pacer = Pacer(session.settings.max_concurrency)
    options = session.options(stream=False)
    clock = _Clock(len(messages) // 2 if approach == "half" else None)
    result: dict[str, Any] = {}
    try:
        outcome = run_rows(session.backend(options), messages, options, cache=RowCache(cache),
                           concurrency=session.settings.max_concurrency, pacer=pacer,
                           service="bench", progress=clock)
        result.update(answered=outcome.rows - outcome.failed, cached=outcome.cached)
    except Interrupted:
        result.update(answered=len(RowCache(cache)), cached=0)
    result.update(attempts=pacer.attempts, rejections=pacer.rejections, window=pacer.window,
                  rate=pacer.rate, sustained=sustained(clock.times))
    session.close()
    return result


def _deferred(messages: list[list[dict[str, str]]], cache: str) -> dict[str, Any]:
    from yagpt_magic.bulk.deferred import new_job_id, run_deferred_rows
    from yagpt_magic.bulk.mapping import text_generation
    from yagpt_magic.bulk.row_cache import RowCache
    from yagpt_magic.core.session import ChatSession
    from yagpt_magic.core.settings import Settings
    from yagpt_magic.service.live import LiveBackends

    settings = Settings()
    session = ChatSession(settings, LiveBackends(settings))
    options = session.options(stream=False)
    outcome = run_deferred_rows(text_generation(session, options), messages, options,
                                cache=RowCache(cache), service="bench", job=new_job_id())
    session.close()
    return {"answered": outcome.rows - outcome.failed, "attempts": outcome.attempts}


def work(approach: str, rows: int, cache: str, limit: int) -> None:
    """The client side of one approach (runs in its own process)."""
    import asyncio
    import resource
    import time
    import warnings

    warnings.simplefilter("ignore")
    messages = [[{"role": "user", "text": f"Classify: {t}"}] for t in _texts(rows)]
    from yagpt_magic.service.sdk_loop import import_sdk

    sdk = import_sdk()  # every approach imports the SDK before its clock starts
    result: dict[str, Any] = {}
    start = time.perf_counter()
    if approach in ("ours", "half"):
        result.update(_ours(approach, messages, cache))
    elif approach == "deferred":
        result.update(_deferred(messages, cache))
    elif approach == "sequential":
        from .common import sdk_model

        model = sdk_model(os.environ["YC_API_ENDPOINT"])
        for request in messages:
            model.run(request)
        result.update(answered=rows)
    elif approach in ("gather", "oracle"):
        async def everything() -> list[Any]:
            client = sdk.AsyncYCloudML(folder_id=FOLDER, auth=KEY,
                                       endpoint=os.environ["YC_API_ENDPOINT"], verify=False)
            model = client.models.completions("yandexgpt").configure(temperature=0.6)
            if approach == "gather":
                return await asyncio.gather(*(model.run(m) for m in messages),
                                            return_exceptions=True)
            slots = asyncio.Semaphore(limit)

            async def one(m: Any) -> Any:
                async with slots:
                    answer = await model.run(m)
                times.append(time.perf_counter())
                return answer

            return await asyncio.gather(*(one(m) for m in messages), return_exceptions=True)

        times: list[float] = []
        answers = asyncio.run(everything())
        result.update(answered=sum(1 for a in answers if not isinstance(a, BaseException)),
                      sustained=sustained(times))
    result["seconds"] = time.perf_counter() - start
    result["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(result), flush=True)


def _measure(approach: str, rows: int, flags: Sequence[str], cache: str = "",
             limit: int = 0) -> dict[str, Any]:
    stats: dict[str, int] = {}
    with _emulator(stats, flags) as address:
        result = _worker(address, approach, rows, cache, limit)
    result.update(stats)
    result["rows"] = rows
    return result


def _rate(result: dict[str, Any]) -> float:
    return float(result["answered"]) / result["seconds"]


def _paid(result: dict[str, Any]) -> int:
    return int(result.get("completions", 0)) - int(result.get("rejected", 0))


def _limit_flags(limit: int, mean: float) -> list[str]:
    return ["--no-limits", "--concurrent-generations", str(limit), *service_time_flags(mean)]


def _at_limit(limit: int, rows: int, mean: float,
              tmp: str) -> tuple[list[str], bool, float]:
    """Ours and the client that knows the limit, at a concurrency limit: details, pass."""
    flags = _limit_flags(limit, mean)
    ours = _measure("ours", rows, flags, os.path.join(tmp, f"ours{limit}"))
    best = _measure("oracle", rows, flags, limit=limit)
    ideal = limit / mean
    share, best_share = ours["sustained"] / ideal, best["sustained"] / ideal
    whole, best_whole = _rate(ours) / ideal, _rate(best) / ideal
    rejected = ours["rejected"] / rows
    lost = rows - ours["answered"]
    details = [
        f"limit {limit} in flight: ours {ours['sustained']:.1f} rows/s sustained = "
        f"{share:.3f} of {ideal:.0f} (limit / mean service time), {whole:.3f} over the whole "
        f"job; {rejected:.3f} refused requests per row, {lost} lost, window settled at "
        f"{ours['window']}, peak RSS {ours['peak_mb']:.0f} MB",
        f"    a client that knows the limit ({limit} in flight from the start): {best_share:.3f} "
        f"sustained, {best_whole:.3f} over the whole job (ours / it: {share / best_share:.3f} "
        f"and {whole / best_whole:.3f})",
    ]
    return details, share >= 0.95 and rejected <= 0.05 and lost == 0, ours["sustained"]


def run(quick: bool) -> Row:
    rows = 60 if quick else 2000
    mean = 0.05 if quick else MEAN
    limits = LIMITS[:1] if quick else LIMITS
    details = [
        f"emulator: lognormal service time, mean {mean * 1000:.0f} ms (the real ~1 s scaled "
        f"down uniformly), shape {SIGMA}; {rows:,} rows; each approach in a fresh client "
        "process against a fresh emulator process",
    ]
    passed = True
    with tempfile.TemporaryDirectory() as tmp:
        headline = 0.0
        for limit in limits:
            lines, ok, rate = _at_limit(limit, rows, mean, tmp)
            details += lines
            passed = passed and ok
            headline = headline or rate
        details += _baselines(rows, mean, quick)
        lines, ok = _rate_limited(rows, tmp, quick)
        details += lines
        passed = passed and ok
        lines, ok = _deferred_run(rows, tmp, quick)
        details += lines
        passed = passed and ok
        lines, ok = _resume(rows, mean, tmp)
        details += lines
        passed = passed and ok
    return Row(
        f"9. --map {rows:,} rows, 10 in flight (rows/s)", 10 / mean, headline, "rows/s",
        ">= 0.95 of L/mean at 3, 10, 50; <= 0.05 refused/row; rate >= 0.9; deferred >= 0.9",
        passed, details,
    )


def _baselines(rows: int, mean: float, quick: bool) -> list[str]:
    flags = _limit_flags(10, mean)
    ideal = 10 / mean
    sequential_rows = 10 if quick else 200
    sequential = _measure("sequential", sequential_rows, flags)
    gather = _measure("gather", rows, flags)
    return [
        f"limit 10: sequential loop ({sequential_rows} rows): {_rate(sequential):.1f} rows/s = "
        f"{_rate(sequential) / ideal:.3f} of the limit's throughput; peak RSS "
        f"{sequential['peak_mb']:.0f} MB",
        f"limit 10: unbounded asyncio.gather ({rows:,} rows, SDK default retries): "
        f"{gather['answered']:,} answered, {rows - gather['answered']:,} failed after retries, "
        f"{_rate(gather):.1f} answered rows/s = {_rate(gather) / ideal:.3f} of the limit's "
        f"throughput; {gather['rejected'] / rows:.2f} refused requests per row; peak RSS "
        f"{gather['peak_mb']:.0f} MB",
    ]


def _rate_limited(rows: int, tmp: str, quick: bool) -> tuple[list[str], bool]:
    flags = ["--no-limits", "--quota-rps", str(RATE), *service_time_flags(0.1)]
    ours = _measure("ours", rows, flags, os.path.join(tmp, "rate"))
    share = _rate(ours) / RATE
    rejected = ours["rejected"] / rows
    line = (f"rate limit {RATE:.0f}/s (no concurrency limit, mean 100 ms): ours "
            f"{_rate(ours):.1f} rows/s = {share:.3f} of the rate, {rejected:.3f} refused "
            f"requests per row, {rows - ours['answered']} lost")
    return [line], share >= 0.9 and rejected <= 0.05


def _deferred_run(rows: int, tmp: str, quick: bool) -> tuple[list[str], bool]:
    count = 40 if quick else 600
    flags = ["--async-submit-rps", str(DEFERRED_RPS), "--operation-poll-rps", "50"]
    ours = _measure("deferred", count, flags, os.path.join(tmp, "deferred"))
    share = _rate(ours) / DEFERRED_RPS
    line = (f"--deferred, {count} rows against the documented {DEFERRED_RPS:.0f} submits/s "
            f"(50 polls/s): {_rate(ours):.2f} rows/s over the whole job = {share:.3f} of the "
            f"submit quota, {ours.get('refused_async_submit_rps', 0)} submits refused, "
            f"{count - ours['answered']} lost")
    return [line], share >= 0.9


def _resume(rows: int, mean: float, tmp: str) -> tuple[list[str], bool]:
    flags = _limit_flags(10, mean)
    cache = os.path.join(tmp, "resume")
    half = _measure("half", rows, flags, cache)
    rest = _measure("ours", rows, flags, cache)
    paid = _paid(half) + _paid(rest)
    in_flight = max(half["attempts"] - half["rejections"] - half["answered"], 0)
    line = (f"resume at limit 10: interrupted at {half['answered']:,} of {rows:,} rows, re-run "
            f"in a new process: {paid:,} completions paid for {rows:,} rows (target <= rows + "
            f"{in_flight} in flight at the interrupt); the re-run sent {_paid(rest):,}")
    return [line], paid <= rows + in_flight
