"""Tool calls in a ``%%chat`` cell: each call shown as it happens, approval by ``input()``.

``input()`` is what works the same in JupyterLab, Notebook 7 and terminal IPython: in a
kernel it becomes an ``input_request`` on the stdin channel, which every front end
answers with a text box under the cell.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ..core.errors import UsageProblem
from ..core.tools import ToolEvent, call_text, describe, shown_name, visible

_YES = ("y", "yes", "д", "да")


def result_line(event: ToolEvent, width: int = 300) -> str:
    """What a finished call shows: its result's first line, or why it did not run."""
    record = event.record
    assert record is not None
    first = record.result.strip().splitlines()[0] if record.result.strip() else "(empty)"
    first = visible(first if len(first) <= width else first[: width - 1] + "…")
    prefix = "(replayed, not run) " + describe(event.name, event.arguments) + " " \
        if event.replayed else ""
    if record.outcome == "refused":
        return f"  ✗ {prefix}not run: refused."
    if record.outcome == "unknown":
        return f"  ✗ {prefix}not run: {event.name!r} was not offered."
    return f"  → {prefix}{first}"


class CellApproval:
    """Prints calls and results into the cell's output and asks there before each call.

    ``waiting`` updates the reply's waiting line, so it never says "Waiting for the
    model" while the turn is really waiting for a function or for the user: "Calling
    f(…)…" shows once a call will run (at once under ``policy`` "auto", after the user's
    yes under "ask"). ``below`` moves the reply under the call log printed here.
    """

    def __init__(self, say: Callable[[str], None] = print,
                 waiting: Callable[[str], None] | None = None, *,
                 policy: str = "ask", below: Callable[[str], None] | None = None) -> None:
        self._say = say
        self._waiting = waiting
        self._policy = policy
        self._below = below

    def show(self, event: ToolEvent) -> None:
        if event.kind == "call":
            if self._below is not None:
                self._below("The model asked to call functions of this notebook:")
                self._below = None
            self._say(f"Tool call: {call_text(event.name, event.arguments)}")
            if self._waiting is not None and self._policy == "auto":
                self._waiting(f"Calling {describe(event.name, event.arguments)}…")
        else:
            self._say(result_line(event))
            if self._waiting is not None and not event.replayed:
                self._waiting("Waiting for the model's answer…")

    def approve(self, name: str, arguments: Mapping[str, Any]) -> bool:
        """Ask in the cell; a front end without stdin fails the turn with what to do."""
        import builtins

        from IPython.core.error import StdinNotImplementedError

        try:
            # Looked up per call: ipykernel installs its stdin-channel input() per request.
            answer = builtins.input(f"Run {shown_name(name)}? [y/N] ")
        except EOFError:  # Ctrl-D at a terminal prompt: no answer is not a yes
            return False
        except StdinNotImplementedError:
            raise UsageProblem(
                "This front end cannot ask before a tool call (no input box); set "
                "%config ChatMagics.tool_calls = 'auto' or 'never'. Nothing was added."
            ) from None
        allowed = answer.strip().lower() in _YES
        if allowed and self._waiting is not None:
            self._waiting(f"Calling {describe(name, arguments)}…")
        return allowed
