"""``%chat save PATH [-t T] [--force]``: write a transcript (.ipynb, .md, .json or .jsonl).

The extension picks the format. Without ``-t`` every thread that has turns or a
system prompt is saved. A file yagpt-magic did not write is not overwritten unless
``--force``.
"""

from __future__ import annotations

import argparse

from ...core.errors import UsageProblem
from ...display.reply import count
from ...ipython.commands import Context, Parser, thread_name
from ..formats import save_threads


def parser() -> Parser:
    parser = Parser("save")
    parser.add_argument("path", metavar="PATH")
    parser.add_argument("-t", "--thread", metavar="T", type=thread_name, help="only this thread")
    parser.add_argument("--force", action="store_true",
                        help="overwrite a file yagpt-magic did not write")
    return parser


def run(ctx: Context, args: argparse.Namespace) -> None:
    session = ctx.session
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
    print(f"Saved {count(turns, 'turn')} of {names} to {path}.")
