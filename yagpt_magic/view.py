"""How a reply looks: one display object, HTML for notebooks and text for terminals.

The reply text itself is stored untouched; only what is displayed goes through
``render.reply_html`` (SPEC 10), so a reply can never run script in the page.
"""

from __future__ import annotations

import html
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .session import Answer, turn_metadata

#: Minimum seconds between two in-place updates of a streaming reply.
STREAM_INTERVAL = 0.1
#: Each update re-renders the whole reply so far, which costs more as it grows; waiting
#: this many times the last update's cost keeps rendering to ~5% of a long stream.
RENDER_BACKOFF = 20.0


class Throttle:
    """When a streaming reply should be shown again (the magic and the widget share it).

    Updating every chunk, or even every 0.1 s, re-renders an ever longer reply: O(n^2)
    for a long answer. Spacing updates by their own cost keeps it O(n).
    """

    def __init__(self) -> None:
        self._next = 0.0

    def due(self) -> bool:
        return time.monotonic() >= self._next

    def shown(self, started: float) -> None:
        """Record an update that began at ``started`` (``time.monotonic()``)."""
        ended = time.monotonic()
        self._next = ended + max(STREAM_INTERVAL, RENDER_BACKOFF * (ended - started))


@dataclass
class ReplyView:
    """A reply as it streams in, and as it ends: text, notices, and its metadata."""

    thread: str = "default"
    text: str = ""
    allow_html: bool = False
    image_hosts: Sequence[str] = ()
    left_out: int = 0
    window: int = 0
    interrupted: bool = False
    failed: bool = False
    filtered: bool = False
    #: Shown until the first words arrive, so a slow start never looks like a hang.
    waiting: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    status: str = ""

    def finish(self, answer: Answer) -> None:
        """Take the committed turn's final text, status and metadata."""
        self.text = answer.turn.reply
        self.status = answer.turn.status
        self.left_out = answer.fit.left_out
        self.window = answer.window
        self.metadata = turn_metadata(answer.thread, answer.index, answer.turn)

    def notices(self) -> list[str]:
        notes = []
        if self.left_out:
            turns = "turn" if self.left_out == 1 else "turns"
            notes.append(
                f"{self.left_out} earlier {turns} left out to fit the {self.window}-token window."
            )
        if self.status == "truncated":
            notes.append(
                "The reply was cut at max_tokens; raise --max-tokens to get all of it."
            )
        if self.filtered:
            notes.append("The content filter withheld the reply; nothing was added to the thread.")
        if self.interrupted:
            notes.append("Interrupted: this partial reply was not added to the thread.")
        elif self.failed:
            notes.append("Failed: this partial reply was not added to the thread." if self.text
                         else "Failed: nothing was added to the thread.")
        return notes

    def _repr_mimebundle_(
        self, include: Any = None, exclude: Any = None
    ) -> tuple[dict[str, str], dict[str, Any]]:
        from .render import reply_html

        body = reply_html(self.text, allow_html=self.allow_html, image_hosts=self.image_hosts)
        plain = self.text
        if self.waiting and not self.text:
            body, plain = f"<p><em>{html.escape(self.waiting)}</em></p>", self.waiting
        notes = self.notices()
        body += "".join(f"<p><em>⚠ {html.escape(note)}</em></p>" for note in notes)
        plain += "".join(f"\n[{note}]" for note in notes)
        metadata = {"yagpt_magic": self.metadata} if self.metadata else {}
        return {"text/plain": plain, "text/html": body}, metadata


_PUNCTUATION = set("\\`*_{}[]()<>#+-.!|~&$:\"'=")


def inert_markdown(text: str) -> str:
    """Text that Markdown shows literally: every punctuation mark backslash-escaped."""
    return "".join("\\" + ch if ch in _PUNCTUATION else ch for ch in text.replace("\n", " "))


@dataclass
class Table:
    """A small table for ``%chat`` commands: aligned text, and an HTML table.

    Cells of the ``inline`` columns are reply or message text, shown as inline
    Markdown (sanitized); every other cell is shown as it reads.
    """

    headers: Sequence[str]
    rows: Sequence[Sequence[Any]]
    title: str = ""
    inline: Sequence[str] = ()

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        from .render import inline_html, text_html

        cells = [[str(c) for c in row] for row in self.rows]
        widths = [
            max([len(h)] + [len(row[i]) for row in cells]) for i, h in enumerate(self.headers)
        ]
        lines = [self.title] if self.title else []
        lines.append("  ".join(h.ljust(w) for h, w in zip(self.headers, widths)).rstrip())
        lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells]
        shown = [inline_html if h in self.inline else text_html for h in self.headers]
        title = f"<p><strong>{text_html(self.title)}</strong></p>" if self.title else ""
        head = "".join(f"<th>{text_html(h)}</th>" for h in self.headers)
        body = "".join(
            "<tr>" + "".join(f"<td>{show(c)}</td>" for show, c in zip(shown, row)) + "</tr>"
            for row in cells
        )
        table = f"{title}<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
        return {"text/plain": "\n".join(lines), "text/html": table}

    def __repr__(self) -> str:
        return self._repr_mimebundle_()["text/plain"]
