"""``.md``: readable Markdown whose HTML comments hold the metadata and fences the texts.

One heading per turn, the user message and reply in fenced blocks longer than any
backtick run inside them, and the metadata as JSON in an HTML comment
(``<!-- yagpt-magic-turn {...} -->``) before each turn.

Images (SPEC 15) are embedded, so the file stays one file that moves whole: a section
at the end holds each image once, as ``<!-- yagpt-magic-image {"sha256", "mime"} -->``
followed by a Markdown image whose address is its data URL (a viewer that shows data
URLs shows it); a turn's metadata names its images by SHA-256, and a line under the
message lists them for the reader. Such a file is version 2.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from ..core import __version__
from ..core.conversation import Thread, Turn
from ..core.images import Image
from ..core.template import fence
from ..display.reply import inert_markdown
from .files import FORMAT, Source, check_count, check_header, parse_json, version_for
from .turn_records import (
    add_thread,
    check_index,
    decode_image,
    decode_turn,
    field,
    images_table,
    thread_header,
    turn_record,
)

_COMMENT = re.compile(r"^<!-- (yagpt-magic-(?:transcript|thread|turn|image)) (\{.*\}) -->$")
_IMAGE = re.compile(r"^!\[[^\]\n]*\]\(data:([a-z/]+);base64,([A-Za-z0-9+/=]*)\)$")

def one_line(text: str) -> str:
    """``text`` with every line break IPython splits on made a space (a magic line is one line)."""
    return " ".join(text.splitlines())


def comment(kind: str, data: dict[str, Any]) -> str:
    # '<' and '>' only occur inside JSON strings, where \u escapes keep "-->" out.
    body = json.dumps(data, ensure_ascii=False).replace("<", "\\u003c").replace(">", "\\u003e")
    return f"<!-- {kind} {body} -->"


def heading(text: str) -> str:
    return inert_markdown(one_line(text))


def dump(threads: Sequence[Thread]) -> str:
    # The header counts the threads and turns: a file cut between two turns is seen.
    head = {"format": FORMAT, "version": version_for(threads), "threads": len(threads),
            "turns": sum(len(t.turns) for t in threads)}
    parts = [comment("yagpt-magic-transcript", head),
             f"# Chat transcript\n\nSaved by yagpt-magic {__version__}. "
             "`%chat load` this file to rebuild the threads; the HTML comments hold the "
             "metadata and each fenced block is the exact text."]
    for thread in threads:
        name = heading(thread.name)
        parts.append(f"## Thread {name}\n\n" + comment(
            "yagpt-magic-thread", {"name": thread.name, "system_prompt": thread.system_prompt}))
        if thread.system_prompt:
            parts.append("System prompt:\n\n" + fence(thread.system_prompt, "text"))
        for index, turn in enumerate(thread.turns):
            record = turn_record(thread.name, index, turn, texts=False)
            parts.append(f"### {name}, turn {index}: message\n\n"
                         + comment("yagpt-magic-turn", record) + "\n\n"
                         + fence(turn.user, "text"))
            if turn.images:
                parts.append("Images sent with it: " + "; ".join(
                    inert_markdown(f"{image.label} (sha256 {image.sha256[:12]})")
                    for image in turn.images))
            parts.append(f"### {name}, turn {index}: reply\n\n" + fence(turn.reply, "markdown"))
    images = images_table(threads)
    if images:
        parts.append("## Images\n\nEach image the turns above sent, once.")
        for sha, entry in images.items():
            parts.append(comment("yagpt-magic-image", {"sha256": sha, "mime": entry["mime"]})
                         + f"\n![image {sha[:12]}](data:{entry['mime']};base64,{entry['data']})")
    return "\n\n".join(parts) + "\n"


def _images(src: Source, lines: list[str]) -> dict[str, Image]:
    """Every image of the Images section: its comment, then its data URL on the next line."""
    images: dict[str, Image] = {}
    for number, line in enumerate(lines):
        match = _COMMENT.match(line)
        if match is None or match.group(1) != "yagpt-magic-image":
            continue
        where = f"the image on line {number + 1}"
        data = parse_json(src, match.group(2), f" in the comment on line {number + 1}")
        if not isinstance(data, dict):
            src.fail(f"{where}: its comment is not an object")
        sha = field(src, where, data, "sha256", (str,))
        url = _IMAGE.match(lines[number + 1]) if number + 1 < len(lines) else None
        if url is None:
            src.fail(f"{where}: the line after its comment is not its data URL (the file "
                     "looks truncated or edited)")
        images[sha] = decode_image(src, where, sha, {"mime": field(src, where, data, "mime",
                                                                   (str,)),
                                                     "data": url.group(2)})
        if url.group(1) != images[sha].mime:
            src.fail(f"{where}: its data URL says {url.group(1)}, its comment {images[sha].mime}")
    return images


def _lines(text: str) -> list[str]:
    """The file's lines; a file whose every line ends in CRLF (a Windows editor, git's
    autocrlf) is read as the LF file it was written as."""
    if "\r\n" in text and text.count("\r\n") == text.count("\n"):
        text = text.replace("\r\n", "\n")
    return text.split("\n")


def parse(src: Source, text: str) -> dict[str, Thread]:
    lines = _lines(text)
    first = _COMMENT.match(lines[0]) if lines else None
    if first is None or first.group(1) != "yagpt-magic-transcript":
        src.fail("not a yagpt-magic transcript (the first line is not its header comment)")
    head = parse_json(src, first.group(2), " in the header comment")
    check_header(src, head, "the header")
    found: dict[str, tuple[Thread, list[Turn]]] = {}
    current: tuple[Thread, list[Turn]] | None = None
    pos = 1
    images = _images(src, lines)

    def fenced(after: int, where: str) -> tuple[str, int]:
        """The exact text of the next fenced block after line ``after``, and where it ends."""
        i = after
        while i < len(lines) and not lines[i].startswith("```"):
            if _COMMENT.match(lines[i]):
                src.fail(f"{where}: a fenced block is missing")
            i += 1
        if i == len(lines):
            src.fail(f"{where}: a fenced block is missing (the file looks truncated)")
        mark = re.match(r"`+", lines[i])
        assert mark is not None  # the loop above stopped on a line starting with ```
        for j in range(i + 1, len(lines)):
            if lines[j] == mark.group(0):
                return "\n".join(lines[i + 1 : j]), j + 1
        src.fail(f"{where}: a fenced block is not closed (the file looks truncated)")

    while pos < len(lines):
        match = _COMMENT.match(lines[pos])
        pos += 1
        if match is None:
            continue
        kind = match.group(1)
        data = parse_json(src, match.group(2), f" in the comment on line {pos}")
        if kind == "yagpt-magic-thread":
            header = thread_header(src, f"the thread comment on line {pos}", data)
            if header.name in found:
                src.fail(f"thread {header.name!r} appears twice")
            current = found[header.name] = (header, [])
            if header.system_prompt:  # shown for reading; skipped so its text is never parsed
                _, pos = fenced(pos, f"the system prompt of {header.name!r}")
        elif kind == "yagpt-magic-turn":
            if current is None:
                src.fail(f"line {pos}: a turn before any thread")
            header, turns = current
            where = f"turn {len(turns)} of {header.name!r}"
            if not isinstance(data, dict):
                src.fail(f"{where}: turn metadata is not an object")
            check_index(src, where, data, len(turns))
            user, pos = fenced(pos, where)
            reply, pos = fenced(pos, where)
            turns.append(decode_turn(src, where, data, user, reply, images))
        elif kind == "yagpt-magic-image":
            continue  # read above, before the turns that name it
        else:
            src.fail(f"line {pos}: a second transcript header")
    threads: dict[str, Thread] = {}
    for header, turns in found.values():
        add_thread(src, threads, Thread(header.name, header.system_prompt, turns))
    check_count(src, head, "threads", len(threads), "threads")
    check_count(src, head, "turns", sum(len(t.turns) for t in threads.values()), "turns")
    return threads
