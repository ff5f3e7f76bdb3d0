"""``.jsonl``: a recording, one JSON object per line, appended as turns commit.

A header ``{"format", "version", "kind": "record"}``, then events
``{"thread", "system_prompt", "length", "turn"?: TURN}``: set turn ``TURN.turn`` (if
present), then cut the thread to ``length`` turns (undo and reset are recorded too).
An image (SPEC 15) is one line ``{"image": {"sha256", "mime", "data"}}`` (base64),
written once, before the first event whose turn sent it; the header is then version 2.
The header also counts the lines after it (``"lines": N``; since issue 25): a recording
cut on a line boundary is otherwise a valid, shorter one. The recorder rewrites the file
whole on every change, so the count is always current; a header without it (an older
file) is read as before.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from ..core.conversation import Thread, Turn
from ..core.images import Image
from .files import (
    FORMAT,
    IMAGES_VERSION,
    VERSION,
    Source,
    check_count,
    check_header,
    parse_json,
    shown,
    version_for,
)
from .turn_records import decode_image, decode_turn, field, images_table, record_texts, turn_record


def header(version: int = VERSION, **extra: Any) -> str:
    return json.dumps({"format": FORMAT, "version": version, "kind": "record", **extra}) + "\n"


def image_lines(thread: Thread, index: int, written: set[str]) -> list[str]:
    """A line for each image of turn ``index`` not ``written`` yet (and now it is)."""
    lines = []
    for sha, entry in images_table([Thread(thread.name, "", [thread.turns[index]])]).items():
        if sha not in written:
            written.add(sha)
            lines.append(json.dumps({"image": {"sha256": sha, **entry}}) + "\n")
    return lines


def counted(text: str) -> str:
    """A recording (a header, then lines each ending in a newline) whose header counts
    the lines after it."""
    first, _, rest = text.partition("\n")
    return json.dumps({**json.loads(first), "lines": rest.count("\n")}) + "\n" + rest


def with_images_version(text: str) -> str:
    """``text`` whose header says version 2, as a recording that holds images must."""
    first, newline, rest = text.partition("\n")
    data = json.loads(first)
    if data.get("version", VERSION) >= IMAGES_VERSION:
        return text
    return json.dumps({**data, "version": IMAGES_VERSION}) + newline + rest


def event(thread: Thread, index: int | None = None, *, snapshot: bool = False) -> str:
    """One recording line; a ``snapshot`` line replays history, so it ends at its turn."""
    length = index + 1 if snapshot and index is not None else len(thread.turns)
    data: dict[str, Any] = {"thread": thread.name, "system_prompt": thread.system_prompt,
                            "length": length}
    if index is not None:
        data["turn"] = turn_record(thread.name, index, thread.turns[index])
    return json.dumps(data, ensure_ascii=False) + "\n"


def snapshot(thread: Thread, written: set[str] | None = None) -> list[str]:
    """Lines that rebuild ``thread`` as it is now (with the images not ``written`` yet)."""
    written = set() if written is None else written
    lines = []
    for index in range(len(thread.turns)):
        lines += image_lines(thread, index, written)
        lines.append(event(thread, index, snapshot=True))
    return [*lines, event(thread)]


def dump(threads: Sequence[Thread]) -> str:
    written: set[str] = set()
    return counted("".join([header(version_for(threads))]
                           + [line for t in threads for line in snapshot(t, written)]))


def parse(src: Source, text: str) -> dict[str, Thread]:
    return parse_recording(src, text)[0]


def parse_recording(src: Source, text: str) -> tuple[dict[str, Thread], dict[str, Image]]:
    """The threads a recording ends with, and every image it holds (by SHA-256)."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    elif lines:
        src.fail(f"line {len(lines)} is not finished (the file looks truncated)")
    if not lines:
        src.fail("the file is empty")
    head = parse_json(src, lines[0], " on line 1")
    check_header(src, head, "line 1")
    prompts: dict[str, str] = {}
    turns: dict[str, list[Turn]] = {}
    images: dict[str, Image] = {}
    for number, line in enumerate(lines[1:], start=2):
        data = parse_json(src, line, f" on line {number}")
        where = f"line {number}"
        if not isinstance(data, dict):
            src.fail(f"{where} is not an object")
        if "image" in data:
            entry = data["image"]
            sha = entry.get("sha256") if isinstance(entry, dict) else None
            images[str(sha)] = decode_image(src, where, sha, entry)
            continue
        name = field(src, where, data, "thread", (str,))
        held = turns.setdefault(name, [])
        prompts[name] = field(src, where, data, "system_prompt", (str,))
        length = field(src, where, data, "length", (int,))
        if "turn" in data:
            record = data["turn"]
            user, reply = record_texts(src, where, record)
            index = field(src, where, record, "turn", (int,))
            if not 0 <= index <= len(held):
                src.fail(f"{where}: turn {shown(index)} of {name!r} leaves a gap")
            turn = decode_turn(src, f"{where} (turn {index} of {name!r})", record, user, reply,
                               images)
            if index == len(held):
                held.append(turn)
            else:
                held[index] = turn
        if not 0 <= length <= len(held):
            src.fail(f"{where}: length {shown(length)} of {name!r} is beyond its turns")
        del held[length:]
    # Last: a line that is there but wrong says more than the count of lines missing.
    check_count(src, head, "lines", len(lines) - 1, "lines after it")
    return {name: Thread(name, prompts[name], held) for name, held in turns.items()}, images
