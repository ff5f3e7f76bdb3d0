"""Transcripts: threads written to and read from files, and record/replay of turns.

A transcript holds whole threads (name, system prompt, turns with their metadata) in
one of four formats, chosen by the file's extension:

``.ipynb``
    A valid nbformat 4 notebook that is itself runnable: a Markdown cell with each
    thread's settings (also under the cell's ``yagpt_magic`` metadata, exactly), then
    one ``%%chat -t NAME`` cell per turn whose body is the user message and whose
    output is the reply (``text/plain`` exactly the reply, ``text/html`` rendered and
    sanitized) with the turn's metadata under ``yagpt_magic``. Notebooks executed live
    (by Jupyter or nbclient) are read too: every ``%%chat`` cell with reply metadata;
    readers take ``text/plain`` only, so older files with ``text/markdown`` still load.
``.md``
    Readable Markdown: one heading per turn, the user message and reply in fenced
    blocks longer than any backtick run inside them, and the metadata as JSON in an
    HTML comment (``<!-- yagpt-magic-turn {...} -->``) before each turn.
``.json``
    ``{"format": "yagpt-magic-transcript", "version": 1, "threads": [THREAD, ...]}``
    where THREAD is ``{"name": str, "system_prompt": str, "turns": [TURN, ...]}`` and
    TURN is the reply metadata of SPEC 6 (``session.turn_metadata``: thread, turn,
    cell_id, model_uri, model_version, temperature, max_tokens, reasoning_mode, usage
    {input_tokens, completion_tokens, reasoning_tokens, total_tokens}, status,
    started, finished, messages_sha256, system_prompt, context_start, version) plus
    ``user``, ``reply`` (exact texts) and ``stale``. Readers refuse a newer version.
``.jsonl``
    What ``%chat record`` writes, one JSON object per line, appended as turns commit:
    a header ``{"format": ..., "version": 1, "kind": "record"}``, then events
    ``{"thread", "system_prompt", "length", "turn"?: TURN}``: set turn ``TURN.turn``
    (if present), then cut the thread to ``length`` turns (undo/reset are recorded).

Reading never runs code: notebooks are parsed as JSON and checked against nbformat's
schema, everything else with ``json``. A file is checked whole, including each
turn's SHA-256 against the messages it claims were sent, before any thread changes.
"""

from __future__ import annotations

import functools
import json
import os
import re
import tempfile
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from .backend import Reply, RequestOptions
from .conversation import ContextHash, Message, Thread, Turn, Usage, messages_sha256
from .errors import ReplayMiss, TranscriptError
from .session import ThreadEvent, now_iso, turn_metadata

if TYPE_CHECKING:
    from .session import ChatSession

FORMAT = "yagpt-magic-transcript"
VERSION = 1
#: Files larger than this are refused before they are read.
MAX_BYTES = 50 * 1024 * 1024
SUFFIXES = (".ipynb", ".md", ".json", ".jsonl")
KEY = "yagpt_magic"

_USAGE_FIELDS = ("input_tokens", "completion_tokens", "reasoning_tokens", "total_tokens")
_STATUSES = ("final", "truncated")
_CELL_ID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_SHA = re.compile(r"^[0-9a-f]{64}$")
# The notices ReplyView appends to text/plain, recognised so a live output's reply is exact.
_LEFT_OUT = re.compile(r"\n\[\d+ earlier turns? left out to fit the \d+-token window\.\]\Z")
_TRUNCATED = "\n[The reply was cut at max_tokens; raise --max-tokens to get all of it.]"


# -- errors ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Source:
    """The file being read, so every complaint names it."""

    path: Path

    def fail(self, problem: str) -> NoReturn:
        raise TranscriptError(f"{self.path}: {problem}; nothing was changed.")


