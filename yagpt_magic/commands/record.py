"""``%chat record PATH.jsonl [--append]``: append every committed turn to PATH as it completes.

The file starts with the threads as they are now, then gets one JSON line per turn
(and per undo, reset, system prompt change or load). ``--append`` continues an
existing recording instead of starting it afresh. ``%chat live`` stops recording.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..transcript import Recorder
from . import Parser
from .live import stop

if TYPE_CHECKING:
    from ..magics import ChatMagics


def run(magics: ChatMagics, argv: list[str]) -> None:
    parser = Parser("record")
    parser.add_argument("path")
    parser.add_argument("--append", action="store_true")
    args = parser.parse_args(argv)
    ended = stop(magics.session)
    magics.session.recorder = Recorder(args.path, magics.session, append=args.append)
    before = f"{ended} ended; " if ended else ""
    print(f"{before}Recording: each new turn is appended to {args.path}. "
          "%chat live stops recording.")
