"""One turn as a record: the reply metadata of SPEC 6 plus the exact texts, both ways.

Every format stores a turn this way (``.json`` and ``.jsonl`` as objects, ``.md`` in
comments, ``.ipynb`` in output metadata), so reading checks every field here, once.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable, Mapping
from typing import Any

from ..core.conversation import (
    ContextHash,
    Thread,
    ToolCall,
    ToolRound,
    Turn,
    Usage,
)
from ..core.errors import UsageProblem
from ..core.images import FORMATS, Image
from ..core.session import turn_metadata
from ..core.storable import turn_problem
from .files import Source, shown

_USAGE_FIELDS = ("input_tokens", "completion_tokens", "reasoning_tokens", "total_tokens")
_STATUSES = ("final", "truncated")
_OUTCOMES = ("ran", "raised", "refused", "unknown", "invalid")
_SHA = re.compile(r"^[0-9a-f]{64}$")


def turn_record(thread: str, index: int, turn: Turn, *, texts: bool = True) -> dict[str, Any]:
    """A turn as stored in every format: its reply metadata, ``stale``, and the texts."""
    record = turn_metadata(thread, index, turn)
    record["stale"] = turn.stale
    if texts:
        record["user"] = turn.user
        record["reply"] = turn.reply
    return record


def field(src: Source, where: str, record: dict[str, Any], name: str, kinds: Any,
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


def decode_turn(src: Source, where: str, record: Any, user: str, reply: str,
                images: Mapping[str, Image] | None = None) -> Turn:
    """A ``Turn`` from a record, checking every field's type; ``images`` by SHA-256."""
    if not isinstance(record, dict):
        src.fail(f"{where}: turn metadata is not an object")
    usage = field(src, where, record, "usage", (dict,))
    counts = []
    for name in _USAGE_FIELDS:
        counts.append(field(src, where + " usage", usage, name, (int,)))
    status = field(src, where, record, "status", (str,))
    if status not in _STATUSES:
        src.fail(f"{where}: unknown status {status!r}")
    sha = field(src, where, record, "messages_sha256", (str,))
    if sha and not _SHA.match(sha):
        src.fail(f"{where}: messages_sha256 is not a SHA-256 hex digest")
    context_start = field(src, where, record, "context_start", (int, type(None)))
    if context_start is not None and context_start < 0:
        src.fail(f"{where}: context_start {shown(context_start)} is negative")
    cell_id = field(src, where, record, "cell_id", (str, type(None)))
    turn = Turn(
        user=user,
        reply=reply,
        cell_id=cell_id,
        model=field(src, where, record, "model_uri", (str,)),
        settings={
            "model_version": field(src, where, record, "model_version", (str,)),
            "temperature": field(src, where, record, "temperature", (int, float, type(None))),
            "max_tokens": field(src, where, record, "max_tokens", (int, type(None))),
            "reasoning_mode": field(src, where, record, "reasoning_mode", (str, type(None))),
        },
        usage=Usage(*counts),
        status=status,
        started=field(src, where, record, "started", (str,)),
        finished=field(src, where, record, "finished", (str,)),
        sha256=sha,
        system_prompt=field(src, where, record, "system_prompt", (str,)),
        context_start=context_start,
        stale=field(src, where, record, "stale", (bool,), False),
        tool_rounds=decode_tool_rounds(src, where, field(src, where, record, "tool_rounds",
                                                         (list,), [])),
        schema=field(src, where, record, "schema", (str, type(None)), None),
        value=record.get("value"),
        api=field(src, where, record, "api", (str,), ""),
        images=decode_image_refs(src, where, field(src, where, record, "images", (list,), []),
                                 images or {}),
    )
    unkept = turn_problem(turn)  # what a turn could not hold when made, it cannot here
    if unkept:
        src.fail(f"{where}: {unkept}")
    return turn


# -- images (SPEC 15): each kept once per SHA-256, turns refer to them ---------------------


def images_table(threads: Iterable[Thread]) -> dict[str, dict[str, str]]:
    """Every image the threads sent, once each: SHA-256 -> ``{"mime", "data"}`` (base64)."""
    table: dict[str, dict[str, str]] = {}
    for thread in threads:
        for turn in thread.turns:
            for image in turn.images:
                if image.sha256 not in table:
                    table[image.sha256] = {
                        "mime": image.mime, "data": base64.b64encode(image.data).decode("ascii")}
    return table


