"""``%chat record``: every committed turn written to a transcript as it completes."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from ..conversation import Thread
from ..errors import TranscriptError
from ..session import EventKind, ThreadEvent, now_iso
from . import jsonl
from .files import Source, read_text

if TYPE_CHECKING:
    from ..session import ChatSession


class Recorder:
    """Appends each committed turn (and undo/reset/system/load) as a line of JSON Lines.

    Each write opens the file in append mode and adds one line, so recording costs
    O(turn) however long the file is, and a crash loses at most the line being written.
    """

    def __init__(self, path: str | os.PathLike[str], session: ChatSession, *,
                 append: bool = False) -> None:
        self.path = Path(path)
        if self.path.suffix.lower() != ".jsonl":
            raise TranscriptError(
                f"{self.path}: %chat record writes JSON Lines; use a .jsonl path "
                "(%chat save converts it to .ipynb, .md or .json afterwards)."
            )
        self._lock = threading.Lock()
        if append and self.path.exists():
            # Refuse to append to anything that isn't a whole recording.
            jsonl.parse(Source(self.path), read_text(self.path))
            lines = []
        else:
            lines = [jsonl.header(started=now_iso())]
        # What the threads hold already, so the recording documents every later turn's context.
        for thread in session.threads.values():
            lines += [jsonl.event(thread, i, snapshot=True) for i in range(len(thread.turns))]
            if thread.system_prompt and not thread.turns:
                lines.append(jsonl.event(thread))
        self._write("".join(lines), "a" if append else "w")
        self._unsubscribe = session.subscribe(self._heard)
        self._session = session

    def _write(self, text: str, mode: str = "a") -> None:
        with self._lock:
            try:
                with open(self.path, mode, encoding="utf-8", newline="") as file:
                    file.write(text)
            except OSError as err:
                raise TranscriptError(
                    f"{self.path}: cannot write the recording ({err.strerror}); the turn is "
                    "kept in the thread. Fix the path and run %chat record again."
                ) from None

    def append(self, thread: Thread, index: int) -> None:
        self._write(jsonl.event(thread, index))

    def _heard(self, event: ThreadEvent) -> None:
        if event.kind is EventKind.COMMIT:
            return  # already written by append()
        thread = self._session.threads.get(event.thread)
        if thread is None:
            return
        if event.kind is EventKind.LOAD:
            self._write("".join(jsonl.snapshot(thread)))
        else:
            self._write(jsonl.event(thread))

    def close(self) -> None:
        self._unsubscribe()
