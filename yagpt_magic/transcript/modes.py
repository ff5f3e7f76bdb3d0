"""Record, replay, live: the modes of a session, as the objects it is handed.

A session is given its backends and its recorder (``ChatSession.use``); these
functions build them for ``%chat record``, ``%chat replay`` and ``%chat live``. Each
checks what it needs (the file) before anything changes, so a refused command leaves
the mode as it was. ``live`` is the session's ``LiveBackends``: what replay stands in
for and what ``%chat live`` returns to, with its login and emulator intact.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from .recorder import Recorder
from .replay_file import replay_backends

if TYPE_CHECKING:
    from ..core.backend import Backends
    from ..core.session import ChatSession


def current_mode(session: ChatSession, live: Backends) -> str:
    """The mode now: "Recording", "Replay", or "" (turns simply go to the service)."""
    if session.recorder is not None:
        return "Recording"
    return "Replay" if session.backends is not live else ""


def start_recording(session: ChatSession, live: Backends, path: str | os.PathLike[str], *,
                    append: bool = False) -> str:
    """Write every committed turn to ``path`` from now on; returns the mode it ended."""
    recorder = Recorder(path, session, append=append)  # checked before the mode changes
    ended = current_mode(session, live)
    session.use(backends=live, recorder=recorder)
    return ended


def start_replay(session: ChatSession, live: Backends,
                 path: str | os.PathLike[str]) -> tuple[str, int]:
    """Answer later turns from the transcript at ``path``; returns (ended mode, turns)."""
    backends = replay_backends(path)  # checked whole before the mode changes
    ended = current_mode(session, live)
    session.use(backends=backends)
    return ended, sum(len(t.turns) for t in backends.threads.values())


def go_live(session: ChatSession, live: Backends) -> str:
    """End record or replay mode; returns which one ended ('' if neither)."""
    ended = current_mode(session, live)
    session.use(backends=live)
    return ended
