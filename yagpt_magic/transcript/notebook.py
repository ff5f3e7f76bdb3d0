"""``.ipynb``: transcripts as runnable notebooks, and threads read back from notebooks.

A transcript notebook (``%chat save x.ipynb``) is built with nbformat's own
constructors: a Markdown cell with each thread's settings (also under the cell's
``yagpt_magic`` metadata, exactly), a ``%chat system`` cell when there is a prompt,
then one ``%%chat -t NAME`` cell per turn whose output is the reply with the turn's
metadata (``text/plain`` exactly the reply, ``text/html`` rendered and sanitized). It
is read back strictly; readers take ``text/plain`` only, so older files whose outputs
carry ``text/markdown`` still load. Any other notebook (a live one, for ``%chat
restore``) is read leniently: as the kernel left it.

Images (SPEC 15) are kept where the notebook shows them: the reply output of the turn
that sent an image shows it as a thumbnail whose address is the image's data URL, and
that is its stored copy (a transcript shows each image once; a later turn that sent it
again names it). The output's metadata lists each image by SHA-256, so reading takes
every ``data:`` image of the outputs, checks it against those hashes, and never trusts
the HTML for anything else. The cell's line names each image (``--image NAME``), so
running the cell again sends it again (``%chat replay`` takes it from the recording).
"""

from __future__ import annotations

import base64
import dataclasses
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..core import __version__
from ..core.conversation import Thread, Turn
from ..core.errors import UsageProblem
from ..core.images import Image
from ..core.template import fence
from ..display.reply import ReplyView, plain_notices
from .files import FORMAT, KEY, VERSION, Source, check_header, shown, version_for
from .markdown import heading, one_line
from .turn_records import check_hashes, decode_turn, field, thread_header, turn_record

_CELL_ID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_SETUP = re.compile(r"^\s*%(load_ext|reload_ext)\s+yagpt_magic\s*$|^\s*%chat(\s.*)?$")
# The notices of version 0.1.0 outputs, which kept them only as text.
_OLD_LEFT_OUT = re.compile(r"\n\[\d+ earlier turns? left out to fit the \d+-token window\.\]\Z")
_OLD_TRUNCATED = "\n[The reply was cut at max_tokens; raise --max-tokens to get all of it.]"
#: A thumbnail's address, as ``render.thumbnails_html`` writes it.
_DATA_IMAGE = re.compile(r'<img src="data:(image/(?:png|jpeg|webp));base64,([A-Za-z0-9+/=]+)"')


# -- writing ------------------------------------------------------------------------------


def quote_arg(value: str) -> str:
    """``value`` as one argument of a magic line (IPython keeps quotes; we strip one pair)."""
    if value and not re.search(r"[\s'\"]", value):
        return value
    quote = "'" if '"' in value else '"'
    return f"{quote}{value}{quote}"


def system_line(thread: str, text: str) -> str:
    """A ``%chat system`` line that sets exactly ``text`` (plain, or ``--json`` if it must)."""
    name = thread if re.fullmatch(r"[^\s'\"]+", thread) else json.dumps(thread)
    plain = text.splitlines() == [text] and text == text.strip() and text[0] not in "'\"-"
    if plain:
        return f"%chat system -t {name} {text}"
    return f"%chat system -t {name} --json {json.dumps(text, ensure_ascii=False)}"


def _cell_id(wanted: str | None, fallback: str, used: set[str]) -> str:
    cid = wanted if wanted and _CELL_ID.match(wanted) and wanted not in used else fallback
    n = 0
    while cid in used:
        n += 1
        cid = f"{fallback}-{n}"
    used.add(cid)
    return cid


