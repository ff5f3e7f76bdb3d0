"""Figure 1: one non-streamed ``%%chat`` turn against the SDK's ``run()`` with the same messages."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

from yagpt_magic.core.conversation import Message, messages_sha256

from .common import (
    EmulatorProcess,
    Row,
    chat_shell,
    emulator_process,
    fmt_time,
    interleave,
    median,
    run_cell,
    sdk_model,
)

SYSTEM = "You are a concise assistant for a data scientist."
QUESTION = "What fields of science did Albert Einstein study?"


class TurnProbe:
    """Runs ``%%chat`` turns on one thread and undoes each, so the history never grows.

    Only the ``run_cell`` of the ``%%chat`` cell is timed; the undo is not.
    """

    def __init__(self, shell: Any, thread: str, text: str) -> None:
        self.shell = shell
        self.thread = thread
        self.text = text
        self.cell = f"%%chat --no-stream -t {thread}\n{text}"
        self.magics = shell.magics_manager.registry["ChatMagics"]
        self.sent: list[Message] = []
        self.reply = ""

    def __call__(self) -> float:
        front_end = getattr(self.shell, "kernel", None)
        if front_end is not None:
            front_end.cell_id = uuid.uuid4().hex  # a new notebook cell each time
        elapsed = run_cell(self.shell, self.cell)
        thread = self.magics.session.threads[self.thread]
        turn = thread.turns[-1]
        if not self.sent:
            # The exact messages this turn sent, checked against the hash it recorded.
            start = turn.context_start or 0
            self.sent = thread.request(self.text, upto=len(thread.turns) - 1, start=start)
            if messages_sha256(self.sent) != turn.sha256:
                raise AssertionError("could not reconstruct the messages the turn sent")
            self.reply = turn.reply
        self.magics.session.undo(self.thread)
        return elapsed


def sdk_run(model: Any, messages: list[Message]) -> Callable[[], float]:
    """The baseline: ``model.run(messages)`` called by hand, timed."""

    def run() -> float:
        start = time.perf_counter()
        model.run(messages)
        return time.perf_counter() - start

    return run


def sdk_cell(shell: Any, model: Any, messages: list[Message]) -> Callable[[], float]:
    """The baseline as a user has it in a notebook: a cell that calls ``model.run``."""
    shell.user_ns.update(_bench_model=model, _bench_messages=messages)

    def run() -> float:
        return run_cell(shell, "_bench_reply = _bench_model.run(_bench_messages)")

    return run


def check_same_answer(model: Any, probe: TurnProbe) -> None:
    """The emulator's reply depends on every message, so equal replies mean equal requests."""
    if model.run(probe.sent).text != probe.reply:
        raise AssertionError("the SDK baseline and %%chat were not sent the same messages")


def measure(emu: EmulatorProcess, reps: int) -> Row:
    model = sdk_model(emu.address)
    with chat_shell(emu) as shell:
        magics = shell.magics_manager.registry["ChatMagics"]
        magics.session.set_system("turn", SYSTEM)
        probe = TurnProbe(shell, "turn", QUESTION)
        probe()
        check_same_answer(model, probe)
        base, ours = interleave(sdk_cell(shell, model, probe.sent), probe, reps=reps, warmup=10)
        raw, _ = interleave(sdk_run(model, probe.sent), probe, reps=reps, warmup=2)
        empty = [run_cell(shell, "pass") for _ in range(max(reps, 20))]
    b, o = median(base), median(ours)
    extra = o - b
    return Row(
        figure="1. turn overhead (median, non-streamed)",
        baseline=b,
        ours=o,
        unit="s",
        target="ratio <= 1.10 and <= +0.5 ms",
        passed=o / b <= 1.10 and extra <= 0.5e-3,
        details=[
            f"{reps} interleaved runs each; {len(probe.sent)} messages sent "
            f"(system + user), verified identical by hash and reply",
            "baseline: the same SDK call in a cell of the same shell (both pay IPython's "
            f"run_cell, {fmt_time(median(empty))} for an empty cell)",
            f"extra per turn: {fmt_time(extra)}; against a bare model.run() outside any cell "
            f"({fmt_time(median(raw))}): {fmt_time(o - median(raw))}, ratio {o / median(raw):.2f}",
        ],
    )


def run(quick: bool) -> Row:
    with emulator_process() as emu:
        return measure(emu, reps=5 if quick else 300)