def decode_image(src: Source, where: str, sha: Any, entry: Any) -> Image:
    """One stored image, checked whole: its bytes must be the image its SHA-256 names."""
    if not isinstance(sha, str) or not _SHA.match(sha):
        src.fail(f"{where}: {shown(sha)} is not a SHA-256 hex digest")
    if not isinstance(entry, dict):
        src.fail(f"{where}: image {sha[:12]}… is not an object")
    mime = field(src, where, entry, "mime", (str,))
    text = field(src, where, entry, "data", (str,))
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        src.fail(f"{where}: image {sha[:12]}… is not valid base64 (corrupted)")
    try:
        image = Image.from_bytes(data)
    except UsageProblem as err:
        src.fail(f"{where}: image {sha[:12]}… is not a readable image "
                 f"({str(err).split(';')[0]})")
    if image.sha256 != sha:
        src.fail(f"{where}: image {sha[:12]}… does not match its SHA-256 (edited or corrupted)")
    if image.mime != mime:
        src.fail(f"{where}: image {sha[:12]}… is {FORMATS[image.mime]}, not {shown(mime)}")
    return image


def decode_images(src: Source, where: str, table: Any) -> dict[str, Image]:
    """A stored image table (SHA-256 -> ``{"mime", "data"}``), every image checked."""
    if not isinstance(table, dict):
        src.fail(f"{where}: the images are not an object")
    return {sha: decode_image(src, where, sha, entry) for sha, entry in table.items()}


def decode_image_refs(src: Source, where: str, refs: list[Any],
                      images: Mapping[str, Image]) -> tuple[Image, ...]:
    """A turn's images, as its record names them (``{"sha256", "name"}``), from the table."""
    found = []
    for n, ref in enumerate(refs):
        at = f"{where} image {n}"
        if not isinstance(ref, dict):
            src.fail(f"{at}: not an object")
        sha = field(src, at, ref, "sha256", (str,))
        name = field(src, at, ref, "name", (str,), "")
        image = images.get(sha)
        if image is None:
            src.fail(f"{at} ({shown(name) if name else 'unnamed'}, sha256 {sha[:12]}…) is "
                     "missing from the file")
        found.append(Image(image.data, image.mime, image.sha256, image.width, image.height,
                           name))
    return tuple(found)


def decode_tool_rounds(src: Source, where: str, rounds: list[Any]) -> tuple[ToolRound, ...]:
    """A turn's recorded tool calls (SPEC 12); loading them never runs anything."""
    decoded = []
    for k, item in enumerate(rounds):
        at = f"{where} tool round {k}"
        if not isinstance(item, dict):
            src.fail(f"{at}: not an object")
        usage = field(src, at, item, "usage", (dict,))
        counts = [field(src, at + " usage", usage, name, (int,)) for name in _USAGE_FIELDS]
        calls = []
        for n, call in enumerate(field(src, at, item, "calls", (list,))):
            here = f"{at} call {n}"
            if not isinstance(call, dict):
                src.fail(f"{here}: not an object")
            outcome = field(src, here, call, "outcome", (str,))
            if outcome not in _OUTCOMES:
                src.fail(f"{here}: unknown outcome {outcome!r}")
            calls.append(ToolCall(field(src, here, call, "name", (str,)),
                                  field(src, here, call, "arguments", (dict,)),
                                  field(src, here, call, "result", (str,)), outcome,
                                  field(src, here, call, "id", (str,), "")))
        if not calls:
            src.fail(f"{at}: no calls")
        decoded.append(ToolRound(tuple(calls), Usage(*counts)))
    return tuple(decoded)


def record_texts(src: Source, where: str, record: Any) -> tuple[str, str]:
    if not isinstance(record, dict):
        src.fail(f"{where}: turn is not an object")
    return (field(src, where, record, "user", (str,)),
            field(src, where, record, "reply", (str,)))


def check_hashes(src: Source, thread: Thread, *, lenient: bool) -> None:
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
                           system=turn.system_prompt, images=turn.images)
        if digest != turn.sha256:
            if lenient:
                thread.mark_stale(index)
            else:
                src.fail(
                    f"turn {index} of {thread.name!r}: the recorded messages_sha256 does not "
                    "match the messages it was answered with (edited or corrupted)"
                )


def thread_header(src: Source, where: str, data: Any) -> Thread:
    if not isinstance(data, dict):
        src.fail(f"{where} is not an object")
    name = field(src, where, data, "name", (str,))
    if not name.strip():
        src.fail(f"{where}: empty thread name")
    return Thread(name, field(src, where, data, "system_prompt", (str,), ""))


def add_thread(src: Source, threads: dict[str, Thread], thread: Thread) -> None:
    if thread.name in threads:
        src.fail(f"thread {thread.name!r} appears twice")
    threads[thread.name] = thread


def check_index(src: Source, where: str, record: dict[str, Any], expected: int) -> None:
    index = field(src, where, record, "turn", (int,))
    if index != expected:
        src.fail(f"{where}: turn index {shown(index)} where {expected} was expected")


