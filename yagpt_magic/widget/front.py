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
  safe rendering path (``display.reply.ReplyView``) stays the only one.
- Insert-below runs the notebook's own "insert cell below" command (its toolbar button)
  on the widget's cell and pastes the code into the new cell's editor: there is no
  kernel-side way to add a cell below a given output, and the cell is never run.

Theme colours come from JupyterLab's CSS variables, so light and dark themes both work.
"""

from __future__ import annotations

import html
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anywidget
import traitlets

from ..core.models import parse_model

if TYPE_CHECKING:
    from ..core.conversation import Turn
    from ..core.session import ChatSession

__all__ = ["TRANSCRIPT_TURNS", "ChatBehavior", "StaticTranscript", "TextLine",
           "transcript_bundle", "turn_meta"]

STATIC = Path(__file__).parent / "static"


class TextLine(anywidget.AnyWidget):  # type: ignore[misc]  # anywidget ships no types
    """A line of plain text (status, usage, a turn's meta line, a tool call): a text node
    in the page, never typeset.

    ipywidgets' ``Label`` passes its value to the notebook's MathJax, so text the model
    controls (a tool name, an error the service echoed) could become a live link. Its
    ``value`` is the text, as a Label's is.
    """

    _esm = STATIC / "text.js"
    value = traitlets.Unicode("").tag(sync=True)

    def __init__(self, value: str = "", **kwargs: Any) -> None:
        super().__init__(value=value, **kwargs)


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
    model = parse_model(turn.model).short if turn.model else "?"
    usage = turn.spent  # with its tool rounds' requests, as %chat history counts it
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

#: Shipped inside the transcript, as the widget's own CSS is not loaded in a saved
#: notebook: hides the output just above the transcript when the widget manager drew
#: its error line there ("Error displaying widget: model not found"; only then does it
#: put ``jupyter-widgets`` on the output itself, a drawn widget has it on its views
#: inside), so the transcript shows in its place. It never hides a drawn chat widget
#: nor any output but the one right above a transcript. Jupyter keeps ``<style>`` only
#: in trusted outputs; an untrusted notebook draws no widget (its text line shows).
HIDE_ERROR = (
    "<style>.jp-OutputArea-child:has(> .jp-OutputArea-output.jupyter-widgets)"
    ":not(:has(.yagpt-chat)):has(+ .jp-OutputArea-child .yagpt-static-transcript)"
    " { display: none; }</style>"
)


def transcript_bundle(thread: str, turns: list[tuple[Turn, dict[str, str]]],
                      height: str = "28em") -> dict[str, str]:
    """A static transcript for where the live widget cannot be drawn (a saved notebook).

    Each reply is its ``ReplyView`` bundle's sanitized ``text/html``, never re-rendered
    here; user messages are escaped text. The empty marker element lets the widget's CSS hide
    this output while the live widget is drawn above it; ``HIDE_ERROR`` hides the error
    line drawn in place of the widget when it is not. The turns scroll within ``height``
    (the widget's own, ``widget_height``), as in the widget: an inline style, which
    Jupyter keeps even in an untrusted notebook (its ``<style>`` it drops).
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
    rows = [MARKER, HIDE_ERROR, f"<p><b>{html.escape(title)}</b>{note}</p>",
            f'<div class="yagpt-transcript-turns" style="max-height: {html.escape(height)}; '
            'overflow-y: auto;">']
    for index, (turn, bundle) in shown:
        rows.append(
            f"<div><small>{html.escape(turn_meta(turn, index))}</small></div>"
            f"<div><b>You:</b></div><pre>{html.escape(turn.user)}</pre>"
            f"<div><b>YandexGPT:</b></div><div>{bundle['text/html']}</div><hr>"
        )
    rows.append("</div>")
    return {"text/html": "\n".join(rows), "text/plain": "\n".join(lines)}


class StaticTranscript:
    """The ``text/html`` copy of a widget's turns, shown as an output under the widget.

    JupyterLab draws a widget output of a reopened notebook as "model not found",
    whatever else its bundle holds, so the transcript is an output of its own: kept
    current (one display update per change of the thread), hidden by the widget's CSS
    while the live widget is drawn above it, and hiding that error line (``HIDE_ERROR``)
    when it is not. Each turn is rendered once, then kept
    while it is among the newest ``TRANSCRIPT_TURNS``.
    """

    def __init__(self, session: ChatSession, thread: str,
                 render: Callable[[Turn], dict[str, str]]) -> None:
        self.session, self.thread, self.render = session, thread, render
        self.display_id = f"yagpt-transcript-{uuid.uuid4().hex}"
        self.shown = False
        self._rendered: dict[int, tuple[Turn, dict[str, str]]] = {}

    def bundle(self) -> dict[str, str]:
        turns = self.session.thread(self.thread).turns
        first = max(0, len(turns) - TRANSCRIPT_TURNS)
        kept, self._rendered = self._rendered, {}
        for turn in turns[first:]:
            held = kept.get(id(turn))
            if held is None or held[0] is not turn:
                held = (turn, self.render(turn))
            self._rendered[id(turn)] = held
        shown = [(t, self._rendered[id(t)][1] if i >= first else {}) for i, t in enumerate(turns)]
        return transcript_bundle(self.thread, shown, self.session.settings.widget_height)

    def show(self) -> None:
        from IPython.display import display

        self.shown = True
        display(self.bundle(), raw=True, display_id=self.display_id)

    def update(self) -> None:
        if self.shown:
            from IPython.display import update_display

            update_display(self.bundle(), raw=True, display_id=self.display_id)
