"""``%chat code [-t T] [N]``: the code blocks of the last (or N-th) reply into a new cell below.

The cell is only created, never run: read the code, then run it yourself. ``#N`` is the
turn ``%chat history`` and the widget show as #N; a bare ``N`` is a Python index (0 the
first turn, -1 the last).
"""

from __future__ import annotations

import argparse

from ...core.errors import UsageProblem
from ..workflow import code_blocks, pick_turn
from . import Context, Parser, thread_parser


def parser() -> Parser:
    parser = thread_parser("code")
    parser.add_argument("number", nargs="?", type=turn_index, metavar="#N|N",
                        help="the turn: #N as history shows it, or an index (default: the last)")
    return parser


def turn_index(value: str) -> int:
    """``#3`` (the number history and the widget show) as index 2; ``2`` or ``-1`` as is."""
    if value.startswith("#") and value[1:].isdigit() and int(value[1:]) >= 1:
        return int(value[1:]) - 1
    return int(value)  # argparse reports a ValueError as "invalid turn_index value"


def run(ctx: Context, args: argparse.Namespace) -> None:
    thread = ctx.session.thread(args.thread, create=False)
    index, turn = pick_turn(thread.turns, thread.name, args.number)
    blocks = code_blocks(turn.reply)
    if not blocks:
        raise UsageProblem(f"The reply of turn {index} of {thread.name!r} has no code blocks.")
    ctx.shell.set_next_input("\n\n".join(blocks), replace=False)
    what = "its code block" if len(blocks) == 1 else f"its {len(blocks)} code blocks"
    print(f"Turn {index} of {thread.name!r}: {what} went into a new cell below (not run).")
