"""Transcripts: threads written to and read from files, and record/replay of turns.

A transcript holds whole threads (name, system prompt, turns with their metadata) in
one of four formats, chosen by the file's extension, one module each:
``notebook`` (``.ipynb``, runnable), ``markdown`` (``.md``, readable), ``json_format``
(``.json``, versioned) and ``jsonl`` (``.jsonl``, what ``%chat record`` appends).
``formats`` saves and loads them, ``turn_records`` is how one turn is stored in all of
them, ``files`` keeps reading and writing safe; ``recorder`` writes each turn as it is
committed and ``replay_file`` reads a transcript for replay (``service/replay.py``
answers from it); ``modes`` switches a session between them, and ``commands/`` holds
the ``%chat`` commands of this layer.

Reading never runs code: notebooks are parsed as JSON and checked against nbformat's
schema, everything else with ``json``. A file is checked whole, including each
turn's SHA-256 against the messages it claims were sent, before any thread changes.
"""

from __future__ import annotations

from .files import FORMAT, KEY, VERSION, is_transcript
from .formats import dumps, load_threads, read_notebook, save_thread, save_threads
from .notebook import NotebookRead
from .recorder import Recorder
from .turn_records import turn_record

__all__ = [
    "FORMAT", "KEY", "VERSION", "NotebookRead", "Recorder", "dumps", "is_transcript",
    "load_threads", "read_notebook", "save_thread", "save_threads", "turn_record",
]  # fmt: skip

