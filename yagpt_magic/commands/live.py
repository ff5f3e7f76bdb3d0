"""``%chat live``: end recording or replay; turns go to the service as usual."""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import Parser

if TYPE_CHECKING:
    from ..magics import ChatMagics
    from ..session import ChatSession


def stop(session: ChatSession) -> str:
    """End record or replay mode; returns which one ended ('' if neither)."""
    ended = []
    if session.recorder is not None:
        close = getattr(session.recorder, "close", None)
        if close is not None:
            close()
        session.recorder = None
        ended.append("recording")
    if session.replay is not None:
        session.replay = None
        ended.append("replay")
    return " and ".join(ended).capitalize()


def run(magics: ChatMagics, argv: list[str]) -> None:
    Parser("live").parse_args(argv)
    ended = stop(magics.session)
    print(f"{ended} ended; turns are answered live again." if ended
          else "Already live: neither recording nor replaying.")