def _reply_output(thread: str, index: int, turn: Turn, shown_images: set[str]) -> Any:
    from nbformat.v4 import new_output

    record = turn_record(thread, index, turn, texts=False)
    record["transcript"] = VERSION  # text/plain is exactly the reply, the cell body the message
    view = ReplyView(thread=thread, text=turn.reply, images=turn.images,
                     shown_above=tuple(i.sha256 for i in turn.images if i.sha256 in shown_images))
    shown_images.update(i.sha256 for i in turn.images)
    if turn.schema is not None:  # shown as the live output showed it: highlighted JSON
        from ..core.structured import json_markdown

        view.value_markdown = json_markdown(turn.value)
    data, _ = view._repr_mimebundle_()
    data["text/plain"] = turn.reply
    return new_output("display_data", data=data, metadata={KEY: record})


def build(threads: Sequence[Thread]) -> Any:
    """The transcript notebook (an nbformat 4.5 ``NotebookNode``)."""
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

    used: set[str] = set()
    shown_images: set[str] = set()
    cells = [
        new_markdown_cell(
            f"# Chat transcript\n\nSaved by yagpt-magic {__version__}. Run it to ask again, "
            "`%chat load` it to rebuild the threads, or `%chat replay` it to answer the same "
            "cells offline with these exact replies.", id=_cell_id(None, "transcript", used)),
        new_code_cell("%load_ext yagpt_magic", id=_cell_id(None, "load-ext", used)),
    ]
    for n, thread in enumerate(threads):
        tag = f"t{n}"
        text = f"## Thread {heading(thread.name)}\n\n"
        if thread.system_prompt:
            text += "System prompt:\n\n" + fence(thread.system_prompt, "text")
        else:
            text += "No system prompt."
        cells.append(new_markdown_cell(
            text, id=_cell_id(None, f"{tag}-settings", used),
            metadata={KEY: {"thread": thread.name, "system_prompt": thread.system_prompt}}))
        if thread.system_prompt:
            cells.append(new_code_cell(system_line(one_line(thread.name), thread.system_prompt),
                                       id=_cell_id(None, f"{tag}-system", used)))
        line = f"%%chat -t {quote_arg(one_line(thread.name))}"
        for index, turn in enumerate(thread.turns):
            named = "".join(f" --image {quote_arg(one_line(i.name))}" for i in turn.images
                            if i.name)
            cells.append(new_code_cell(
                line + named + "\n" + turn.user,
                id=_cell_id(turn.cell_id, f"{tag}-turn-{index}", used),
                outputs=[_reply_output(thread.name, index, turn, shown_images)]))
    notebook = new_notebook(cells=cells, metadata={
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
        KEY: {"format": FORMAT, "version": version_for(threads)},
    })
    notebook.nbformat_minor = 5
    return notebook


def dump(threads: Sequence[Thread]) -> str:
    return json.dumps(build(threads), ensure_ascii=False, indent=1) + "\n"


# -- reading ------------------------------------------------------------------------------


@dataclass
class NotebookRead:
    """Threads rebuilt from a notebook, and the ``%%chat`` cells that could not be used."""

    threads: dict[str, Thread]
    unanswered: int = 0
    interpolated: int = 0
    #: Thread -> the turn numbers (``turn`` in the metadata) that no cell holds: turns
    #: made in the chat widget, or whose cell was deleted. They cannot be restored.
    missing: dict[str, tuple[int, ...]] = dataclasses.field(default_factory=dict)
    #: Thread -> how many restored turns come after a missing one (marked stale: they
    #: were answered with it as context).
    after_missing: dict[str, int] = dataclasses.field(default_factory=dict)


@dataclass
class _Reply:
    """A ``%%chat`` cell's reply, before threads are assembled."""

    position: int
    line: str
    body: str
    cell_id: str | None
    meta: dict[str, Any]
    data: dict[str, Any]


def _chat_line(source: str) -> tuple[str, str] | None:
    """The ``%%chat`` line and body of a cell, or None for any other cell."""
    first, _, body = source.partition("\n")
    words = first.split()
    if not words or words[0] != "%%chat":
        return None
    return first, body


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


