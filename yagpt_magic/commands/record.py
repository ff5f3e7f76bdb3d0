"""``%chat record PATH.jsonl [--append]``: append every new turn to PATH as it completes.

The file starts with the threads as they are now, then gets one JSON line per turn
(and per undo, reset, system prompt change or load). ``--append`` continues an
existing recording instead of starting it afresh. ``%chat live`` stops recording.
"""

from __future__ import annotations

import argparse

from . import Context, Parser


def parser() -> Parser:
    parser = Parser("record")
    parser.add_argument("path", metavar="PATH.jsonl")
    parser.add_argument("--append", action="store_true", help="continue a recording")
    return parser


def run(ctx: Context, args: argparse.Namespace) -> None:
    ended = ctx.session.start_recording(args.path, append=args.append)
    before = f"{ended} ended; " if ended else ""
    print(f"{before}Recording: each new turn is appended to {args.path}. "
          "%chat live stops recording.")
