"""Figure 7: one ``%%chat --tools`` turn (a call, its result, the answer) against the same
two requests made by hand with the SDK's function tools."""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Callable

from yagpt_magic.core.conversation import Message

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
from .turn import TurnProbe

QUESTION = 'What is the mean of "price"? Use lookup.'
DEFINE = '''
def lookup(column: str, digits: int = 2) -> str:
    """Mean of one column of the sales table."""
    return f"mean of {column} is {42.5:.{digits}f}"
'''
#: The user's by-hand loop: offer the tool, run the call, send its result, get the answer.
BY_HAND = '''
_r = _bench_model.run(_bench_messages)
_results = [{"name": c.function.name, "content": str(lookup(**c.function.arguments))}
            for c in _r.tool_calls]
_bench_reply = _bench_model.run(
    [*_bench_messages, _r.alternatives[0], {"role": "user", "tool_results": _results}])
'''


def quiet(timed: Callable[[], float]) -> Callable[[], float]:
    """Both sides print nothing to a console here: %%chat's call lines go to a buffer."""

    def run() -> float:
        with contextlib.redirect_stdout(io.StringIO()):
            return timed()

    return run


def measure(emu: EmulatorProcess, reps: int) -> Row:
    with chat_shell(emu) as shell:
        run_cell(shell, DEFINE)
        run_cell(shell, '%config ChatMagics.tool_calls = "auto"')
        magics = shell.magics_manager.registry["ChatMagics"]
        probe = TurnProbe(shell, "tools", QUESTION)
        probe.cell = f"%%chat --no-stream -t tools --tools lookup\n{QUESTION}"
        quiet(probe)()
        tool = magics.session._tool_cache["lookup"].definition
        base = sdk_model(emu.address)
        from yagpt_magic.service.sdk_loop import import_sdk

        sdk = import_sdk().YCloudML(folder_id="unused", auth="unused")
        function = sdk.tools.function(json.loads(tool.parameters), name=tool.name,
                                      description=tool.description)
        model = base.configure(tools=[function])
        messages: list[Message] = list(probe.sent)
        shell.user_ns.update(_bench_model=model, _bench_messages=messages)
        run_cell(shell, BY_HAND)
        if shell.user_ns["_bench_reply"].text != probe.reply:
            raise AssertionError("the by-hand loop and %%chat --tools were not sent the same")

        def by_hand() -> float:
            return run_cell(shell, BY_HAND)

        baseline, ours = interleave(quiet(by_hand), quiet(probe), reps=reps, warmup=5)
    b, o = median(baseline), median(ours)
    return Row(
        figure="8. tool turn overhead (call + answer, non-streamed)",
        baseline=b,
        ours=o,
        unit="s",
        target="ratio <= 1.15 and <= +1 ms",
        passed=o / b <= 1.15 and o - b <= 1e-3,
        details=[
            f"{reps} interleaved runs each; both send the same 2 requests (checked by the "
            "emulator's reply, which depends on every message) and run the function once",
            "baseline: a cell that offers the tool with sdk.tools.function, runs the call "
            "and sends the result back by hand",
            f"extra per tool turn: {fmt_time(o - b)} (schema cached per function; the "
            "call and result lines are printed into the cell)",
        ],
    )


def run(quick: bool) -> Row:
    with emulator_process() as emu:
        return measure(emu, reps=5 if quick else 200)
