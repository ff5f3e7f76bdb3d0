"""``%chat usage [-t T]``: input, completion, reasoning and total tokens of a thread so far."""

from __future__ import annotations

import argparse

from ...display.reply import Table
from . import Context, Parser, thread_parser


def parser() -> Parser:
    return thread_parser("usage")


def run(ctx: Context, args: argparse.Namespace) -> Table:
    u = ctx.session.thread(args.thread, create=False).usage
    rows = [
        ("input", u.input_tokens),
        ("completion", u.completion_tokens),
        ("reasoning", u.reasoning_tokens),
        ("total", u.total_tokens),
    ]
    return Table(("tokens", "count"), rows, f"Usage of thread {args.thread!r}")