def _reply_text(src: Source, where: str, data: dict[str, Any], meta: dict[str, Any]) -> str:
    """The exact reply: text/plain without the notices the metadata says were appended."""
    plain = data.get("text/plain")
    if isinstance(plain, list):
        plain = "".join(plain)
    if not isinstance(plain, str):
        src.fail(f"{where}: the reply output has no text/plain")
    if meta.get("transcript"):
        return plain
    notices = meta.get("notices")
    if isinstance(notices, list):
        suffix = plain_notices([n for n in notices if isinstance(n, dict)])
        return plain[: len(plain) - len(suffix)] if suffix and plain.endswith(suffix) else plain
    # An output of version 0.1.0, which kept its notices only as text.
    if meta.get("status") == "truncated" and plain.endswith(_OLD_TRUNCATED):
        plain = plain[: -len(_OLD_TRUNCATED)]
    if meta.get("context_start"):
        found = _OLD_LEFT_OUT.search(plain)
        if found is not None:
            plain = plain[: found.start()]
    return plain


def _validate(src: Source, data: Any) -> None:
    import nbformat

    if not isinstance(data, dict) or "cells" not in data or "nbformat" not in data:
        src.fail("not a Jupyter notebook (no \"cells\" and \"nbformat\")")
    major = data.get("nbformat")
    if major != 4:
        src.fail(f"nbformat {major!r} notebook; only nbformat 4 is read (open and save it in "
                 "a current Jupyter to convert it)")
    minor = data.get("nbformat_minor")
    try:
        nbformat.validate(data, version=4, version_minor=minor if isinstance(minor, int) else None)
    except nbformat.ValidationError as err:
        src.fail(f"not a valid nbformat 4 notebook ({str(err.message).splitlines()[0][:160]})")


def _scan(src: Source, data: dict[str, Any], *, strict: bool
          ) -> tuple[list[_Reply], dict[str, str], NotebookRead]:
    """The ``%%chat`` replies in cell order, and (strict) each thread's settings cell."""
    result = NotebookRead({})
    replies: list[_Reply] = []
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
                header = thread_header(src, f"{where} (thread settings)", {
                    "name": settings.get("thread"),
                    "system_prompt": settings.get("system_prompt", "")})
                if header.name in prompts:
                    src.fail(f"{where}: thread {header.name!r} appears twice")
                prompts[header.name] = header.system_prompt
            continue
        if cell.get("cell_type") != "code":
            continue
        chat = _chat_line(source)
        if chat is None:
            if strict and not _is_setup(source):
                src.fail(f"{where} is a code cell that is not %%chat (a transcript holds "
                         "only %%chat cells)")
            continue
        reply = _reply_of(cell)
        if reply is None:
            if strict:
                src.fail(f"{where}: %%chat cell without reply metadata")
            result.unanswered += 1
            continue
        cell_id = cell.get("id") if isinstance(cell.get("id"), str) else None
        replies.append(_Reply(position, chat[0], chat[1], cell_id, *reply))
    return replies, prompts, result


def _images(replies: Sequence[_Reply]) -> dict[str, Image]:
    """Every image the reply outputs show, by SHA-256 (what their metadata names them by).

    Only images whose bytes hash to a SHA-256 some output's metadata names are kept; an
    image named but not found is reported by the turn that names it.
    """
    named = {ref.get("sha256") for reply in replies
             for ref in reply.meta.get("images") or [] if isinstance(ref, dict)}
    found: dict[str, Image] = {}
    for reply in replies:
        page = reply.data.get("text/html")
        page = "".join(page) if isinstance(page, list) else page
        if not named or not isinstance(page, str) or "data:image/" not in page:
            continue
        for match in _DATA_IMAGE.finditer(page):
            try:
                image = Image.from_bytes(base64.b64decode(match.group(2), validate=True))
            except (UsageProblem, ValueError):
                continue  # not one of ours: the turn that names its hash reports it missing
            if image.sha256 in named:
                found[image.sha256] = image
    return found


