"""``%chat threads``: every thread with its turn count and tokens."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..view import Table
from . import Parser

if TYPE_CHECKING:
    from ..magics import ChatMagics


def run(magics: ChatMagics, argv: list[str]) -> Table:
    Parser("threads").parse_args(argv)
    rows = [
        (name, len(t.turns), t.usage.total_tokens, "yes" if t.system_prompt else "")
        for name, t in magics.session.threads.items()
    ]
    return Table(("thread", "turns", "tokens", "system prompt"), rows)
