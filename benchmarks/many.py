"""Figure 7: ``%%chat --map`` near the folder's quota, against the ways people do it by hand.

The emulator (``benchmarks/server.py``, a process of its own) answers in 100 ms and
keeps a 40 requests/s quota per folder. Each approach runs in a fresh client process
against a fresh emulator (so the quota's bucket starts full for each, and the peak
RSS is that approach's alone):

- ours: ``mapping.run_rows`` (what ``%%chat --map`` runs), 2,000 rows;
- the sequential loop a user writes first: ``model.run(row)`` one after another (at
  10 rows/s it is measured on 300 rows; rows/s does not depend on the count);
- an unbounded ``asyncio.gather`` over all 2,000 rows with the async SDK and its
  default retry policy (5 attempts, backoff from 1 s with jitter);
- resume: ours interrupted at half (a KeyboardInterrupt in the consuming thread, as
  a notebook interrupt arrives), then the same rows in a new process (a kernel
  restart) with the same cache: completions the service answered, in all.

Completions and quota rejections are the emulator's own counts, printed when it stops.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from .common import FOLDER, KEY, Row

DELAY = 0.1
QUOTA = 40.0


@contextmanager
def _emulator(stats: dict[str, int]) -> Iterator[str]:
    """A fresh emulator process with the quota; ``stats`` gets its counts when it stops."""
    args = [sys.executable, "-m", "benchmarks.server", "--api-key", KEY, "--delay", str(DELAY),
            "--quota-rps", str(QUOTA), "--stats"]
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
        out, _ = process.communicate(timeout=30)
        for word in out.split():
            name, _, value = word.partition("=")
            if value.isdigit():
                stats[name] = int(value)


def _worker(address: str, approach: str, rows: int, cache: str) -> dict[str, Any]:
    """Run one approach in a new interpreter; it prints one JSON line of results."""
    env = {**os.environ, "YC_API_KEY": KEY, "YC_FOLDER_ID": FOLDER,
           "YC_API_ENDPOINT": address, "YAGPT_INSECURE": "1"}
    code = f"from benchmarks.many import work; work({approach!r}, {rows}, {cache!r})"
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=1200)
    if done.returncode:
        raise RuntimeError(f"{approach} failed: {done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _texts(rows: int) -> list[str]:
    return [f"Review {i}: the delivery was {'fast' if i % 3 else 'late'}." for i in range(rows)]


def work(approach: str, rows: int, cache: str) -> None:
    """The client side of one approach (runs in its own process)."""
    import asyncio
    import resource
    import time
    import warnings

    warnings.simplefilter("ignore")
    texts = _texts(rows)
    messages = [[{"role": "user", "text": f"Classify: {t}"}] for t in texts]
    from yagpt_magic.service.sdk_loop import import_sdk

    import_sdk()  # every approach imports the SDK before its clock starts
    result: dict[str, Any] = {}
    start = time.perf_counter()
    if approach in ("ours", "half"):
        from yagpt_magic.bulk.mapping import run_rows
        from yagpt_magic.bulk.pacing import Pacer
        from yagpt_magic.bulk.row_cache import RowCache
        from yagpt_magic.core.errors import Interrupted
        from yagpt_magic.core.session import ChatSession
        from yagpt_magic.core.settings import Settings
        from yagpt_magic.service.live import LiveBackends

        settings = Settings()
        session = ChatSession(settings, LiveBackends(settings))
        control = Pacer(32)

        class StopAtHalf:
            def start(self, outcome: Any) -> None:
                pass

            def update(self, outcome: Any, kind: str) -> None:
                done = sum(1 for r in outcome.results if r is not None)
                if done >= rows // 2:
                    raise KeyboardInterrupt

            def close(self, outcome: Any = None) -> None:
                pass

        try:
            outcome = run_rows(session.backend(), messages, session.options(stream=False),
                               cache=RowCache(cache), concurrency=32, pacer=control,
                               progress=StopAtHalf() if approach == "half" else None)
            result.update(answered=outcome.rows - outcome.failed, cached=outcome.cached)
        except Interrupted:
            result.update(answered=len(RowCache(cache)), cached=0)
        result.update(attempts=control.attempts, rejections=control.rejections)
        session.close()
    elif approach == "sequential":
        from .common import sdk_model

        model = sdk_model(os.environ["YC_API_ENDPOINT"])
        for request in messages:
            model.run(request)
        result.update(answered=rows)
    elif approach == "gather":
        sdk = import_sdk()

        async def everything() -> list[Any]:
            client = sdk.AsyncYCloudML(folder_id=FOLDER, auth=KEY,
                                       endpoint=os.environ["YC_API_ENDPOINT"], verify=False)
            model = client.models.completions("yandexgpt").configure(temperature=0.6)
            return await asyncio.gather(*(model.run(m) for m in messages),
                                        return_exceptions=True)

        answers = asyncio.run(everything())
        result.update(answered=sum(1 for a in answers if not isinstance(a, BaseException)))
    result["seconds"] = time.perf_counter() - start
    result["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(result), flush=True)


def _measure(approach: str, rows: int, cache: str) -> dict[str, Any]:
    stats: dict[str, int] = {}
    with _emulator(stats) as address:
        result = _worker(address, approach, rows, cache)
    result.update(stats)
    return result


def run(quick: bool) -> Row:
    rows = 80 if quick else 2000
    sequential_rows = 10 if quick else 300
    with tempfile.TemporaryDirectory() as tmp:
        ours = _measure("ours", rows, os.path.join(tmp, "ours"))
        sequential = _measure("sequential", sequential_rows, "")
        gather = _measure("gather", rows, "")
        half = _measure("half", rows, os.path.join(tmp, "resume"))
        rest = _measure("ours", rows, os.path.join(tmp, "resume"))

    def rate(result: dict[str, Any]) -> float:
        return float(result["answered"]) / result["seconds"]

    def paid(result: dict[str, Any]) -> int:
        return int(result.get("completions", 0)) - int(result.get("rejected", 0))

    ours_rate = rate(ours)
    resumed_paid = paid(half) + paid(rest)
    in_flight = half["attempts"] - half["rejections"] - half["answered"]
    share = ours_rate / QUOTA
    details = [
        f"emulator: {DELAY * 1000:.0f} ms per reply, quota {QUOTA:.0f} requests/s; "
        f"each approach in a fresh client process against a fresh emulator process",
        f"ours ({rows:,} rows, concurrency cap 32): {ours_rate:.1f} rows/s = "
        f"{share:.3f} of the quota; {ours['rejected'] / rows:.3f} rejected requests per row; "
        f"peak RSS {ours['peak_mb']:.0f} MB",
        f"sequential loop ({sequential_rows} rows): {rate(sequential):.1f} rows/s = "
        f"{rate(sequential) / QUOTA:.3f} of the quota; peak RSS {sequential['peak_mb']:.0f} MB",
        f"unbounded asyncio.gather ({rows:,} rows, SDK default retries): "
        f"{gather['answered']:,} answered, {rows - gather['answered']:,} failed after retries, "
        f"{rate(gather):.1f} answered rows/s = {rate(gather) / QUOTA:.3f} of the quota; "
        f"{gather['rejected'] / rows:.2f} rejected requests per row; "
        f"peak RSS {gather['peak_mb']:.0f} MB",
        f"resume: interrupted at {half['answered']:,} of {rows:,} rows, re-run in a new process: "
        f"{resumed_paid:,} completions paid for {rows:,} rows "
        f"(target <= rows + {max(in_flight, 0)} in flight at the interrupt); "
        f"the re-run sent {paid(rest):,}",
    ]
    passed = share >= 0.9 and resumed_paid <= rows + max(in_flight, 0)
    return Row(
        f"9. --map {rows:,} rows at a {QUOTA:.0f} rps quota (rows/s)", QUOTA, ours_rate,
        "rows/s", ">= 0.9 of the quota; resume pays rows + in-flight", passed, details,
    )
