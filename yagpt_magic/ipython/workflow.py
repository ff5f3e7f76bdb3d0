"""Notebook habits around a reply (SPEC 14): its code into the next cell, the last error explained.

``%chat code`` and ``%chat explain`` are thin commands over these functions. Both read the
shell IPython gives them (its ``set_next_input``, its last exception, its input history);
nothing here installs a hook or handler: the last error is the one IPython itself keeps
in ``sys.last_value`` when it shows a traceback.
"""

from __future__ import annotations

import linecache
import os
import re
import sys
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..core.conversation import Turn
from ..core.credentials import mask_credentials
from ..core.errors import UsageProblem, scrub
from ..core.template import fence
from ..service.connection import CREDENTIAL_ENV

#: What of an error goes to the model: enough to explain it, never a whole log.
TRACEBACK_LINES = 60
#: Of those, kept from the start: where the failing cell called in.
TRACEBACK_HEAD = 8
TRACEBACK_CHARS = 6000
SOURCE_CHARS = 4000
_FILE = re.compile(r'File "([^"\n]+)"')
_CELL = re.compile(r"In\[(\d+)\]")


def code_blocks(markdown: str) -> list[str]:
    """The fenced and indented code blocks of a Markdown reply, in order."""
    from markdown_it import MarkdownIt

    tokens = MarkdownIt("commonmark").parse(markdown)
    return [t.content.rstrip("\n") for t in tokens if t.type in ("fence", "code_block")
            and t.content.strip()]


def pick_turn(turns: Sequence[Turn], thread: str, number: int | None) -> tuple[int, Turn]:
    """Turn ``number`` as ``%chat history`` numbers it (negative: from the end; None: last)."""
    if not turns:
        raise UsageProblem(f"Thread {thread!r} has no replies yet.")
    index = len(turns) - 1 if number is None else number
    if index < 0:
        index += len(turns)
    if not 0 <= index < len(turns):
        raise UsageProblem(f"Thread {thread!r} has turns 0 to {len(turns) - 1}, not {number}; "
                           "%chat history lists them.")
    return index, turns[index]


@dataclass(frozen=True)
class LastError:
    """The kernel's last error as the model should see it: scrubbed and trimmed."""

    traceback: str
    source: str
    cell: str

    def message(self) -> str:
        """The user message ``%chat explain`` sends."""
        where = f" ({self.cell})" if self.cell else ""
        cell = (f"The cell{where}:\n\n{fence(self.source, 'python')}\n\n" if self.source
                else "The cell's source is not known.\n\n")
        return ("Explain this error from my Jupyter notebook and how to fix it.\n\n"
                f"{cell}The error:\n\n{fence(self.traceback, 'text')}")


def last_error(shell: Any, secrets: Sequence[str] = ()) -> LastError:
    """The last exception IPython showed, with the cell it came from, free of credentials."""
    value = getattr(sys, "last_value", None)
    if not isinstance(value, BaseException):
        raise UsageProblem("No error yet in this kernel: there is nothing for %chat explain "
                           "to explain.")
    cells = _Cells(shell)
    # From the first frame in a notebook cell on: IPython's own frames go (all of them
    # for a SyntaxError, which happened compiling the cell: its text shows where).
    tb = value.__traceback__
    while tb is not None and cells.number(tb.tb_frame.f_code.co_filename) is None:
        tb = tb.tb_next
    text = "".join(traceback.format_exception(type(value), value, tb))
    text = _FILE.sub(lambda m: cells.label(m.group(1)) or m.group(0), text)
    if isinstance(value, SyntaxError) and value.filename:
        filename = value.filename
    else:
        filename = tb.tb_frame.f_code.co_filename if tb is not None else ""
    number = cells.number(filename)
    known = [*secrets, *(os.environ[name] for name, _ in CREDENTIAL_ENV if os.environ.get(name))]
    return LastError(
        traceback=_clean(_trim_lines(text), known)[-TRACEBACK_CHARS:],
        source=_clean(cells.source(number, filename), known)[:SOURCE_CHARS],
        cell=f"In[{number}]" if number is not None else "",
    )


def _clean(text: str, secrets: Sequence[str]) -> str:
    return mask_credentials(scrub(text, secrets))


class _Cells:
    """Which code is a notebook cell, by the labels IPython itself prints (``In[7]``)."""

    def __init__(self, shell: Any) -> None:
        self._shell = shell
        self._name = getattr(getattr(shell, "compile", None), "format_code_name", None)

    def number(self, filename: str) -> int | None:
        named = self._name(filename) if self._name is not None and filename else None
        found = _CELL.fullmatch(named[1]) if named else None
        return int(found.group(1)) if found else None

    def label(self, filename: str) -> str:
        number = self.number(filename)
        return f"Cell In[{number}]" if number is not None else ""

    def source(self, number: int | None, filename: str) -> str:
        """The cell as typed (``In``), else the code IPython ran (a shell without history)."""
        if number is None:
            return ""
        history = self._shell.user_ns.get("In") or []
        if 0 < number < len(history) and history[number].strip():
            return str(history[number])
        return "".join(linecache.getlines(filename))


def _trim_lines(text: str) -> str:
    """A long traceback's start (the cell) and end (the error), saying what was left out."""
    lines = text.rstrip("\n").split("\n")
    if len(lines) <= TRACEBACK_LINES:
        return "\n".join(lines)
    cut = len(lines) - TRACEBACK_LINES
    return "\n".join([*lines[:TRACEBACK_HEAD], f"  [… {cut} lines left out]",
                      *lines[TRACEBACK_HEAD + cut :]])
