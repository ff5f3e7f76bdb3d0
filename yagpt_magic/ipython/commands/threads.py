"""``%chat threads``: every thread with its turn count and tokens."""

from __future__ import annotations

import argparse

from ...display.reply import Table
from . import Context, Parser


def parser() -> Parser:
    return Parser("threads")


def run(ctx: Context, args: argparse.Namespace) -> Table:
    rows = [
        (name, len(t.turns), t.usage.total_tokens, "yes" if t.system_prompt else "")
        for name, t in ctx.session.threads.items()
    ]
    return Table(("thread", "turns", "tokens", "system prompt"), rows)
