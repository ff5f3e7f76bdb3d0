"""``%chat save PATH [-t T] [--force]``: write threads to a transcript file.

The extension picks the format (.ipynb, .md, .json, .jsonl). Without ``-t`` every
thread that has turns or a system prompt is saved. A file yagpt-magic did not write
is not overwritten unless ``--force``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import UsageProblem
from ..transcript import save_threads
from . import Parser

if TYPE_CHECKING:
    from ..magics import ChatMagics


def run(magics: ChatMagics, argv: list[str]) -> None:
    parser = Parser("save")
    parser.add_argument("path")
    parser.add_argument("-t", "--thread")
    parser.add_argument("--force", action="store_true")
    args = parser.parse_args(argv)
    session = magics.session
    if args.thread is not None:
        threads = [session.thread(args.thread, create=False)]
    else:
        threads = [t for t in session.threads.values() if t.turns or t.system_prompt]
        if not threads:
            raise UsageProblem("There is nothing to save yet: every thread is empty.")
    threads = session.copies(threads)
    path = save_threads(threads, args.path, force=args.force)
    turns = sum(len(t.turns) for t in threads)
    names = ", ".join(repr(t.name) for t in threads)
    print(f"Saved {turns} turns of {names} to {path}.")
