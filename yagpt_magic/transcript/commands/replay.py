"""``%chat replay PATH``: answer from PATH, offline; ``%chat live`` ends either mode.

A turn is answered only if its thread, position and exact messages match the
recorded turn; anything else fails the cell naming the first difference, and never
reaches the service.
"""

from __future__ import annotations

import argparse

from ...display.reply import count
from ...ipython.commands import Context, Parser
from ..modes import start_replay


def parser() -> Parser:
    parser = Parser("replay")
    parser.add_argument("path", metavar="PATH")
    return parser


def run(ctx: Context, args: argparse.Namespace) -> None:
    ended, turns = start_replay(ctx.session, ctx.live, args.path)
    before = f"{ended} ended; " if ended else ""
    print(f"{before}Replaying {count(turns, 'recorded turn')} from {args.path}: no request reaches "
          "the service. %chat live ends replay.")