def _suffix(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise TranscriptError(
            f"{path}: unknown transcript type {suffix or '(no extension)'!r}; "
            "use .ipynb, .md, .json or .jsonl."
        )
    return suffix


def _read_text(path: Path) -> str:
    """The file's text, refusing a missing, huge or non-UTF-8 file before parsing it."""
    src = _Source(path)
    _suffix(path)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        src.fail("no such file")
    except OSError as err:
        src.fail(f"cannot read it ({err.strerror})")
    if size > MAX_BYTES:
        src.fail(f"{size / 2**20:.0f} MB is over the {MAX_BYTES // 2**20} MB transcript limit")
    try:
        data = path.read_bytes()
    except OSError as err:
        src.fail(f"cannot read it ({err.strerror})")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        src.fail(f"not UTF-8 text (bad byte at offset {err.start}); is it a transcript?")


def _json(src: _Source, text: str, where: str = "") -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        cut = err.pos >= len(text.rstrip()) or err.msg.startswith("Unterminated string")
        end = " (the file looks truncated)" if cut else ""
        src.fail(f"malformed JSON{where} at line {err.lineno} column {err.colno}: {err.msg}{end}")
    except RecursionError:
        src.fail(f"JSON{where} nested too deeply")


def _check_header(src: _Source, data: Any, what: str) -> None:
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        src.fail(f"not a yagpt-magic transcript ({what} has no \"format\": \"{FORMAT}\")")
    version = data.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        src.fail(f"bad transcript version {version!r}")
    if version > VERSION:
        src.fail(
            f"transcript version {version} is newer than this yagpt-magic reads ({VERSION}); "
            "upgrade yagpt-magic"
        )


# -- one turn as a record ---------------------------------------------------------------


def turn_record(thread: str, index: int, turn: Turn, *, texts: bool = True) -> dict[str, Any]:
    """A turn as stored in every format: its reply metadata, ``stale``, and the texts."""
    record = turn_metadata(thread, index, turn)
    record["stale"] = turn.stale
    if texts:
        record["user"] = turn.user
        record["reply"] = turn.reply
    return record


def _field(src: _Source, where: str, record: dict[str, Any], name: str, kinds: Any,
           default: Any = ...) -> Any:
    if name not in record:
        if default is not ...:
            return default
        src.fail(f"{where}: missing {name!r}")
    value = record[name]
    ok = isinstance(value, kinds) and not (isinstance(value, bool) and bool not in kinds)
    if not ok:
        src.fail(f"{where}: {name!r} has the wrong type ({type(value).__name__})")
    return value


def _decode_turn(src: _Source, where: str, record: Any, user: str, reply: str) -> Turn:
    """A ``Turn`` from a record, checking every field's type."""
    if not isinstance(record, dict):
        src.fail(f"{where}: turn metadata is not an object")
    usage = _field(src, where, record, "usage", (dict,))
    counts = []
    for name in _USAGE_FIELDS:
        counts.append(_field(src, where + " usage", usage, name, (int,)))
    status = _field(src, where, record, "status", (str,))
    if status not in _STATUSES:
        src.fail(f"{where}: unknown status {status!r}")
    sha = _field(src, where, record, "messages_sha256", (str,))
    if sha and not _SHA.match(sha):
        src.fail(f"{where}: messages_sha256 is not a SHA-256 hex digest")
    context_start = _field(src, where, record, "context_start", (int, type(None)))
    cell_id = _field(src, where, record, "cell_id", (str, type(None)))
    return Turn(
        user=user,
        reply=reply,
        cell_id=cell_id,
        model=_field(src, where, record, "model_uri", (str,)),
        settings={
            "model_version": _field(src, where, record, "model_version", (str,)),
            "temperature": _field(src, where, record, "temperature", (int, float, type(None))),
            "max_tokens": _field(src, where, record, "max_tokens", (int, type(None))),
            "reasoning_mode": _field(src, where, record, "reasoning_mode", (str, type(None))),
        },
        usage=Usage(*counts),
        status=status,
        started=_field(src, where, record, "started", (str,)),
        finished=_field(src, where, record, "finished", (str,)),
        sha256=sha,
        system_prompt=_field(src, where, record, "system_prompt", (str,)),
        context_start=context_start,
        stale=_field(src, where, record, "stale", (bool,), False),
    )


def _record_texts(src: _Source, where: str, record: Any) -> tuple[str, str]:
    if not isinstance(record, dict):
        src.fail(f"{where}: turn is not an object")
    return (_field(src, where, record, "user", (str,)),
            _field(src, where, record, "reply", (str,)))


def sent_messages(thread: Thread, index: int) -> list[Message]:
    """The messages turn ``index`` was answered with, as far as the thread still shows."""
    turn = thread.turns[index]
    start = turn.context_start or 0
    messages: list[Message] = []
    if turn.system_prompt:
        messages.append({"role": "system", "text": turn.system_prompt})
    for earlier in thread.turns[start:index]:
        messages.extend(earlier.messages())
    messages.append({"role": "user", "text": turn.user})
    return messages


def _check_hashes(src: _Source, thread: Thread, *, lenient: bool) -> None:
    """Each turn's recorded SHA-256 must match its messages; a stale turn is exempt.

    ``lenient`` (a live notebook, whose re-run cells leave older outputs below them)
    marks a mismatching turn stale instead, which is what the kernel had shown.
    """
    hashes = ContextHash()
    for index, turn in enumerate(thread.turns):
        if not turn.sha256 or turn.stale:
            continue
        if turn.context_start is not None and turn.context_start > index:
            src.fail(f"turn {index} of {thread.name!r}: context_start is after the turn")
        digest = hashes.of(thread, turn.user, start=turn.context_start or 0, upto=index,
                           system=turn.system_prompt)
        if digest != turn.sha256:
            if lenient:
                turn.stale = True
            else:
                src.fail(
                    f"turn {index} of {thread.name!r}: the recorded messages_sha256 does not "
                    "match the messages it was answered with (edited or corrupted)"
                )


# -- .json ------------------------------------------------------------------------------


def _dump_json(threads: Sequence[Thread]) -> str:
    return json.dumps(
        {
            "format": FORMAT,
            "version": VERSION,
            "threads": [
                {
                    "name": t.name,
                    "system_prompt": t.system_prompt,
                    "turns": [turn_record(t.name, i, turn) for i, turn in enumerate(t.turns)],
                }
                for t in threads
            ],
        },
        ensure_ascii=False,
        indent=1,
    ) + "\n"


def _thread_header(src: _Source, where: str, data: Any) -> Thread:
    if not isinstance(data, dict):
        src.fail(f"{where} is not an object")
    name = _field(src, where, data, "name", (str,))
    if not name.strip():
        src.fail(f"{where}: empty thread name")
    return Thread(name, _field(src, where, data, "system_prompt", (str,), ""))


def _add_thread(src: _Source, threads: dict[str, Thread], thread: Thread) -> None:
    if thread.name in threads:
        src.fail(f"thread {thread.name!r} appears twice")
    threads[thread.name] = thread


def _check_index(src: _Source, where: str, record: dict[str, Any], expected: int) -> None:
    index = _field(src, where, record, "turn", (int,))
    if index != expected:
        src.fail(f"{where}: turn index {index} where {expected} was expected")


def _parse_json(src: _Source, text: str) -> dict[str, Thread]:
    data = _json(src, text)
    _check_header(src, data, "the top-level object")
    items = data.get("threads")
    if not isinstance(items, list):
        src.fail('"threads" is missing or not a list')
    threads: dict[str, Thread] = {}
    for n, item in enumerate(items):
        thread = _thread_header(src, f"thread {n}", item)
        turns = _field(src, f"thread {thread.name!r}", item, "turns", (list,))
        for i, record in enumerate(turns):
            where = f"turn {i} of {thread.name!r}"
            user, reply = _record_texts(src, where, record)
            _check_index(src, where, record, i)
            thread.turns.append(_decode_turn(src, where, record, user, reply))
        _add_thread(src, threads, thread)
    return threads


# -- .md --------------------------------------------------------------------------------

_COMMENT = re.compile(r"^<!-- (yagpt-magic-(?:transcript|thread|turn)) (\{.*\}) -->$")


def _comment(kind: str, data: dict[str, Any]) -> str:
    # '<' and '>' only occur inside JSON strings, where \u escapes keep "-->" out.
    body = json.dumps(data, ensure_ascii=False).replace("<", "\\u003c").replace(">", "\\u003e")
    return f"<!-- {kind} {body} -->"


def _fence(text: str, info: str) -> str:
    """A fenced block that holds ``text`` exactly: its fence outruns every backtick run."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{info}\n{text}\n{fence}" if text else f"{fence}{info}\n{fence}"


def _md_heading(text: str) -> str:
    from .view import inert_markdown

    return inert_markdown(_one_line(text))


def _dump_md(threads: Sequence[Thread]) -> str:
    from . import __version__

    parts = [_comment("yagpt-magic-transcript", {"format": FORMAT, "version": VERSION}),
             f"# Chat transcript\n\nSaved by yagpt-magic {__version__}. "
             "`%chat load` this file to rebuild the threads; the HTML comments hold the "
             "metadata and each fenced block is the exact text."]
    for thread in threads:
        name = _md_heading(thread.name)
        parts.append(f"## Thread {name}\n\n" + _comment(
            "yagpt-magic-thread", {"name": thread.name, "system_prompt": thread.system_prompt}))
        if thread.system_prompt:
            parts.append("System prompt:\n\n" + _fence(thread.system_prompt, "text"))
        for index, turn in enumerate(thread.turns):
            record = turn_record(thread.name, index, turn, texts=False)
            parts.append(f"### {name}, turn {index}: message\n\n"
                         + _comment("yagpt-magic-turn", record) + "\n\n"
                         + _fence(turn.user, "text"))
            parts.append(f"### {name}, turn {index}: reply\n\n" + _fence(turn.reply, "markdown"))
    return "\n\n".join(parts) + "\n"


def _parse_md(src: _Source, text: str) -> dict[str, Thread]:
    lines = text.split("\n")
    first = _COMMENT.match(lines[0]) if lines else None
    if first is None or first.group(1) != "yagpt-magic-transcript":
        src.fail("not a yagpt-magic transcript (the first line is not its header comment)")
    _check_header(src, _json(src, first.group(2), " in the header comment"), "the header")
    threads: dict[str, Thread] = {}
    current: Thread | None = None
    pos = 1

    def fenced(after: int, where: str) -> tuple[str, int]:
        """The exact text of the next fenced block after line ``after``, and where it ends."""
        i = after
        while i < len(lines) and not lines[i].startswith("```"):
            if _COMMENT.match(lines[i]):
                src.fail(f"{where}: a fenced block is missing")
            i += 1
        if i == len(lines):
            src.fail(f"{where}: a fenced block is missing (the file looks truncated)")
        fence = re.match(r"`+", lines[i]).group(0)  # type: ignore[union-attr]
        for j in range(i + 1, len(lines)):
            if lines[j] == fence:
                return "\n".join(lines[i + 1 : j]), j + 1
        src.fail(f"{where}: a fenced block is not closed (the file looks truncated)")

    while pos < len(lines):
        match = _COMMENT.match(lines[pos])
        pos += 1
        if match is None:
            continue
        kind = match.group(1)
        data = _json(src, match.group(2), f" in the comment on line {pos}")
        if kind == "yagpt-magic-thread":
            current = _thread_header(src, f"the thread comment on line {pos}", data)
            _add_thread(src, threads, current)
            if current.system_prompt:  # shown for reading; skipped so its text is never parsed
                _, pos = fenced(pos, f"the system prompt of {current.name!r}")
        elif kind == "yagpt-magic-turn":
            if current is None:
                src.fail(f"line {pos}: a turn before any thread")
            where = f"turn {len(current.turns)} of {current.name!r}"
            if not isinstance(data, dict):
                src.fail(f"{where}: turn metadata is not an object")
            _check_index(src, where, data, len(current.turns))
            user, pos = fenced(pos, where)
            reply, pos = fenced(pos, where)
            current.turns.append(_decode_turn(src, where, data, user, reply))
        else:
            src.fail(f"line {pos}: a second transcript header")
    return threads


# -- .jsonl (recordings) ----------------------------------------------------------------


def _event(thread: Thread, index: int | None = None, *, snapshot: bool = False) -> str:
    """One recording line; a ``snapshot`` line replays history, so it ends at its turn."""
    length = index + 1 if snapshot and index is not None else len(thread.turns)
    event: dict[str, Any] = {"thread": thread.name, "system_prompt": thread.system_prompt,
                             "length": length}
    if index is not None:
        event["turn"] = turn_record(thread.name, index, thread.turns[index])
    return json.dumps(event, ensure_ascii=False) + "\n"


def _parse_jsonl(src: _Source, text: str) -> dict[str, Thread]:
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    elif lines:
        src.fail(f"line {len(lines)} is not finished (the file looks truncated)")
    if not lines:
        src.fail("the file is empty")
    header = _json(src, lines[0], " on line 1")
    _check_header(src, header, "line 1")
    threads: dict[str, Thread] = {}
    for number, line in enumerate(lines[1:], start=2):
        event = _json(src, line, f" on line {number}")
        where = f"line {number}"
        if not isinstance(event, dict):
            src.fail(f"{where} is not an object")
        name = _field(src, where, event, "thread", (str,))
        thread = threads.setdefault(name, Thread(name))
        thread.system_prompt = _field(src, where, event, "system_prompt", (str,))
        length = _field(src, where, event, "length", (int,))
        if "turn" in event:
            record = event["turn"]
            user, reply = _record_texts(src, where, record)
            index = _field(src, where, record, "turn", (int,))
            if not 0 <= index <= len(thread.turns):
                src.fail(f"{where}: turn {index} of {name!r} leaves a gap")
            turn = _decode_turn(src, f"{where} (turn {index} of {name!r})", record, user, reply)
            if index == len(thread.turns):
                thread.turns.append(turn)
            else:
                thread.turns[index] = turn
        if not 0 <= length <= len(thread.turns):
            src.fail(f"{where}: length {length} of {name!r} is beyond its turns")
        del thread.turns[length:]
    return threads


class Recorder:
    """``%chat record``: appends each committed turn (and undo/reset/system) as a line.

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
            _parse_jsonl(_Source(self.path), _read_text(self.path))
            lines = []
        else:
            lines = [json.dumps({"format": FORMAT, "version": VERSION, "kind": "record",
                                 "started": now_iso()}) + "\n"]
        # What the threads hold already, so the recording documents every later turn's context.
        for thread in session.threads.values():
            lines += [_event(thread, i, snapshot=True) for i in range(len(thread.turns))]
            if thread.system_prompt and not thread.turns:
                lines.append(_event(thread))
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
        self._write(_event(thread, index))

    def _heard(self, event: ThreadEvent) -> None:
        if event.kind == "commit":
            return  # already written by append()
        thread = self._session.threads.get(event.thread)
        if thread is None:
            return
        if event.kind == "load":
            self._write("".join([_event(thread, i, snapshot=True)
                                 for i in range(len(thread.turns))]
                                + [_event(thread)]))
        else:
            self._write(_event(thread))

    def close(self) -> None:
        self._unsubscribe()


# -- .ipynb -----------------------------------------------------------------------------


def _quote_arg(value: str) -> str:
    """``value`` as one argument of a magic line (IPython keeps quotes; we strip one pair)."""
    if value and not re.search(r"[\s'\"]", value):
        return value
    quote = "'" if '"' in value else '"'
    return f"{quote}{value}{quote}"


def _cell_id(wanted: str | None, fallback: str, used: set[str]) -> str:
    cid = wanted if wanted and _CELL_ID.match(wanted) and wanted not in used else fallback
    n = 0
    while cid in used:
        n += 1
        cid = f"{fallback}-{n}"
    used.add(cid)
    return cid


def _reply_output(thread: str, index: int, turn: Turn) -> dict[str, Any]:
    from .render import reply_bundle

    record = turn_record(thread, index, turn, texts=False)
    record["transcript"] = VERSION  # text/plain is exactly the reply, the cell body the message
    return {
        "output_type": "display_data",
        "data": reply_bundle(turn.reply),
        "metadata": {KEY: record},
    }


def _one_line(text: str) -> str:
    """``text`` with every line break IPython splits on made a space (a magic line is one line)."""
    return " ".join(text.splitlines())


def _system_cell(thread: Thread) -> str:
    from .commands.system import line_for

    return line_for(_one_line(thread.name), thread.system_prompt)


def notebook_dict(threads: Sequence[Thread]) -> dict[str, Any]:
    """The transcript notebook as plain JSON data (nbformat 4.5)."""
    from . import __version__

    used: set[str] = set()

    def markdown(source: str, fallback: str, metadata: dict[str, Any] | None = None) -> dict:
        return {"cell_type": "markdown", "id": _cell_id(None, fallback, used),
                "metadata": metadata or {}, "source": source}

    def code(source: str, fallback: str, wanted: str | None = None,
             outputs: list[dict[str, Any]] | None = None) -> dict:
        return {"cell_type": "code", "id": _cell_id(wanted, fallback, used), "metadata": {},
                "execution_count": None, "outputs": outputs or [], "source": source}

    cells = [
        markdown(f"# Chat transcript\n\nSaved by yagpt-magic {__version__}. Run it to ask "
                 "again, `%chat load` it to rebuild the threads, or `%chat replay` it to "
                 "answer the same cells offline with these exact replies.", "transcript"),
        code("%load_ext yagpt_magic", "load-ext"),
    ]
    for n, thread in enumerate(threads):
        tag = f"t{n}"
        text = f"## Thread {_md_heading(thread.name)}\n\n"
        if thread.system_prompt:
            text += "System prompt:\n\n" + _fence(thread.system_prompt, "text")
        else:
            text += "No system prompt."
        cells.append(markdown(text, f"{tag}-settings", {KEY: {
            "thread": thread.name, "system_prompt": thread.system_prompt}}))
        if thread.system_prompt:
            cells.append(code(_system_cell(thread), f"{tag}-system"))
        line = f"%%chat -t {_quote_arg(_one_line(thread.name))}\n"
        for index, turn in enumerate(thread.turns):
            cells.append(code(line + turn.user, f"{tag}-turn-{index}", turn.cell_id,
                              [_reply_output(thread.name, index, turn)]))
    return {
        "cells": cells,
        "metadata": {
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
            KEY: {"format": FORMAT, "version": VERSION},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }


@dataclass
class _Found:
    """A reply read from a live notebook cell, before threads are assembled."""

    position: int
    index: int
    turn: Turn


@dataclass
class NotebookRead:
    """Threads rebuilt from a notebook, and the ``%%chat`` cells that could not be used."""

    threads: dict[str, Thread]
    unanswered: int = 0
    interpolated: int = 0
    notes: list[str] = field(default_factory=list)


def _chat_line(source: str) -> tuple[str, str] | None:
    """The ``%%chat`` line and body of a cell, or None for any other cell."""
    first, _, body = source.partition("\n")
    words = first.split()
    if not words or words[0] != "%%chat":
        return None
    return first, body


_SETUP = re.compile(r"^\s*%(load_ext|reload_ext)\s+yagpt_magic\s*$|^\s*%chat(\s.*)?$")


def _is_setup(source: str) -> bool:
    """Line-magic cells a transcript may hold (loading the extension, %chat commands)."""
    lines = [line for line in source.split("\n") if line.strip()]
    return all(_SETUP.match(line) for line in lines)


def _reply_of(cell: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]] | None:
    for output in cell.get("outputs") or []:
        if not isinstance(output, dict):
            continue
        meta = (output.get("metadata") or {}).get(KEY)
        if isinstance(meta, dict) and isinstance(output.get("data"), dict):
            return meta, output["data"]
    return None


def _plain(src: _Source, where: str, data: dict[str, Any], meta: dict[str, Any]) -> str:
    plain = data.get("text/plain")
    if isinstance(plain, list):
        plain = "".join(plain)
    if not isinstance(plain, str):
        src.fail(f"{where}: the reply output has no text/plain")
    if meta.get("transcript"):
        return plain
    # A live output: drop the notices ReplyView appended, which the metadata predicts.
    if meta.get("status") == "truncated" and plain.endswith(_TRUNCATED):
        plain = plain[: -len(_TRUNCATED)]
    if meta.get("context_start"):
        found = _LEFT_OUT.search(plain)
        if found is not None:
            plain = plain[: found.start()]
    return plain


def _validate_notebook(src: _Source, data: Any) -> None:
    if not isinstance(data, dict) or "cells" not in data or "nbformat" not in data:
        src.fail("not a Jupyter notebook (no \"cells\" and \"nbformat\")")
    major = data.get("nbformat")
    if major != 4:
        src.fail(f"nbformat {major!r} notebook; only nbformat 4 is read (open and save it in "
                 "a current Jupyter to convert it)")
    minor = data.get("nbformat_minor")
    check = _schema_check(minor if isinstance(minor, int) else -1)
    problem = check(data)
    if problem:
        src.fail(f"not a valid nbformat 4 notebook ({problem.splitlines()[0][:160]})")


def _schema_file(minor: int) -> Path | None:
    """nbformat's JSON schema for 4.``minor``, found without importing nbformat."""
    import importlib.util

    spec = importlib.util.find_spec("nbformat")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "v4"
    exact = folder / f"nbformat.v4.{minor}.schema.json"
    return exact if exact.exists() else folder / "nbformat.v4.schema.json"


@functools.cache
def _schema_check(minor: int) -> Callable[[Any], str]:
    """A checker for nbformat 4.``minor`` that returns the first problem, or ''.

    It compiles nbformat's own schema with fastjsonschema, as ``nbformat.validate``
    does, without importing nbformat: that import pulls in jsonschema's format
    checkers, which can take seconds on first use.
    """
    try:
        import fastjsonschema

        schema = _schema_file(minor)
        assert schema is not None
        validate = fastjsonschema.compile(json.loads(schema.read_text("utf-8")))
    except Exception:  # no schema file or no fastjsonschema: nbformat's own path
        import nbformat

        def check(data: Any) -> str:
            try:
                nbformat.validate(data, version=4, version_minor=minor)
            except nbformat.ValidationError as err:
                return str(err.message)
            return ""

        return check

    def fast(data: Any) -> str:
        try:
            validate(data)
        except fastjsonschema.JsonSchemaException as err:
            return str(err.message)
        return ""

    return fast


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
    src = _Source(path)
    if path.suffix.lower() != ".ipynb":
        src.fail("not a notebook (.ipynb)")
    data = _json(src, _read_text(path))
    return _notebook_threads(src, data, use_cell_ids=use_cell_ids, strict=strict)


def _notebook_threads(src: _Source, data: Any, *, use_cell_ids: bool,
                      strict: bool | None) -> NotebookRead:
    _validate_notebook(src, data)
    marker = (data.get("metadata") or {}).get(KEY)
    if strict is None:
        strict = isinstance(marker, dict) and marker.get("format") == FORMAT
    if strict:
        _check_header(src, marker, "the notebook metadata")
    result = NotebookRead({})
    found: dict[str, list[_Found]] = {}
    prompts: dict[str, str] = {}
    for position, cell in enumerate(data["cells"]):
        where = f"cell {position + 1}"
        source = cell.get("source", "")
        if isinstance(source, list):
            source = "".join(source)
        if cell.get("cell_type") == "markdown":
            settings = (cell.get("metadata") or {}).get(KEY)
            if strict and settings is not None:
                if not isinstance(settings, dict):
                    src.fail(f"{where}: thread settings are not an object")
                thread = _thread_header(src, f"{where} (thread settings)", {
                    "name": settings.get("thread"),
                    "system_prompt": settings.get("system_prompt", "")})
                if thread.name in prompts:
                    src.fail(f"{where}: thread {thread.name!r} appears twice")
                prompts[thread.name] = thread.system_prompt
                found.setdefault(thread.name, [])
            continue
        if cell.get("cell_type") != "code":
            continue
        chat = _chat_line(source)
        if chat is None:
            if strict and not _is_setup(source):
                src.fail(f"{where} is a code cell that is not %%chat (a transcript holds "
                         "only %%chat cells)")
            continue
        line, body = chat
        reply = _reply_of(cell)
        if reply is None:
            if strict:
                src.fail(f"{where}: %%chat cell without reply metadata")
            result.unanswered += 1
            continue
        meta, output = reply
        sent = meta.get("user")
        if "--vars" in line.split() and not meta.get("transcript") and not isinstance(sent, str):
            # Older outputs: the message sent was the interpolated text, not kept anywhere.
            result.interpolated += 1
            continue
        name = _field(src, where, meta, "thread", (str,))
        index = _field(src, where, meta, "turn", (int,))
        if isinstance(sent, str):
            user = sent
        else:
            user = body if meta.get("transcript") else body.strip("\n")
        turn = _decode_turn(src, f"{where} (turn {index} of {name!r})", meta, user,
                            _plain(src, where, output, meta))
        if use_cell_ids and isinstance(cell.get("id"), str):
            turn.cell_id = cell["id"]
        found.setdefault(name, []).append(_Found(position, index, turn))
    for name, items in found.items():
        thread = Thread(name, prompts.get(name, ""))
        if strict:
            for n, item in enumerate(items):
                if item.index != n:
                    src.fail(f"cell {item.position + 1}: turn index {item.index} where {n} "
                             f"was expected in thread {name!r}")
                thread.turns.append(item.turn)
        else:
            # Kernel order, not cell order; of two outputs claiming a slot the later one won.
            best: dict[int, _Found] = {}
            for item in items:
                held = best.get(item.index)
                if held is None or item.turn.finished >= held.turn.finished:
                    best[item.index] = item
            thread.turns = [best[i].turn for i in sorted(best)]
            if thread.turns:
                thread.system_prompt = thread.turns[-1].system_prompt
        _check_hashes(src, thread, lenient=not strict)
        result.threads[name] = thread
    return result


# -- saving and loading -----------------------------------------------------------------


def is_transcript(path: Path) -> bool:
    """Whether ``path`` is a file yagpt-magic wrote (so saving over it loses nothing else)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as file:
            head = file.read(4096)
    except OSError:
        return False
    if path.suffix.lower() == ".md":
        return head.startswith("<!-- yagpt-magic-transcript ")
    if path.suffix.lower() == ".ipynb":
        try:
            if path.stat().st_size > MAX_BYTES:
                return False
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return False
        return ((data.get("metadata") or {}).get(KEY) or {}).get("format") == FORMAT
    return f'"format": "{FORMAT}"' in head or f'"format":"{FORMAT}"' in head


def _mode_for(path: Path) -> int:
    """The old file's permissions, or what a plain ``open`` would give (mkstemp's are 0600)."""
    try:
        return path.stat().st_mode & 0o777
    except OSError:
        umask = os.umask(0o022)
        os.umask(umask)
        return 0o666 & ~umask


def _write_atomically(path: Path, text: str) -> None:
    """Write to a temporary file beside ``path`` and rename it, so a crash leaves the old file."""
    directory = path.parent if str(path.parent) else Path(".")
    handle, temp = tempfile.mkstemp(prefix=f".{path.name}.", dir=directory)
    try:
        os.chmod(temp, _mode_for(path))
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as file:
            file.write(text)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def dumps(threads: Sequence[Thread], suffix: str) -> str:
    """The transcript text for ``threads`` in the format of ``suffix``."""
    if suffix == ".ipynb":
        return json.dumps(notebook_dict(threads), ensure_ascii=False, indent=1) + "\n"
    if suffix == ".md":
        return _dump_md(threads)
    if suffix == ".json":
        return _dump_json(threads)
    return "".join(
        [json.dumps({"format": FORMAT, "version": VERSION, "kind": "record"}) + "\n"]
        + [_event(t, i, snapshot=True) for t in threads for i in range(len(t.turns))]
        + [_event(t) for t in threads]
    )


def save_threads(threads: Iterable[Thread], path: str | os.PathLike[str], *,
                 force: bool = False) -> Path:
    """Write ``threads`` to ``path`` (format by extension), replacing it atomically.

    An existing file that yagpt-magic did not write is refused unless ``force``:
    ``%chat save analysis.ipynb`` must not overwrite the user's own notebook.
    """
    path = Path(path).expanduser()
    suffix = _suffix(path)
    if path.exists() and not force and not is_transcript(path):
        raise TranscriptError(
            f"{path}: exists and is not a yagpt-magic transcript; choose another name "
            "(or add --force to overwrite it)."
        )
    text = dumps(list(threads), suffix)
    try:
        _write_atomically(path, text)
    except OSError as err:
        raise TranscriptError(f"{path}: cannot write it ({err.strerror}).") from None
    return path


def save_thread(thread: Thread, path: str | os.PathLike[str], *, force: bool = False) -> Path:
    """Write one thread to ``path``; see ``save_threads``."""
    return save_threads([thread], path, force=force)


_PARSERS: dict[str, Callable[[_Source, str], dict[str, Thread]]] = {
    ".json": _parse_json,
    ".md": _parse_md,
    ".jsonl": _parse_jsonl,
}


def load_threads(path: str | os.PathLike[str]) -> dict[str, Thread]:
    """Every thread in the transcript at ``path``, fully checked; raises ``TranscriptError``."""
    path = Path(path).expanduser()
    src = _Source(path)
    text = _read_text(path)
    suffix = _suffix(path)
    if suffix == ".ipynb":
        threads = _notebook_threads(src, _json(src, text), use_cell_ids=False,
                                    strict=None).threads
    else:
        threads = _PARSERS[suffix](src, text)
        for thread in threads.values():
            _check_hashes(src, thread, lenient=False)
    if not threads:
        src.fail("holds no chat turns")
    return threads


# -- replay -----------------------------------------------------------------------------


def _short(text: str, at: int) -> str:
    """A quotable piece of ``text`` around position ``at`` (the first difference)."""
    start = max(0, at - 10) if at > 20 else 0
    piece = text[start : start + 40]
    return repr(("…" if start else "") + piece + ("…" if start + 40 < len(text) else ""))


def first_difference(recorded: Sequence[Message], now: Sequence[Message],
                     labels: Sequence[str]) -> str:
    """Which message differs first between a recorded request and this one, and how."""
    for k in range(max(len(recorded), len(now))):
        label = labels[k] if k < len(labels) else f"message {k + 1}"
        if k >= len(recorded):
            return f"there is an extra {now[k]['role']} message ({_short(now[k]['text'], 0)})"
        if k >= len(now):
            return f"{label} is missing"
        a, b = recorded[k], now[k]
        if a["role"] != b["role"]:
            return f"{label} is now a {b['role']} message"
        if a["text"] != b["text"]:
            at = next((i for i, (x, y) in enumerate(zip(a["text"], b["text"])) if x != y),
                      min(len(a["text"]), len(b["text"])))
            return f"{label} differs: recorded {_short(a['text'], at)}, now {_short(b['text'], at)}"
    return "the messages differ"


def _labels(thread: Thread, index: int) -> list[str]:
    turn = thread.turns[index]
    labels = ["the system prompt"] if turn.system_prompt else []
    for k in range(turn.context_start or 0, index):
        labels += [f"the user message of turn {k}", f"the reply of turn {k}"]
    return [*labels, "the user message"]


class ReplayFile:
    """``%chat replay``: answers each turn from a transcript, exactly, with no network.

    A request is answered only when thread, position and the SHA-256 of the exact
    messages all match the recorded turn; anything else is a ``ReplayMiss`` that
    names the first difference.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path).expanduser()
        self.threads = load_threads(self.path)

    def context_start(self, thread: str, index: int) -> int | None:
        recorded = self.threads.get(thread)
        if recorded is None or index >= len(recorded.turns):
            return None
        return recorded.turns[index].context_start

    def answer(self, thread: str, index: int, messages: Sequence[Message],
               options: RequestOptions) -> Reply:
        recorded = self.threads.get(thread)
        where = f"turn {index} of {thread!r}"
        if recorded is None:
            known = ", ".join(repr(n) for n in self.threads)
            raise ReplayMiss(f"Replay: {where}: {self.path} has no thread {thread!r} "
                             f"(it holds {known}); nothing was sent. %chat live asks the service.")
        if index >= len(recorded.turns):
            raise ReplayMiss(f"Replay: {where}: {self.path} holds only {len(recorded.turns)} "
                             f"turns of it; nothing was sent. %chat live asks the service.")
        turn = recorded.turns[index]
        if messages_sha256(messages) != turn.sha256:
            if turn.stale:
                diff = "the earlier turns differ from the ones it was answered with"
            else:
                diff = first_difference(sent_messages(recorded, index), messages,
                                        _labels(recorded, index))
            raise ReplayMiss(f"Replay: {where}: {diff}; nothing was sent. Undo the edit, or "
                             "run %chat live to ask the service.")
        return Reply(turn.reply, turn.status, turn.usage, turn.model,
                     turn.settings.get("model_version", ""))
