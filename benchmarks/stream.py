"""Figure 4: a 20,000-token reply streamed through ``%%chat`` against draining ``run_stream()``.

Both run in a real ipykernel, so the display updates counted are the iopub messages
a front end receives, and the CPU measured includes serialising them. The emulator
runs in its own process (``benchmarks.server``) streaming the reply in 1,000 chunks
of 20 tokens, each carrying the cumulative text as the service does (the emulator's
default of one chunk per four tokens makes its own side quadratic and too slow).
Client CPU is the kernel process's ``time.process_time()`` (all its threads) read
just before and just after the cell, through user expressions.
"""

from __future__ import annotations

import hashlib
import time
from datetime import timedelta
from typing import Any

from .common import (
    FOLDER,
    KEY,
    TEMPERATURE,
    Kernel,
    Row,
    emulator_process,
    fmt_time,
    interleave,
    median,
)

PROMPT = "Write a long essay about how notebooks stream replies."
THREAD = "stream"
_CPU = {"cpu": "__import__('time').process_time()"}


def setup(address: str, tokens: int) -> str:
    return (
        "%load_ext yagpt_magic\n"
        "import hashlib\n"
        "from yagpt_magic.service.sdk_loop import import_sdk\n"
        "from yandex_cloud_ml_sdk.retry import RetryPolicy\n"
        f"_bench_model = import_sdk().YCloudML(folder_id={FOLDER!r}, auth={KEY!r}, "
        f"endpoint={address!r}, verify=False, retry_policy=RetryPolicy(max_attempts=1), "
        "enable_server_data_logging=False).models.completions('yandexgpt').configure("
        f"temperature={TEMPERATURE}, max_tokens={tokens})\n"
        f"_bench_msgs = [{{'role': 'user', 'text': {PROMPT!r}}}]\n"
    )


BASELINE = "for _bench_r in _bench_model.run_stream(_bench_msgs):\n    pass\n"


def ours_cell(tokens: int) -> str:
    return f"%%chat -t {THREAD} --max-tokens {tokens} -o _bench_reply\n{PROMPT}"


def most_in_a_second(messages: list[dict[str, Any]]) -> int:
    """The most display messages sent within any one second (a sliding window)."""
    times = sorted(m["header"]["date"] for m in messages)
    most = 0
    first = 0
    for last, at in enumerate(times):
        while at - times[first] >= timedelta(seconds=1):
            first += 1
        most = max(most, last - first + 1)
    return most


class Run:
    """One measured cell: kernel CPU, wall time, and what it displayed."""

    def __init__(self, kernel: Kernel, code: str) -> None:
        before = kernel.execute("", expressions=_CPU).expression("cpu")
        start = time.perf_counter()
        done = kernel.execute(code)
        self.wall = time.perf_counter() - start
        self.cpu = kernel.execute("", expressions=_CPU).expression("cpu") - before
        self.displays = done.of_type("display_data", "update_display_data")


def run(quick: bool) -> Row:
    tokens, chunks = (500, 25) if quick else (20_000, 1_000)
    reps = 2 if quick else 7
    server = ("--reply-tokens", str(tokens), "--chunks", str(chunks))
    with (
        emulator_process(*server, module="benchmarks.server") as emu,
        Kernel(emu.env()) as kernel,
    ):
        kernel.execute(setup(emu.address, tokens))
        undo = f"get_ipython()._yagpt_magic.session.undo({THREAD!r})"

        def baseline() -> Run:
            return Run(kernel, BASELINE)

        def ours() -> Run:
            measured = Run(kernel, ours_cell(tokens))
            kernel.execute(undo)
            return measured

        # Warm both, and check the outputs once: the stored reply, the -o variable and
        # the final text/plain the front end shows all equal the SDK's final text.
        baseline()
        first = Run(kernel, ours_cell(tokens))
        hashes = kernel.execute(
            "", expressions={
                "sdk": "hashlib.sha256(_bench_r.text.encode()).hexdigest()",
                "ours": "hashlib.sha256(_bench_reply.encode()).hexdigest()",
                "stored": "hashlib.sha256(get_ipython()._yagpt_magic.session"
                          f".threads[{THREAD!r}].turns[-1].reply.encode()).hexdigest()",
                "length": "len(_bench_r.text)",
            },
        )
        kernel.execute(undo)
        shown = first.displays[-1]["content"]["data"]["text/plain"]
        sdk_hash = hashes.expression("sdk")
        identical = (
            sdk_hash == hashes.expression("ours") == hashes.expression("stored")
            == hashlib.sha256(shown.encode()).hexdigest()
        )
        base, mine = interleave(baseline, ours, reps=reps, warmup=0)
    b = median([r.cpu for r in base])
    o = median([r.cpu for r in mine])
    rate = max(most_in_a_second(r.displays) for r in [first, *mine])
    updates = median([len(r.displays) for r in mine])
    return Row(
        figure=f"4. streaming {tokens:,} tokens (client CPU)",
        baseline=b,
        ours=o,
        unit="s",
        target="CPU <= 1.5x; <= 20 updates/s; identical",
        passed=o / b <= 1.5 and rate <= 20 and identical,
        details=[
            f"{reps} interleaved runs each in one ipykernel, {chunks} chunks; wall: SDK "
            f"{fmt_time(median([r.wall for r in base]))}, %%chat "
            f"{fmt_time(median([r.wall for r in mine]))}",
            f"display messages per reply: {updates:.0f}; most in any one second: {rate}",
            f"final output identical to the SDK's text "
            f"({hashes.expression('length')} characters): {'yes' if identical else 'NO'}",
        ],
    )
