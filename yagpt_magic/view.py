"""How a reply looks: one display object, Markdown for notebooks and text for terminals.

The reply text itself is stored untouched; only what is displayed goes through
``render.safe_markdown`` (SPEC 10), so a reply can never run script in the page.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .session import Answer, turn_metadata


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
            notes.append("Failed: this partial reply was not added to the thread.")
        return notes

    def _repr_mimebundle_(
        self, include: Any = None, exclude: Any = None
    ) -> tuple[dict[str, str], dict[str, Any]]:
        from .render import safe_markdown

        body = safe_markdown(self.text, allow_html=self.allow_html, image_hosts=self.image_hosts)
        notes = self.notices()
        markdown = body + "".join(f"\n\n*⚠ {note}*" for note in notes)
        plain = self.text + "".join(f"\n[{note}]" for note in notes)
        metadata = {"yagpt_magic": self.metadata} if self.metadata else {}
        return {"text/plain": plain, "text/markdown": markdown}, metadata


_PUNCTUATION = set("\\`*_{}[]()<>#+-.!|~&$:\"'=")


def inert_markdown(text: str) -> str:
    """Text that Markdown shows literally: every punctuation mark backslash-escaped."""
    return "".join("\\" + ch if ch in _PUNCTUATION else ch for ch in text.replace("\n", " "))


@dataclass
class Table:
    """A small table for ``%chat`` commands: aligned text, and a Markdown table."""

    headers: Sequence[str]
    rows: Sequence[Sequence[Any]]
    title: str = ""

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        cells = [[str(c) for c in row] for row in self.rows]
        widths = [
            max([len(h)] + [len(row[i]) for row in cells]) for i, h in enumerate(self.headers)
        ]
        lines = [self.title] if self.title else []
        lines.append("  ".join(h.ljust(w) for h, w in zip(self.headers, widths)).rstrip())
        lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells]
        md = [f"**{inert_markdown(self.title)}**", ""] if self.title else []
        md.append("| " + " | ".join(inert_markdown(h) for h in self.headers) + " |")
        md.append("|" + "---|" * len(self.headers))
        md += ["| " + " | ".join(inert_markdown(c) for c in row) + " |" for row in cells]
        return {"text/plain": "\n".join(lines), "text/markdown": "\n".join(md)}

    def __repr__(self) -> str:
        return self._repr_mimebundle_()["text/plain"]
