"""``%chat live``: end recording or replay; turns go to the service as usual."""

from __future__ import annotations

import argparse

from ...ipython.commands import Context, Parser
from ..modes import go_live


def parser() -> Parser:
    return Parser("live")


def run(ctx: Context, args: argparse.Namespace) -> None:
    ended = go_live(ctx.session, ctx.live)
    print(f"{ended} ended; turns are answered live again." if ended
          else "Already live: neither recording nor replaying.")
