"""``%chat undo [-t T]``: drop the last turn of a thread."""

from __future__ import annotations

import argparse

from . import Context, Parser, thread_parser
from .history import first_line


def parser() -> Parser:
    return thread_parser("undo")


def run(ctx: Context, args: argparse.Namespace) -> None:
    turn = ctx.session.undo(args.thread)
    print(f"Dropped the last turn of {args.thread!r}: {first_line(turn.user)}")
