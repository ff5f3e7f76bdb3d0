"""Figures 10 and 11: a turn on the OpenAI-compatible API (HTTP), by figure 1's method.

10. One non-streamed ``%%chat -m qwen3-235b-a22b-fp8`` turn against the SDK's ``chat``
    domain called by hand in a cell with the same messages, interleaved; and, in the
    same run, the gRPC turn of figure 1 against ``models.completions`` by hand. The
    claim: the HTTP turn costs the same ratio over its baseline as the gRPC turn does.
11. The first words of a streamed reply: from the cell's start to the first display
    that shows reply text, against the SDK's ``run_stream`` by hand to its first chunk,
    with the emulator waiting a fixed time before the first token (so both wait on the
    same thing and the difference is the client's).
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from .common import (
    EmulatorProcess,
    Row,
    chat_shell,
    emulator_process,
    fmt_time,
    interleave,
    median,
    run_cell,
    sdk_chat_model,
    sdk_model,
)
from .turn import QUESTION, SYSTEM, TurnProbe, check_same_answer, sdk_cell

QWEN = "qwen3-235b-a22b-fp8"
#: The emulator's wait before a streamed reply's first token (figure 11).
FIRST_TOKEN = 0.2


class ModelProbe(TurnProbe):
    """``TurnProbe`` with ``-m MODEL`` on its ``%%chat`` line."""

    def __init__(self, shell: Any, thread: str, text: str, model: str) -> None:
        super().__init__(shell, thread, text)
        self.cell = f"%%chat --no-stream -m {model} -t {thread}\n{text}"


def ratio_of(shell: Any, model: Any, probe: TurnProbe, reps: int) -> tuple[float, float]:
    """(baseline, ours) medians of interleaved runs, after checking both send the same."""
    probe()
    check_same_answer(model, probe)
    base, ours = interleave(sdk_cell(shell, model, probe.sent), probe, reps=reps, warmup=10)
    return median(base), median(ours)


def turn_figure(emu: EmulatorProcess, reps: int) -> Row:
    chat = sdk_chat_model(emu, QWEN)
    grpc = sdk_model(emu.address)
    with chat_shell(emu) as shell:
        session = shell.magics_manager.registry["ChatMagics"].session
        for thread in ("http", "grpc"):
            session.set_system(thread, SYSTEM)
        http_base, http_ours = ratio_of(shell, chat, ModelProbe(shell, "http", QUESTION, QWEN),
                                        reps)
        grpc_base, grpc_ours = ratio_of(shell, grpc, TurnProbe(shell, "grpc", QUESTION), reps)
        run_cell(shell, f"%%chat --no-stream -m {QWEN} -t http\n{QUESTION}")
        api = session.threads["http"].turns[-1].api
    http_ratio, grpc_ratio = http_ours / http_base, grpc_ours / grpc_base
    return Row(
        figure="10. HTTP API turn overhead (Qwen3, non-streamed)",
        baseline=http_base,
        ours=http_ours,
        unit="s",
        target="ratio <= gRPC turn's ratio + 0.05 (figure 1's method)",
        passed=http_ratio <= grpc_ratio + 0.05,
        details=[
            f"{reps} interleaved runs each; 2 messages sent (system + user), verified "
            "identical by hash and reply; baseline: sdk.chat.completions(...).run in a cell",
            f"HTTP: SDK {fmt_time(http_base)}, %%chat {fmt_time(http_ours)}, extra "
            f"{fmt_time(http_ours - http_base)}, ratio {http_ratio:.3f}",
            f"gRPC (same run): SDK {fmt_time(grpc_base)}, %%chat {fmt_time(grpc_ours)}, extra "
            f"{fmt_time(grpc_ours - grpc_base)}, ratio {grpc_ratio:.3f}",
            f"the turn's metadata records the API: {api or 'nothing'}",
        ],
    )


class FirstWords:
    """Seconds from a cell's start to the first output that shows reply text."""

    def __init__(self, shell: Any, model: str) -> None:
        self.shell = shell
        self.cell = f"%%chat -m {model} -t first\n{QUESTION}"
        self.times: list[float] = []
        publish = shell.display_pub.publish

        def timed(data: dict[str, Any], *args: Any, **kwargs: Any) -> None:
            text = str(data.get("text/plain", ""))
            if text and not text.startswith("Waiting"):
                self.times.append(time.perf_counter())
            publish(data, *args, **kwargs)

        shell.display_pub.publish = timed

    def __call__(self) -> float:
        self.shell.kernel.cell_id = uuid.uuid4().hex
        self.times.clear()
        start = time.perf_counter()
        run_cell(self.shell, self.cell)
        self.shell.magics_manager.registry["ChatMagics"].session.undo("first")
        return self.times[0] - start


def first_chunk(shell: Any, model: Any) -> Any:
    """The baseline: the SDK's ``run_stream`` in a cell, timed to its first chunk."""
    shell.user_ns.update(_bench_model=model, _bench_messages=[
        {"role": "user", "text": QUESTION}])
    code = ("_bench_t0 = __import__('time').perf_counter()\n"
            "for _bench_chunk in _bench_model.run_stream(_bench_messages):\n"
            "    _bench_first = __import__('time').perf_counter() - _bench_t0\n"
            "    break\n")

    def run() -> float:
        run_cell(shell, code)
        return float(shell.user_ns["_bench_first"])

    return run


def first_token_figure(emu: EmulatorProcess, reps: int) -> Row:
    chat = sdk_chat_model(emu, QWEN)
    with chat_shell(emu) as shell:
        base, ours = interleave(first_chunk(shell, chat), FirstWords(shell, QWEN), reps=reps,
                                warmup=3)
    b, o = median(base), median(ours)
    return Row(
        figure="11. first words of a streamed HTTP reply",
        baseline=b,
        ours=o,
        unit="s",
        target="<= +5 ms after the SDK yields the first chunk",
        passed=o - b <= 5e-3,
        details=[
            f"{reps} interleaved runs each; the emulator waits {FIRST_TOKEN * 1e3:.0f} ms "
            "before the first token",
            "baseline: the cell's start to sdk.chat run_stream's first chunk; ours: the "
            "cell's start to the first display showing reply text",
            f"extra: {fmt_time(o - b)} (worst run: ours {fmt_time(max(ours))}, "
            f"SDK {fmt_time(max(base))})",
        ],
    )


def run(quick: bool) -> Row:
    with emulator_process() as emu:
        return turn_figure(emu, reps=5 if quick else 300)


def run_first_token(quick: bool) -> Row:
    with emulator_process("--first-token", str(FIRST_TOKEN), "--per-token", "0.0005",
                          "--service-time-sigma", "0") as emu:
        return first_token_figure(emu, reps=3 if quick else 40)
