"""``%chat record``: every committed turn written to a transcript as it completes.

Any format ``%chat save`` writes can be recorded. Each change (a turn, an undo, a
reset, a system prompt, a load) replaces the file atomically (a temporary file
renamed over it), so a crash leaves the file as it was before that change or after
it, never half-written. ``.jsonl`` grows by one event per change; the other formats
hold every thread as it is now.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from ..core.conversation import Thread
from ..core.errors import TranscriptError
from ..core.session import EventKind, ThreadEvent, now_iso
from . import jsonl
from .files import Source, is_transcript, read_text, suffix_of, write_atomically
from .formats import dumps

if TYPE_CHECKING:
    from ..core.session import ChatSession


class Recorder:
    """Keeps ``path`` in step with the session's threads from now on."""

    def __init__(self, path: str | os.PathLike[str], session: ChatSession, *,
                 append: bool = False) -> None:
        self.path = Path(path).expanduser()
        self._suffix = suffix_of(self.path)
        self._session = session
        self._lock = threading.Lock()
        exists = self.path.exists()
        if append and self._suffix != ".jsonl":
            raise TranscriptError(
                f"{self.path}: --append continues a .jsonl recording; a {self._suffix} "
                "recording always holds every thread as it is now. Leave out --append."
            )
        if exists and not append and not is_transcript(self.path):
            raise TranscriptError(
                f"{self.path}: exists and is not a yagpt-magic transcript; choose another "
                "name, so that recording never overwrites your own file."
            )
        self._lines: list[str] = []
        #: SHA-256 of each image the .jsonl file holds: each is written once (SPEC 15).
        self._images: set[str] = set()
        if self._suffix == ".jsonl":
            if append and exists:
                # Refuse to append to anything that isn't a whole recording.
                text = read_text(self.path)
                self._images = set(jsonl.parse_recording(Source(self.path), text)[1])
                self._lines = [text]
            else:
                self._lines = [jsonl.header(started=now_iso())]
            # What the threads hold already, so the file documents every later turn's context.
            for thread in session.threads.values():
                for i in range(len(thread.turns)):
                    self._lines += jsonl.image_lines(thread, i, self._images)
                    self._lines.append(jsonl.event(thread, i, snapshot=True))
                if thread.system_prompt and not thread.turns:
                    self._lines.append(jsonl.event(thread))
        self._write()
        self._unsubscribe = session.subscribe(self._heard)

    def _write(self, *lines: str, images: set[str] | None = None) -> None:
        """Replace the file with what it should now hold, atomically.

        ``images``: the SHA-256s the .jsonl file holds once these lines are written,
        kept only if the write succeeds (else the next write writes the image again).
        """
        with self._lock:
            if self._suffix == ".jsonl":
                text = "".join([*self._lines, *lines])
                if images or self._images:
                    text = jsonl.with_images_version(text)
                text = jsonl.counted(text)  # the header counts the lines: a cut is seen
            else:
                session = self._session
                threads = session.copies([t for t in session.threads.values()
                                          if t.turns or t.system_prompt])
                text = dumps(threads, self._suffix)
            try:
                write_atomically(self.path, text)
            except OSError as err:
                raise TranscriptError(
                    f"{self.path}: cannot write the recording ({err.strerror}); the file "
                    "is as it was before this change."
                ) from None
            if lines:
                self._lines = [text]
            if images is not None:
                self._images = images

    def append(self, thread: Thread, index: int) -> None:
        """A turn was committed: write it now (errors reach the cell that made it)."""
        written = set(self._images)
        images = jsonl.image_lines(thread, index, written) if self._suffix == ".jsonl" else []
        self._write(*images, jsonl.event(thread, index), images=written)

    def _heard(self, event: ThreadEvent) -> None:
        if event.kind is EventKind.COMMIT:
            return  # written by append(), whose error the turn's cell reports
        thread = self._session.threads.get(event.thread)
        if thread is None:
            return
        if event.kind is EventKind.LOAD:
            written = set(self._images)
            self._write(*jsonl.snapshot(thread, written), images=written)
        else:
            self._write(jsonl.event(thread))

    def close(self) -> None:
        self._unsubscribe()
