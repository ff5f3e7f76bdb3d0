"""``%chat cache [clear]``: where --map keeps answered rows, how many, how big; clear forgets them.

The cache (``ChatMagics.cache_dir``) holds prompts and replies, readable by you only.
A row is kept under the service, model, settings and messages that produced it, so a
re-run pays only for rows not answered yet and never gets another service's answer.
Past 256 MB at the end of a job, the rows used longest ago are dropped.
"""

from __future__ import annotations

import argparse

from ...display.reply import Table
from ...ipython.commands import Context, Parser


def parser() -> Parser:
    parser = Parser("cache")
    parser.add_argument("action", nargs="?", choices=("clear",),
                        help="clear: forget every kept row and deferred job")
    return parser


def _size(size: float) -> str:
    if size < 1024:
        return f"{int(size):,} bytes"
    for unit in ("KB", "MB"):
        size /= 1024
        if size < 1024:
            return f"{size:,.1f} {unit}"
    return f"{size / 1024:,.1f} GB"


def run(ctx: Context, args: argparse.Namespace) -> Table | None:
    from ..row_cache import MAX_BYTES, RowCache

    cache = RowCache(ctx.session.settings.cache_dir or None)
    if args.action == "clear":
        forgotten = cache.clear()
        print(f"Cleared the row cache at {cache.directory}: {forgotten:,} rows forgotten.")
        return None
    stats = cache.stats()
    rows = [
        ("where", str(stats.path)),
        ("rows", f"{stats.rows:,}"),
        ("size", f"{_size(stats.size)} (trimmed past {_size(MAX_BYTES)}, oldest use first)"),
    ]
    if stats.pending or stats.jobs:
        rows.append(("--deferred", f"{stats.jobs:,} jobs, {stats.pending:,} rows still running"))
    return Table(("row cache", ""), rows, "%chat cache clear empties it")
