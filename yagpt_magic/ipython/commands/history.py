"""``%chat history [-t T]``: the turns of a thread: message, reply, tool calls, tokens, model."""

from __future__ import annotations

import argparse

from ...core.conversation import Turn
from ...core.models import model_name
from ...display.reply import Table, count
from . import Context, Parser, thread_parser


def first_line(text: str, width: int = 60) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= width else line[: width - 1] + "…"


def tool_calls(turn: Turn, width: int = 60) -> str:
    """The turn's calls in order, each with what came of it: ``total() → 1234``."""
    from ...core.tools import describe

    shown = []
    for tool_round in turn.tool_rounds:
        for call in tool_round.calls:
            result = "not run" if call.outcome in ("refused", "unknown") else call.result
            shown.append(f"{describe(call.name, call.arguments, 40)} → {first_line(result, 30)}")
    return first_line("; ".join(shown), width) if shown else ""


def parser() -> Parser:
    return thread_parser("history")


def run(ctx: Context, args: argparse.Namespace) -> Table:
    thread = ctx.session.thread(args.thread, create=False)
    rows = [
        (
            index + 1,  # as the widget numbers them (#1 is the first); %chat code #N
            first_line(turn.user),
            first_line(turn.reply),
            tool_calls(turn),
            turn.spent.total_tokens,
            model_name(turn.model),
            "stale" if turn.stale else "",
        )
        for index, turn in enumerate(thread.turns)
    ]
    system = f" — system: {first_line(thread.system_prompt)}" if thread.system_prompt else ""
    title = f"Thread {thread.name!r}: {count(len(thread.turns), 'turn')}{system}"
    headers = ("#", "message", "reply", "tool calls", "tokens", "model", "stale")
    return Table(headers, rows, title, inline=("message", "reply"))
