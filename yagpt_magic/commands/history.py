"""``%chat history [-t T]``: the turns of a thread: message, reply, tokens, model, stale."""

from __future__ import annotations

import argparse

from ..view import Table
from . import Context, Parser, thread_parser


def first_line(text: str, width: int = 60) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= width else line[: width - 1] + "…"


def parser() -> Parser:
    return thread_parser("history")


def run(ctx: Context, args: argparse.Namespace) -> Table:
    thread = ctx.session.thread(args.thread, create=False)
    rows = [
        (
            index,
            first_line(turn.user),
            first_line(turn.reply),
            turn.usage.total_tokens,
            turn.model.rsplit("/", 2)[-2] if turn.model.count("/") >= 2 else turn.model,
            "stale" if turn.stale else "",
        )
        for index, turn in enumerate(thread.turns)
    ]
    system = f" — system: {first_line(thread.system_prompt)}" if thread.system_prompt else ""
    title = f"Thread {thread.name!r}: {len(thread.turns)} turns{system}"
    headers = ("#", "message", "reply", "tokens", "model", "stale")
    return Table(headers, rows, title, inline=("message", "reply"))
