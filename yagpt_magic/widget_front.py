"""The chat widget's front-end habits, and its static transcript for saved notebooks.

Standard ipywidgets cannot see keys (a ``Textarea`` has no key events), cannot scroll
a box to its end, and cannot add buttons next to a reply's code blocks. ``ChatBehavior``
is a small anywidget (ES module and CSS shipped as files, no build step) that sits
invisibly inside ``ChatWidget`` and gives the standard controls those habits:

- Enter sends and Shift+Enter makes a new line (``widget_send_key = "shift-enter"``
  swaps them); the typed text travels with the send message, so a value update still
  in flight can never send stale text; the box keeps focus; Up in an empty box
  recalls the thread's last message (``recall``); Esc leaves edit-and-resend.
- The history follows the newest reply while it streams unless the user scrolled up.
- Code blocks get Copy and Insert-below buttons, replies a Copy button. They are new
  elements put next to the ``<pre>`` blocks the notebook's renderer drew from our own
  reply bundle: no reply text is parsed or turned into HTML in the browser, so the one
  safe rendering path (``view.ReplyView``) stays the only one.
- Insert-below runs the notebook's own "insert cell below" command (its toolbar button)
  on the widget's cell and pastes the code into the new cell's editor: there is no
  kernel-side way to add a cell below a given output, and the cell is never run.

Theme colours come from JupyterLab's CSS variables, so light and dark themes both work.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import TYPE_CHECKING

import anywidget
import traitlets

from .view import inert_markdown

if TYPE_CHECKING:
    from .conversation import Turn

__all__ = ["TRANSCRIPT_TURNS", "ChatBehavior", "transcript_bundle", "turn_meta"]

STATIC = Path(__file__).parent / "static"


class ChatBehavior(anywidget.AnyWidget):  # type: ignore[misc]  # anywidget ships no types
    """Keyboard, scrolling and code-block behaviour for the ``ChatWidget`` it sits in."""

    _esm = STATIC / "chat.js"
    _css = STATIC / "chat.css"
    #: "enter" (Shift+Enter is a new line) or "shift-enter" (the reverse).
    send_key = traitlets.Unicode("enter").tag(sync=True)
    #: What Up in an empty message box brings back: the thread's last message.
    recall = traitlets.Unicode("").tag(sync=True)
    #: True while the last message is being edited (Esc cancels).
    editing = traitlets.Bool(False).tag(sync=True)


def turn_meta(turn: Turn, index: int) -> str:
    """The line above a turn: its number, model, tokens and whether it is stale."""
    model = turn.model.removeprefix("gpt://").split("/", 1)[-1] if turn.model else "?"
    usage = turn.usage
    parts = [f"#{index + 1}", model,
             f"{usage.total_tokens} tokens ({usage.input_tokens} in, "
             f"{usage.completion_tokens} out)"]
    if turn.status not in ("final", ""):
        parts.append(turn.status)
    if turn.stale:
        parts.append("stale")
    return " · ".join(parts)


#: The static transcript shows at most this many of the newest turns: it is resent
#: whole on every change, so it must not grow with a long thread.
TRANSCRIPT_TURNS = 50


MARKER = '<div class="yagpt-static-transcript"></div>'


def transcript_bundle(thread: str, turns: list[tuple[Turn, dict[str, str]]]) -> dict[str, str]:
    """A static transcript for where the live widget cannot be drawn (a saved notebook).

    Each reply is its ``ReplyView`` bundle, never re-rendered here: its ``text/html``
    when the renderer gives one, else its (already sanitized) ``text/markdown`` inside
    a block quote, so an unclosed fence in one reply cannot swallow the next turn.
    User messages are literal text. The empty marker element lets the widget's CSS hide
    this output while the live widget is drawn above it.
    """
    left_out = max(0, len(turns) - TRANSCRIPT_TURNS)
    count = f"{len(turns)} turn{'' if len(turns) == 1 else 's'}"
    title = f"YandexGPT chat, thread {thread!r}: {count}"
    if left_out:
        title += f" (the {left_out} oldest are in %chat history)"
    shown = list(enumerate(turns[left_out:], start=left_out))
    lines = [title]
    for index, (turn, bundle) in shown:
        lines += [f"--- {turn_meta(turn, index)}", f"You: {turn.user}",
                  f"YandexGPT: {bundle.get('text/plain', '')}"]
    note = " (a static copy; run the cell for the live widget)"
    if shown and all("text/html" in bundle for _, (_, bundle) in shown):
        rows = [MARKER, f"<p><b>{html.escape(title)}</b>{note}</p>"]
        for index, (turn, bundle) in shown:
            rows.append(
                f"<div><small>{html.escape(turn_meta(turn, index))}</small></div>"
                f"<div><b>You:</b></div><pre>{html.escape(turn.user)}</pre>"
                f"<div><b>YandexGPT:</b></div><div>{bundle['text/html']}</div><hr>"
            )
        return {"text/html": "\n".join(rows), "text/plain": "\n".join(lines)}
    parts = [MARKER, "", f"**{inert_markdown(title)}**{inert_markdown(note)}", ""]
    for index, (turn, bundle) in shown:
        reply = bundle.get("text/markdown") or inert_markdown(bundle.get("text/plain", ""))
        parts += [
            f"*{inert_markdown(turn_meta(turn, index))}*", "", "**You:**", "",
            # An indented code block: literal whatever the message holds.
            *("    " + line for line in turn.user.splitlines() or [""]), "",
            "**YandexGPT:**", "",
            *("> " + line for line in reply.splitlines()), "", "---", "",
        ]
    return {"text/markdown": "\n".join(parts), "text/plain": "\n".join(lines)}
