"""``%chat restore [PATH]``: rebuild threads from this notebook's ``%%chat`` cells.

Without PATH it reads the notebook this kernel serves (``__session__`` or env
``JPY_SESSION_NAME``), so a kernel restart loses no history: each ``%%chat`` cell
with reply metadata becomes its turn again, keyed by the cell's id so re-running it
replaces the turn in place. Cells never run, or that failed, are skipped and counted.
It reads the file as last saved: outputs not yet saved by the front end are not in it.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from ...core.errors import UsageProblem
from ...display.reply import count
from ...ipython.commands import Context, Parser
from ..formats import read_notebook


def this_notebook(user_ns: dict[str, Any]) -> Path:
    """The path of the notebook the kernel serves, as the front end told it."""
    name = user_ns.get("__session__") or os.environ.get("JPY_SESSION_NAME")
    if not name:
        raise UsageProblem(
            "This kernel does not know its notebook's path (no __session__ or "
            "JPY_SESSION_NAME); give it: %chat restore PATH.ipynb"
        )
    path = Path(name).expanduser()
    if not path.exists() and not path.is_absolute() and Path(path.name).exists():
        path = Path(path.name)  # the server's path is relative to its root, not our cwd
    return path


def parser() -> Parser:
    parser = Parser("restore")
    parser.add_argument("path", nargs="?", metavar="PATH")
    return parser


def run(ctx: Context, args: argparse.Namespace) -> None:
    path = Path(args.path).expanduser() if args.path else this_notebook(ctx.shell.user_ns)
    found = read_notebook(path, use_cell_ids=True, strict=False)
    ctx.session.replace_threads(found.threads)
    turns = sum(len(t.turns) for t in found.threads.values())
    names = ", ".join(f"{n!r} ({len(t.turns)})" for n, t in found.threads.items()) or "none"
    notes = []
    if found.unanswered:
        notes.append(f"skipped {found.unanswered} %%chat cells without a reply "
                     "(never run, or failed)")
    if found.interpolated:
        notes.append(f"skipped {found.interpolated} --vars cells, whose sent text the "
                     "notebook does not keep")
    stale = sum(t.stale for th in found.threads.values() for t in th.turns)
    if stale:
        notes.append(f"{count(stale, 'turn')} {'is' if stale == 1 else 'are'} stale (a cell "
                     "above was re-run)")
    tail = "; " + "; ".join(notes) if notes else ""
    print(f"Restored {count(turns, 'turn')} from {path}: threads {names}{tail}.")
