"""``%chat replay``'s reading side: a transcript read whole and checked, ready to answer.

The answering is ``service/replay.py``'s (a backend like any other); this module only
turns the file into the threads it answers from.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..service.replay import ReplayBackends
from .formats import load_threads


def replay_backends(path: str | os.PathLike[str]) -> ReplayBackends:
    """The backends that answer from the transcript at ``path`` (checked whole first)."""
    path = Path(path).expanduser()
    return ReplayBackends(load_threads(path), str(path))
