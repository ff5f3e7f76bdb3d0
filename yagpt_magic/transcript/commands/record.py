"""``%chat record PATH [--append]``: write every new turn to PATH as it completes.

Any format ``%chat save`` writes (.ipynb, .md, .json, .jsonl). The file starts with
the threads as they are now and is replaced atomically after each turn (and each
undo, reset, system prompt change or load), so a crash never leaves it half-written.
``--append`` continues an existing .jsonl recording instead of starting it afresh.
``%chat live`` stops recording.
"""

from __future__ import annotations

import argparse

from ...ipython.commands import Context, Parser
from ..modes import start_recording


def parser() -> Parser:
    parser = Parser("record")
    parser.add_argument("path", metavar="PATH")
    parser.add_argument("--append", action="store_true", help="continue a .jsonl recording")
    return parser


def run(ctx: Context, args: argparse.Namespace) -> None:
    ended = start_recording(ctx.session, ctx.live, args.path, append=args.append)
    before = f"{ended} ended; " if ended else ""
    print(f"{before}Recording: each new turn is written to {args.path} as it completes. "
          "%chat live stops recording.")
