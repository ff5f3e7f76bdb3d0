"""One turn as the chat widget shows it: the widgets, and where extra content goes."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import ipywidgets as widgets

from .front import TextLine

__all__ = ["Outputs", "TurnView", "bundle_of", "descendants", "plain"]

Outputs = tuple[dict[str, Any], ...]


def plain(text: str) -> Outputs:
    return ({"output_type": "display_data", "data": {"text/plain": text}, "metadata": {}},)


def bundle_of(data: dict[str, str]) -> Outputs:
    return ({"output_type": "display_data", "data": data, "metadata": {}},)


def descendants(box: widgets.Box) -> list[widgets.Widget]:
    """Every widget under ``box`` and their Layouts, so closing the chat box closes all."""
    found: list[widgets.Widget] = []
    for child in box.children:
        if isinstance(child, widgets.Box):
            found.extend(descendants(child))
        found.append(child)
        layout = getattr(child, "layout", None)
        if layout is not None:
            found.append(layout)
    return found


@dataclass
class TurnView:
    """The widgets showing one turn, and the box that holds it in the history."""

    box: widgets.VBox
    user: widgets.Output
    reply: widgets.Output
    meta: TextLine
    holder: widgets.Box | None = None
    note: TextLine | None = None
    #: Per-turn extra content between the message and the reply (e.g. tool calls and an
    #: approval row): made on first use by ``extra_box()``, so a plain turn costs nothing.
    extra: widgets.VBox | None = None
    worker: threading.Thread | None = field(default=None, repr=False)
    #: The turn index a Regenerate / Edit request replaces; None for a new turn.
    at: int | None = None

    def extra_box(self) -> widgets.VBox:
        """The box for this turn's extra content (created and placed on first use)."""
        if self.extra is None:
            self.extra = widgets.VBox(_dom_classes=("yagpt-extra",))
            self.relayout()
        return self.extra

    def relayout(self) -> None:
        parts = (self.user, self.extra, self.reply, self.meta, self.note)
        self.box.children = tuple(p for p in parts if p is not None)

    def close(self) -> None:
        for widget in (self.note, self.extra, self.meta, self.user, self.reply, self.box):
            if widget is not None:
                widget.close()
