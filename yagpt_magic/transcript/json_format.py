"""``.json``: ``{"format", "version", "threads": [{"name", "system_prompt", "turns"}]}``.

Each turn is the record of ``records.turn_record`` (reply metadata, ``stale`` and the
exact ``user``/``reply`` texts). Images (SPEC 15) are kept once each, in a top-level
``"images": {SHA-256: {"mime", "data"}}`` (base64), and a turn's ``"images"`` lists
``{"sha256", "name"}``; such a file is version 2. Readers refuse a newer version.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from ..core.conversation import Thread
from .files import FORMAT, Source, check_header, parse_json, version_for
from .turn_records import (
    add_thread,
    check_index,
    decode_images,
    decode_turn,
    field,
    images_table,
    record_texts,
    thread_header,
    turn_record,
)


def dump(threads: Sequence[Thread]) -> str:
    images = images_table(threads)
    return json.dumps(
        {
            "format": FORMAT,
            "version": version_for(threads),
            **({"images": images} if images else {}),
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


def parse(src: Source, text: str) -> dict[str, Thread]:
    data = parse_json(src, text)
    check_header(src, data, "the top-level object")
    items = data.get("threads")
    if not isinstance(items, list):
        src.fail('"threads" is missing or not a list')
    images = decode_images(src, '"images"', data.get("images", {}))
    threads: dict[str, Thread] = {}
    for n, item in enumerate(items):
        header = thread_header(src, f"thread {n}", item)
        records = field(src, f"thread {header.name!r}", item, "turns", (list,))
        turns = []
        for i, record in enumerate(records):
            where = f"turn {i} of {header.name!r}"
            user, reply = record_texts(src, where, record)
            check_index(src, where, record, i)
            turns.append(decode_turn(src, where, record, user, reply, images))
        add_thread(src, threads, Thread(header.name, header.system_prompt, turns))
    return threads
