"""``%chat undo [-t T]``: drop the last turn of a thread."""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import thread_parser
from .history import first_line

if TYPE_CHECKING:
    from ..magics import ChatMagics


def run(magics: ChatMagics, argv: list[str]) -> None:
    args = thread_parser("undo").parse_args(argv)
    turn = magics.session.undo(args.thread)
    print(f"Dropped the last turn of {args.thread!r}: {first_line(turn.user)}")
