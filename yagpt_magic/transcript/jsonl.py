"""``.jsonl``: a recording, one JSON object per line, appended as turns commit.

A header ``{"format", "version", "kind": "record"}``, then events
``{"thread", "system_prompt", "length", "turn"?: TURN}``: set turn ``TURN.turn`` (if
present), then cut the thread to ``length`` turns (undo and reset are recorded too).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from ..core.conversation import Thread, Turn
from .files import FORMAT, VERSION, Source, check_header, parse_json, shown
from .turn_records import decode_turn, field, record_texts, turn_record


def header(**extra: Any) -> str:
    return json.dumps({"format": FORMAT, "version": VERSION, "kind": "record", **extra}) + "\n"


def event(thread: Thread, index: int | None = None, *, snapshot: bool = False) -> str:
    """One recording line; a ``snapshot`` line replays history, so it ends at its turn."""
    length = index + 1 if snapshot and index is not None else len(thread.turns)
    data: dict[str, Any] = {"thread": thread.name, "system_prompt": thread.system_prompt,
                            "length": length}
    if index is not None:
        data["turn"] = turn_record(thread.name, index, thread.turns[index])
    return json.dumps(data, ensure_ascii=False) + "\n"


def snapshot(thread: Thread) -> list[str]:
    """Lines that rebuild ``thread`` as it is now."""
    return [event(thread, i, snapshot=True) for i in range(len(thread.turns))] + [event(thread)]


def dump(threads: Sequence[Thread]) -> str:
    return "".join([header()] + [line for t in threads for line in snapshot(t)])


def parse(src: Source, text: str) -> dict[str, Thread]:
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    elif lines:
        src.fail(f"line {len(lines)} is not finished (the file looks truncated)")
    if not lines:
        src.fail("the file is empty")
    check_header(src, parse_json(src, lines[0], " on line 1"), "line 1")
    prompts: dict[str, str] = {}
    turns: dict[str, list[Turn]] = {}
    for number, line in enumerate(lines[1:], start=2):
        data = parse_json(src, line, f" on line {number}")
        where = f"line {number}"
        if not isinstance(data, dict):
            src.fail(f"{where} is not an object")
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
            turn = decode_turn(src, f"{where} (turn {index} of {name!r})", record, user, reply)
            if index == len(held):
                held.append(turn)
            else:
                held[index] = turn
        if not 0 <= length <= len(held):
            src.fail(f"{where}: length {shown(length)} of {name!r} is beyond its turns")
        del held[length:]
    return {name: Thread(name, prompts[name], held) for name, held in turns.items()}
