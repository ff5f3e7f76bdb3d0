"""Figure 6: comm messages and bytes a ``ChatWidget`` sends for one new turn, by history length.

The front end is ``tests/commcount.py``'s counting comm (it records each message
with its JSON size as Jupyter would send it). Each history is figure 3's synthetic
thread; the new turn is sent through the widget's own Send button, and the
emulator answers every request with the same fixed reply in one chunk, so the
two turns differ only in how much history sits above them.
"""

from __future__ import annotations

import json
import re
from typing import Any

from .common import Row, chat_shell, emulator_process
from .history import synthetic_thread

MESSAGE = "One more question about the data frame?"


def shape(message: Any) -> str:
    """A message with widget ids and numbers blanked: what it says, not how big the counts are."""
    text = json.dumps([message.msg_type, message.data], sort_keys=True, default=str)
    return re.sub(r"\d+", "0", re.sub(r"[0-9a-f]{32}", "ID", text))


def new_turn(magics: Any, log: Any, size: int) -> tuple[int, int, list[str]]:
    """Messages, bytes, and each message's shape for a new turn on a ``size``-turn thread."""
    from yagpt_magic.widget.chat import ChatWidget

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
        return len(sent), sum(m.size for m in sent), [shape(m) for m in sent]
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
        # A window both histories overflow, so both replies carry the same "N earlier
        # turns left out" notice: like is compared with like, only N differs.
        magics.session.settings.set("context_window", 3_000)
        new_turn(magics, log, small)  # warm-up: first imports and first request
        messages_small, bytes_small, usage_small = new_turn(magics, log, small)
        messages_large, bytes_large, usage_large = new_turn(magics, log, large)
    # The usage line, the turn's meta line and the left-out notice show token totals, the
    # turn's number and how many turns were left out; more history means longer numbers,
    # so messages count as equal when they differ in numbers (and widget ids) only.
    equal = usage_small == usage_large
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
            "every message the same but for its numbers (token totals, the turn's number, "
            f"turns left out) and widget ids: {'yes' if equal else 'no'}",
        ],
    )
