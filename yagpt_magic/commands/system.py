"""``%chat system TEXT [-t T]``: set a thread's system prompt; no text clears it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import Parser

if TYPE_CHECKING:
    from ..magics import ChatMagics


def run(magics: ChatMagics, argv: list[str]) -> None:
    parser = Parser("system")
    parser.add_argument("-t", "--thread", default="default")
    parser.add_argument("text", nargs="*")
    args = parser.parse_args(argv)
    text = " ".join(args.text)
    magics.session.set_system(args.thread, text)
    print(f"System prompt of {args.thread!r} {'set' if text else 'cleared'}.")
