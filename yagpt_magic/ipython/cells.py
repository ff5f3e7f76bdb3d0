"""The code cells this kernel ran, kept from IPython's ``post_run_cell`` event (SPEC 16).

``%%chat --cells N`` and the widget's "with the last cells" send the last N of them
before a message. The log is registered when the extension loads and removed when it
unloads; it keeps each cell's source and the text of its result (as ``Out`` shows it)
or its error, since the event is the one place IPython hands over both.

Which cells count:

- code cells that ran since the extension loaded, newest last;
- a cell run again (same front-end cell id) counts once, as its latest run;
- cells that start with ``%%chat`` or ``%chat`` do not count: their turns are in the
  thread already, or they are commands. So the ``%%chat --cells`` cell never sends
  itself, and a re-run of it sends the cells before it, as the first run did;
- silent runs (a front end's own requests) and empty cells do not count.

Printed output is not kept: the event does not carry it.
"""

from __future__ import annotations

import re
import traceback
from collections import deque
from contextlib import suppress
from typing import TYPE_CHECKING, Any

from ..core.context import RESULT_CHARS, CellContext, RanCell, message_room, with_cells
from ..core.errors import UsageProblem

if TYPE_CHECKING:
    from ..core.backend import RequestOptions
    from ..core.session import ChatSession

#: Cells kept (the most ``--cells`` may ask for).
KEEP = 100
_CHAT = re.compile(r"\s*%%?chat(?:\s|$)")


def is_chat_cell(source: str) -> bool:
    """Whether a cell is a ``%%chat`` turn or a ``%chat`` command (by its first line)."""
    return bool(_CHAT.match(source))


class CellLog:
    """The last ``KEEP`` code cells the shell ran; a ``CellHistory`` for the session."""

    def __init__(self, shell: Any, keep: int = KEEP) -> None:
        self._shell = shell
        self._cells: deque[tuple[str | None, RanCell]] = deque(maxlen=keep)

    def register(self) -> None:
        self._shell.events.register("post_run_cell", self.post_run_cell)

    def unregister(self) -> None:
        with suppress(ValueError):  # not registered: nothing to undo
            self._shell.events.unregister("post_run_cell", self.post_run_cell)

    def last(self, count: int) -> list[RanCell]:
        return [cell for _, cell in list(self._cells)[-count:]] if count > 0 else []

    def post_run_cell(self, result: Any) -> None:
        """Keep a cell that ran; never fails the user's cell (a hook error would show)."""
        with suppress(Exception):  # a broken __repr__ must not make every cell an error
            self._keep(result)

    def _keep(self, result: Any) -> None:
        info = getattr(result, "info", None)
        source = getattr(info, "raw_cell", None)
        if info is None or getattr(info, "silent", False) or not isinstance(source, str):
            return
        if not source.strip() or is_chat_cell(source):
            return
        error = result.error_in_exec or result.error_before_exec
        text = self._text(result.result) if error is None else ""
        cell = RanCell(
            source=source.strip("\n"),
            result=text[:RESULT_CHARS],
            result_cut=max(len(text) - RESULT_CHARS, 0),
            error="".join(traceback.format_exception_only(type(error), error)).strip()
            if error is not None else "",
        )
        cell_id = getattr(info, "cell_id", None)
        if cell_id:
            kept = [entry for entry in self._cells if entry[0] != cell_id]
            self._cells.clear()
            self._cells.extend(kept)
        self._cells.append((cell_id or None, cell))

    def _text(self, value: Any) -> str:
        """A result as ``Out`` shows it in text (IPython's pretty printer bounds long lists)."""
        if value is None:
            return ""
        formatter = self._shell.display_formatter.formatters["text/plain"]
        return str(formatter(value))


def cells_context(session: ChatSession, thread: str, text: str, count: int,
                  options: RequestOptions, *, reserve: int = 0) -> CellContext:
    """``text`` after the last ``count`` cells that fit the window with it (nothing sent).

    ``reserve``: tokens that go with the message besides its text (its images).
    """
    history = session.cells
    if history is None:
        raise UsageProblem("--cells needs the extension loaded in IPython "
                           "(%load_ext yagpt_magic); nothing was sent.")
    if not 0 < count <= KEEP:
        raise UsageProblem(f"--cells takes 1 to {KEEP} cells, not {count}.")
    ran = history.last(count)
    if not ran:
        raise UsageProblem("No code cell has run since the extension loaded, so --cells has "
                           "nothing to send; nothing was sent.")
    known = session.threads.get(thread)
    system = known.system_prompt if known is not None else session.settings.system_prompt
    room = message_room(session.window(options), options.max_tokens or 0, system) - reserve
    return with_cells(text, ran, asked=count, room=room, secrets=session.secrets())
