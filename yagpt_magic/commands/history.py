"""``%chat history [-t T]``: the turns of a thread."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..view import Table
from . import thread_parser

if TYPE_CHECKING:
    from ..magics import ChatMagics


def first_line(text: str, width: int = 60) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= width else line[: width - 1] + "…"


def run(magics: ChatMagics, argv: list[str]) -> Table:
    args = thread_parser("history").parse_args(argv)
    thread = magics.session.thread(args.thread, create=False)
    rows = [
        (
            index,
            first_line(turn.user),
            first_line(turn.reply),
            turn.usage.total_tokens,
            turn.model.rsplit("/", 2)[-2] if turn.model.count("/") >= 2 else turn.model,
            "stale" if turn.stale else "",
        )
        for index, turn in enumerate(thread.turns)
    ]
    system = f" — system: {first_line(thread.system_prompt)}" if thread.system_prompt else ""
    title = f"Thread {thread.name!r}: {len(thread.turns)} turns{system}"
    headers = ("#", "message", "reply", "tokens", "model", "stale")
    return Table(headers, rows, title, inline=("message", "reply"))
