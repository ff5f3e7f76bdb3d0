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

from ...core.errors import ConfigProblem, UsageProblem
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
    for name, missing in found.missing.items():
        numbers = ", ".join(f"#{i + 1}" for i in missing)
        notes.append(f"turn{'s' if len(missing) > 1 else ''} {numbers} of {name!r} "
                     f"{'are' if len(missing) > 1 else 'is'} in no cell (a widget turn?) and "
                     "could not be restored")
        later = found.after_missing.get(name, 0)
        if later:
            notes.append(f"{count(later, 'turn')} after it {'is' if later == 1 else 'are'} "
                         f"stale: {'it was' if later == 1 else 'they were'} answered with that "
                         "turn as context")
    stale = sum(t.stale for th in found.threads.values() for t in th.turns) - sum(
        found.after_missing.values())
    if stale:
        notes.append(f"{count(stale, 'turn')} {'is' if stale == 1 else 'are'} stale (a cell "
                     "above was re-run)")
    tail = "; " + "; ".join(notes) if notes else ""
    print(f"Restored {count(turns, 'turn')} from {path}: threads {names}{tail}.")
    offline = [t for th in found.threads.values() for t in th.turns if OFFLINE in t.model]
    if offline and ctx.live.offline is None:
        print(_offline_again(ctx))


#: The folder in the model URI of every reply the built-in emulator gives.
OFFLINE = "://offline/"


def _offline_again(ctx: Context) -> str:
    """The restored turns came from the emulator: start it again unless credentials are
    set (then say where later turns go)."""
    try:
        connection = ctx.live.connection()  # YAGPT_OFFLINE=1 starts the emulator here
    except ConfigProblem:
        connection = None
    if connection is None or ctx.live.offline is not None:
        ctx.live.start_offline()
        return ("These turns came from the offline emulator, and no credentials are set: "
                "it is started again, so later turns are answered offline too.")
    return (f"These turns came from the offline emulator; later turns go to YandexGPT "
            f"({connection.credential.source}). %chat offline keeps them offline.")
