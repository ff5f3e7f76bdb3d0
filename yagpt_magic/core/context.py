"""The code cells a notebook just ran, sent before a message (SPEC 16, ``--cells N``).

Each cell goes as its source and the text of its result or error, oldest first, so
the model reads them in the order they ran. They are fitted like history: the newest
cells go in first and the oldest are left out when the window has no room for them;
the message itself is never cut. Credentials are scrubbed as ``%chat explain`` does.

The cells come from a ``CellHistory``; ``ipython/cells.py`` keeps one from IPython's
events. Everything here is plain text and arithmetic, with no IPython.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from .conversation import MESSAGE_ALLOWANCE, REQUEST_ALLOWANCE, message_bound
from .credentials import mask_credentials
from .errors import scrub
from .frames import text_tokens

#: Of one cell, what goes to the model: its start (source, result) or end (an error),
#: enough to read it and never a whole log.
SOURCE_CHARS = 4000
RESULT_CHARS = 2000
ERROR_CHARS = 2000


@dataclass(frozen=True)
class RanCell:
    """A code cell as it ran: its source and the text of its result or error."""

    source: str
    result: str = ""
    error: str = ""
    #: Characters of the result not kept at all (the log keeps at most ``RESULT_CHARS``).
    result_cut: int = 0


class CellHistory(Protocol):
    """Where the cells come from: the last ``count`` that ran, oldest first."""

    def last(self, count: int) -> list[RanCell]: ...


@dataclass(frozen=True)
class CellContext:
    """A message with the cells that went before it, as it is sent and kept in the turn."""

    text: str
    sent: int  # cells that went in
    ran: int  # cells there were to send (at most the number asked for)
    asked: int

    def note(self, window: int) -> str:
        """What the reply's output says about the cells (the user sees what went in)."""
        cells = "cell" if self.sent == 1 else "cells"
        if self.sent == self.ran:
            text = (f"The last {self.sent} code {cells} went in before the message"
                    if self.sent > 1 else "The last code cell went in before the message")
        else:
            left = self.ran - self.sent
            text = (f"{self.sent} of the last {self.ran} code cells went in before the "
                    f"message; the {left} oldest {'was' if left == 1 else 'were'} left out "
                    f"to fit the {window:,}-token window")
        if self.ran < self.asked:
            text += f" (only {self.ran} had run of the {self.asked} asked for)"
        return text + "."


def message_room(window: int, max_tokens: int, system_prompt: str) -> int:
    """The UTF-8 bytes a message may have and still fit ``window`` on its own.

    It mirrors the bound ``fitting.fit_to_window`` takes for a message alone, so a
    message within it is never refused for its size (earlier turns may still go).
    """
    system = message_bound(system_prompt) if system_prompt else 0
    return window - max_tokens - REQUEST_ALLOWANCE - system - MESSAGE_ALLOWANCE


def with_cells(message: str, cells: Sequence[RanCell], *, asked: int, room: int,
               secrets: Sequence[str] = ()) -> CellContext:
    """``message`` after as many of the newest ``cells`` as fit in ``room`` tokens.

    ``cells`` are oldest first; ``secrets`` (the credentials in use) are scrubbed from
    them, and so is anything shaped like a credential.
    """
    blocks = [_block(cell, secrets) for cell in cells]
    sent = 0
    while sent < len(blocks) and text_tokens(_compose(blocks[-(sent + 1):], message)) <= room:
        sent += 1
    text = _compose(blocks[len(blocks) - sent:], message) if sent else message
    return CellContext(text, sent, len(cells), asked)


def _compose(blocks: Sequence[str], message: str) -> str:
    some = "the last code cell" if len(blocks) == 1 else f"the last {len(blocks)} code cells"
    head = f"Context: {some} I ran in my Jupyter notebook, oldest first, then my message."
    numbered = [f"Cell {n}:\n{block}" for n, block in enumerate(blocks, 1)]
    return "\n\n".join([head, *numbered, f"My message:\n\n{message}"])


def _block(cell: RanCell, secrets: Sequence[str]) -> str:
    """A cell's source and its result or error, numbered by the caller.

    Not by execution count: a notebook run again (or replayed) gives other counts for
    the same cells, and the turn must be sent the same way to replay.
    """
    parts = [fence(_head(_clean(cell.source, secrets), SOURCE_CHARS), "python")]
    if cell.error:
        parts.append(f"Its error:\n{fence(_tail(_clean(cell.error, secrets), ERROR_CHARS), '')}")
    elif cell.result:
        result = _head(_clean(cell.result, secrets), RESULT_CHARS, cell.result_cut)
        parts.append(f"Its result:\n{fence(result, '')}")
    return "\n".join(parts)


def _clean(text: str, secrets: Sequence[str]) -> str:
    return mask_credentials(scrub(text, secrets))


def _head(text: str, limit: int, cut: int = 0) -> str:
    """The start of ``text``, saying how much was left out (``cut``: already, before it)."""
    left = max(len(text) - limit, 0) + cut
    if not left:
        return text
    return f"{text[:limit].rstrip()}\n[… {left:,} more characters left out]"


def _tail(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return f"[… {len(text) - limit:,} characters left out]\n{text[-limit:].lstrip()}"


def fence(text: str, info: str) -> str:
    """A fenced block that holds ``text`` exactly: its fence outruns every backtick run."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    mark = "`" * max(3, longest + 1)
    return f"{mark}{info}\n{text}\n{mark}"
