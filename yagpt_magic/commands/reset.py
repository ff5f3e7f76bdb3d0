"""``%chat reset [-t T | --all]``: empty a thread, or every thread."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import UsageProblem
from . import thread_parser

if TYPE_CHECKING:
    from ..magics import ChatMagics


def run(magics: ChatMagics, argv: list[str]) -> None:
    parser = thread_parser("reset", all_flag=True)
    parser.set_defaults(thread=None)
    args = parser.parse_args(argv)
    if args.all and args.thread is not None:
        raise UsageProblem("%chat reset: use either -t THREAD or --all, not both.")
    names = list(magics.session.threads) if args.all else [args.thread or "default"]
    for name in names:
        magics.session.reset(name)
    print(f"Reset {'all threads' if args.all else repr(names[0])}.")
