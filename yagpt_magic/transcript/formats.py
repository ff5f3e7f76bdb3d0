"""The four transcript formats, chosen by a file's extension: whole threads saved and loaded.

``notebook`` (``.ipynb``, runnable), ``markdown`` (``.md``, readable), ``json_format``
(``.json``, versioned) and ``jsonl`` (``.jsonl``, what ``%chat record`` appends).
Reading never runs code, and a file is checked whole before any thread changes.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from ..core.conversation import Thread
from ..core.errors import TranscriptError
from . import json_format, jsonl, markdown, notebook
from .files import Source, is_transcript, parse_json, read_text, suffix_of, write_atomically
from .notebook import NotebookRead
from .turn_records import check_hashes

_DUMPERS: dict[str, Callable[[Sequence[Thread]], str]] = {
    ".ipynb": notebook.dump,
    ".md": markdown.dump,
    ".json": json_format.dump,
    ".jsonl": jsonl.dump,
}
_PARSERS: dict[str, Callable[[Source, str], dict[str, Thread]]] = {
    ".json": json_format.parse,
    ".md": markdown.parse,
    ".jsonl": jsonl.parse,
}


def dumps(threads: Sequence[Thread], suffix: str) -> str:
    """The transcript text for ``threads`` in the format of ``suffix``."""
    return _DUMPERS[suffix](threads)


def save_threads(threads: Iterable[Thread], path: str | os.PathLike[str], *,
                 force: bool = False) -> Path:
    """Write ``threads`` to ``path`` (format by extension), replacing it atomically.

    An existing file that yagpt-magic did not write is refused unless ``force``:
    ``%chat save analysis.ipynb`` must not overwrite the user's own notebook.
    """
    path = Path(path).expanduser()
    suffix = suffix_of(path)
    if path.exists() and not force and not is_transcript(path):
        raise TranscriptError(
            f"{path}: exists and is not a yagpt-magic transcript; choose another name "
            "(or add --force to overwrite it)."
        )
    text = dumps(list(threads), suffix)
    try:
        write_atomically(path, text)
    except OSError as err:
        raise TranscriptError(f"{path}: cannot write it ({err.strerror}).") from None
    return path


def save_thread(thread: Thread, path: str | os.PathLike[str], *, force: bool = False) -> Path:
    """Write one thread to ``path``; see ``save_threads``."""
    return save_threads([thread], path, force=force)


def load_threads(path: str | os.PathLike[str]) -> dict[str, Thread]:
    """Every thread in the transcript at ``path``, fully checked; raises ``TranscriptError``."""
    path = Path(path).expanduser()
    src = Source(path)
    text = read_text(path)
    suffix = suffix_of(path)
    if suffix == ".ipynb":
        threads = notebook.read(src, parse_json(src, text)).threads
    else:
        threads = _PARSERS[suffix](src, text)
        for thread in threads.values():
            check_hashes(src, thread, lenient=False)
    if not threads:
        src.fail("holds no chat turns")
    return threads


def read_notebook(path: str | os.PathLike[str], *, use_cell_ids: bool = False,
                  strict: bool | None = None) -> NotebookRead:
    """Threads from a notebook's ``%%chat`` cells and their reply metadata.

    A transcript written by ``%chat save`` is read strictly (every code cell a
    ``%%chat`` cell with a reply, in order). Any other notebook is read as the kernel
    left it: cells never run or failed are counted and skipped, a cell re-run later
    wins its slot, and a turn whose context was changed by a re-run is marked stale.
    ``use_cell_ids`` keys each turn by its cell's ``id`` (for ``%chat restore``).
    """
    path = Path(path)
    src = Source(path)
    if path.suffix.lower() != ".ipynb":
        src.fail("not a notebook (.ipynb)")
    data = parse_json(src, read_text(path))
    return notebook.read(src, data, use_cell_ids=use_cell_ids, strict=strict)
