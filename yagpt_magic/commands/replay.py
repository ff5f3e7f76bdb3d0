"""``%chat replay PATH``: answer later turns from a transcript, offline and exactly.

A turn is answered only if its thread, position and exact messages match the
recorded turn; anything else fails the cell naming the first difference, and never
reaches the service. ``%chat live`` goes back to the service.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..transcript import ReplayFile
from . import Parser
from .live import stop

if TYPE_CHECKING:
    from ..magics import ChatMagics


def run(magics: ChatMagics, argv: list[str]) -> None:
    parser = Parser("replay")
    parser.add_argument("path")
    args = parser.parse_args(argv)
    source = ReplayFile(args.path)  # checked whole before the mode changes
    ended = stop(magics.session)
    magics.session.replay = source
    turns = sum(len(t.turns) for t in source.threads.values())
    before = f"{ended} ended; " if ended else ""
    print(f"{before}Replaying {turns} recorded turns from {args.path}: no request reaches "
          "the service. %chat live ends replay.")
