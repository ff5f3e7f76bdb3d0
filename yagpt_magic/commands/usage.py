"""``%chat usage [-t T]``: tokens used so far by a thread."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..view import Table
from . import thread_parser

if TYPE_CHECKING:
    from ..magics import ChatMagics


def run(magics: ChatMagics, argv: list[str]) -> Table:
    args = thread_parser("usage").parse_args(argv)
    u = magics.session.thread(args.thread, create=False).usage
    rows = [
        ("input", u.input_tokens),
        ("completion", u.completion_tokens),
        ("reasoning", u.reasoning_tokens),
        ("total", u.total_tokens),
    ]
    return Table(("tokens", "count"), rows, f"Usage of thread {args.thread!r}")
