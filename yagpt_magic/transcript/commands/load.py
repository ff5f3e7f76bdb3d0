"""``%chat load PATH [-t T]``: rebuild threads from a transcript (.ipynb, .md, .json, .jsonl).

Without ``-t`` every thread in the file replaces the thread of the same name (other
threads are kept). With ``-t T`` only thread T is taken from the file; a file that
holds a single thread is loaded as T whatever it was called, so a saved ``default``
can come back as ``review``. The whole file is checked before anything changes.
"""

from __future__ import annotations

import argparse

from ...core.errors import TranscriptError
from ...display.reply import count
from ...ipython.commands import Context, Parser, thread_name
from ..formats import load_threads


def parser() -> Parser:
    parser = Parser("load")
    parser.add_argument("path", metavar="PATH")
    parser.add_argument("-t", "--thread", metavar="T", type=thread_name,
                        help="load only this thread, as T")
    return parser


def run(ctx: Context, args: argparse.Namespace) -> None:
    threads = load_threads(args.path)
    if args.thread is not None:
        if args.thread in threads:
            chosen = threads[args.thread]
        elif len(threads) == 1:
            chosen = next(iter(threads.values()))
        else:
            names = ", ".join(map(repr, threads))
            raise TranscriptError(
                f"{args.path}: no thread {args.thread!r} (it holds {names}); nothing was changed."
            )
        chosen.name = args.thread
        threads = {args.thread: chosen}
    ctx.session.replace_threads(threads)
    summary = ", ".join(f"{name!r} ({count(len(t.turns), 'turn')})" for name, t in threads.items())
    print(f"Loaded {summary} from {args.path}.")