def _turn(src: Source, reply: _Reply, images: dict[str, Image]) -> tuple[str, int, Turn]:
    where = f"cell {reply.position + 1}"
    meta = reply.meta
    name = field(src, where, meta, "thread", (str,))
    index = field(src, where, meta, "turn", (int,))
    if index < 0:
        src.fail(f"{where}: turn index {shown(index)} is negative")
    sent = meta.get("user")
    if isinstance(sent, str):
        user = sent
    else:
        user = reply.body if meta.get("transcript") else reply.body.strip("\n")
    turn = decode_turn(src, f"{where} (turn {index} of {name!r})", meta, user,
                       _reply_text(src, where, reply.data, meta), images)
    return name, index, turn


def read_transcript(src: Source, data: dict[str, Any]) -> NotebookRead:
    """A notebook ``%chat save`` wrote: every code cell a ``%%chat`` reply, in order."""
    check_header(src, (data.get("metadata") or {}).get(KEY), "the notebook metadata")
    replies, prompts, result = _scan(src, data, strict=True)
    turns: dict[str, list[Turn]] = {name: [] for name in prompts}
    images = _images(replies)
    for reply in replies:
        name, index, turn = _turn(src, reply, images)
        held = turns.setdefault(name, [])
        if index != len(held):
            src.fail(f"cell {reply.position + 1}: turn index {shown(index)} where {len(held)} "
                     f"was expected in thread {name!r}")
        held.append(turn)
    for name, held in turns.items():
        thread = Thread(name, prompts.get(name, ""), held)
        check_hashes(src, thread, lenient=False)
        result.threads[name] = thread
    return result


def read_live(src: Source, data: dict[str, Any], *, use_cell_ids: bool) -> NotebookRead:
    """Any notebook, as the kernel left it: re-runs win their slot, stale turns are marked.

    Cells never run or failed are counted and skipped; ``use_cell_ids`` keys each turn
    by its cell's ``id`` (for ``%chat restore``).
    """
    replies, _, result = _scan(src, data, strict=False)
    found: dict[str, dict[int, Turn]] = {}
    images = _images(replies)
    for reply in replies:
        sent = reply.meta.get("user")
        if ("--vars" in reply.line.split() and not reply.meta.get("transcript")
                and not isinstance(sent, str)):
            # Older outputs: the message sent was the interpolated text, not kept anywhere.
            result.interpolated += 1
            continue
        name, index, turn = _turn(src, reply, images)
        if use_cell_ids and reply.cell_id is not None:
            turn.cell_id = reply.cell_id
        # Kernel order, not cell order; of two outputs claiming a slot the later one won.
        slots = found.setdefault(name, {})
        held = slots.get(index)
        if held is None or turn.finished >= held.finished:
            slots[index] = turn
    for name, slots in found.items():
        turns = [slots[i] for i in sorted(slots)]
        missing = tuple(i for i in range(max(slots) + 1) if i not in slots)
        if missing:
            result.missing[name] = missing
            result.after_missing[name] = _after_missing(slots, missing)
        thread = Thread(name, turns[-1].system_prompt if turns else "", turns)
        check_hashes(src, thread, lenient=True)
        result.threads[name] = thread
    return result


def _after_missing(slots: dict[int, Turn], missing: tuple[int, ...]) -> int:
    """Mark the turns after a missing one stale, their context shifted to where the kept
    turns now stand; how many they are."""
    later = 0
    for position, index in enumerate(sorted(slots)):
        if index < missing[0]:
            continue
        turn = slots[index]
        start = turn.context_start or 0
        turn.context_start = min(start - sum(m < start for m in missing), position)
        turn.stale = True
        later += 1
    return later


def read(src: Source, data: Any, *, use_cell_ids: bool = False,
         strict: bool | None = None) -> NotebookRead:
    """Threads from a notebook; a transcript (by its marker) is read strictly."""
    _validate(src, data)
    marker = (data.get("metadata") or {}).get(KEY)
    if strict is None:
        strict = isinstance(marker, dict) and marker.get("format") == FORMAT
    if strict:
        return read_transcript(src, data)
    return read_live(src, data, use_cell_ids=use_cell_ids)
