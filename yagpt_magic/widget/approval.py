"""Tool calls in the chat widget: the calls as they happen, and Run / Don't run buttons.

The widget's request runs on a worker thread, so asking blocks that thread (never the
kernel's main one) until a button is clicked or Stop is pressed. Built as a panel of its
own so the widget only places it and passes ``approve``/``show`` to ``ask_and_show``.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

import ipywidgets as widgets

from ..core.errors import Interrupted
from ..core.tools import ToolEvent, call_text, shown_name
from ..display.tool_calls import result_line
from .front import TextLine

#: Most calls and results shown for one message (a turn has at most max_tool_rounds
#: rounds); a call is one entry however long, so it is never shown in part.
_KEPT = 50


class ToolPanel(widgets.VBox):
    """Lines for calls and results, and the approval row while a call waits for the user."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__([], **kwargs)
        self.add_class("yagpt-tools")
        self.run_button = widgets.Button(description="Run", button_style="warning",
                                         tooltip="Run this call of your function")
        self.skip_button = widgets.Button(description="Don't run",
                                          tooltip="Refuse: the model is told it was not run")
        self.question = TextLine()
        self.approval = widgets.HBox([self.question, self.run_button, self.skip_button])
        self.approval.add_class("yagpt-tool-approval")
        self._lines: list[TextLine] = []
        self._decided = threading.Event()
        self._answer = False
        self.cancel: threading.Event | None = None
        self.run_button.on_click(lambda _b: self._decide(True))
        self.skip_button.on_click(lambda _b: self._decide(False))

    def start(self, cancel: threading.Event) -> None:
        """A new message goes out: its calls replace the last one's; Stop ends a wait."""
        self.cancel = cancel
        self._lines = []
        self._redraw(False)

    def _decide(self, answer: bool) -> None:
        self._answer = answer
        self._decided.set()

    def _redraw(self, asking: bool) -> None:
        self.children = (*self._lines, *((self.approval,) if asking else ()))

    def show(self, event: ToolEvent) -> None:
        """A call was asked for or finished (called from the worker thread).

        A call shows whole (``call_text``: every argument, wrapped, escaped), one entry
        with its line breaks kept, so the user reads all of it before Run.
        """
        if event.kind == "call":
            line = TextLine(f"Tool call: {call_text(event.name, event.arguments)}")
            line.add_class("yagpt-tool-call")
        else:
            line = TextLine(result_line(event))
        self._lines = [*self._lines, line][-_KEPT:]
        self._redraw(False)

    def approve(self, name: str, arguments: Mapping[str, Any]) -> bool:
        """Show the buttons and wait for a click; Stop ends the wait as an interrupt."""
        self._decided.clear()
        call = call_text(name, arguments)
        self.question.value = (f"Run {call}?" if "\n" not in call else
                               f"Run {shown_name(name)} with the arguments shown above?")
        self._redraw(True)
        try:
            while not self._decided.wait(0.05):
                if self.cancel is not None and self.cancel.is_set():
                    raise Interrupted("stopped")
        finally:
            self._redraw(False)
        return self._answer
