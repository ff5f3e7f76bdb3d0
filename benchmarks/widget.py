"""Figure 6: comm messages and bytes a ``ChatWidget`` sends for one new turn, by history length.

The front end is ``tests/commcount.py``'s counting comm (it records each message
with its JSON size as Jupyter would send it). Each history is figure 3's synthetic
thread; the new turn is sent through the widget's own Send button, and the
emulator answers every request with the same fixed reply in one chunk, so the
two turns differ only in how much history sits above them.
"""

from __future__ import annotations

from typing import Any

from .common import Row, chat_shell, emulator_process
from .history import synthetic_thread

MESSAGE = "One more question about the data frame?"


def new_turn(magics: Any, log: Any, size: int) -> tuple[int, int, int]:
    """Messages, bytes, and the usage + meta lines' length for a turn on a ``size``-turn thread."""
    from yagpt_magic.widget import ChatWidget

    name = f"w{size}"
    magics.session.threads[name] = synthetic_thread(name, size)
    widget = ChatWidget(name, session=magics.session)
    try:
        mark = log.mark()
        widget.message_box.value = MESSAGE
        widget.send_button.click()
        if not widget.wait(60):
            raise RuntimeError("the widget's request did not finish")
        sent = log.since(mark)
        if len(magics.session.threads[name].turns) != size + 1:
            raise RuntimeError(f"the widget's turn failed: {widget.status_line.value}")
        numbers = len(widget.usage_line.value) + len(widget._turns[-1].meta.value)
        return len(sent), sum(m.size for m in sent), numbers
    finally:
        widget.close()
        del magics.session.threads[name]


def run(quick: bool) -> Row:
    from tests.commcount import counting_comms

    small, large = (10, 30) if quick else (10, 1_000)
    server = ("--reply-tokens", "60", "--chunks", "1")
    with (
        emulator_process(*server, module="benchmarks.server") as emu,
        chat_shell(emu, front_end=False) as shell,
        counting_comms() as log,
    ):
        magics = shell.magics_manager.registry["ChatMagics"]
        new_turn(magics, log, small)  # warm-up: first imports and first request
        messages_small, bytes_small, usage_small = new_turn(magics, log, small)
        messages_large, bytes_large, usage_large = new_turn(magics, log, large)
    # The usage line and the turn's meta line show token totals and the turn's number;
    # more history means longer numbers.
    digits = usage_large - usage_small
    equal = messages_small == messages_large and bytes_large - bytes_small == digits
    return Row(
        figure=f"6. widget bytes per new turn, {large:,} vs {small} turns",
        baseline=bytes_small,
        ours=bytes_large,
        unit="B",
        target="equal",
        passed=equal,
        details=[
            f"messages per turn: {messages_small} at {small} turns, {messages_large} at "
            f"{large:,}; bytes {bytes_small} and {bytes_large}",
            f"of the byte difference, {digits} are the usage and meta lines' longer numbers "
            "(counted as equal: the same message, bigger numbers)",
        ],
    )
