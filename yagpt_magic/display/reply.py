"""How a reply is shown: ``ReplyDisplay`` from request to end, for ``%%chat`` and the widget.

The reply text itself is stored untouched; only what is displayed goes through
``render.reply_html`` (SPEC 10), so a reply can never run script in the page.
"""

from __future__ import annotations

import html
import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from ..core.errors import ChatError, ContentFiltered, Interrupted, RecordingFailed
from ..core.session import Answer, turn_metadata

if TYPE_CHECKING:
    from ..core.backend import RequestOptions
    from ..core.fitting import Fit
    from ..core.session import ChatSession
    from ..core.settings import Settings
    from ..core.structured import Schema
    from ..core.tools import Approver, ToolEvent

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


#: A fence line of Markdown: up to three spaces, then three or more ` or ~.
_FENCE = re.compile(r" {0,3}(`{3,}|~{3,})")
_TICKS = re.compile(r"`+")
#: An open code span held back longer than this is taken for a stray backtick.
HOLD_BACK = 300


def settled(text: str) -> str:
    """What of a streaming reply to show now: all but a code span still open at its end.

    Shown at once, ``Use `print(`` draws its backtick as text and then jumps into code
    when the span closes; held back, the span appears whole. Only the paragraph being
    written can hold an open span (a blank line or a fence ends one); a held tail longer
    than ``HOLD_BACK`` is shown as it is.
    """
    start, fence, offset = 0, "", 0
    for line in text.splitlines(keepends=True):
        offset += len(line)
        found = _FENCE.match(line)
        if fence:  # inside a fence only its closing line counts
            if found and found.group(1)[0] == fence[0] and len(found.group(1)) >= len(fence) \
                    and not line[found.end():].strip():
                fence = ""
            start = offset
        elif found and not (found.group(1)[0] == "`" and "`" in line[found.end():]):
            fence, start = found.group(1), offset
        elif not line.strip():
            start = offset
    if fence:
        return text
    runs = list(_TICKS.finditer(text, start))
    index = 0
    while index < len(runs):
        closer = next((j for j in range(index + 1, len(runs))
                       if len(runs[j].group()) == len(runs[index].group())), None)
        if closer is None:
            held = runs[index].start()
            return text if len(text) - held > HOLD_BACK else text[:held]
        index = closer + 1
    return text


NoticeKind = Literal["context", "left_out", "truncated", "filtered", "interrupted", "failed"]


@dataclass(frozen=True)
class Notice:
    """A line shown under a reply; kept in the output's metadata, so readers never parse it."""

    kind: NoticeKind
    text: str


def plain_notices(notices: Sequence[Notice] | Sequence[dict[str, Any]]) -> str:
    """What the notices add after the reply in ``text/plain`` (readers strip exactly this)."""
    texts = [n.text if isinstance(n, Notice) else str(n.get("text", "")) for n in notices]
    return "".join(f"\n[{text}]" for text in texts)


@dataclass
class ReplyView:
    """A reply as it streams in, and as it ends: text, notices, and its metadata."""

    thread: str = "default"
    text: str = ""
    allow_html: bool = False
    image_hosts: Sequence[str] = ()
    left_out: int = 0
    window: int = 0
    #: The fit rested on upper bounds (the model's API has no tokenizer): say so.
    bounded: bool = False
    interrupted: bool = False
    failed: bool = False
    filtered: bool = False
    #: Shown until the first words arrive, so a slow start never looks like a hang.
    waiting: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    status: str = ""
    #: A structured turn's validated value, shown as highlighted JSON (the text/plain
    #: stays the exact reply, which ``%chat restore`` reads back).
    value_markdown: str = ""
    #: Still streaming: an open code span at the end is held back (``settled``).
    streaming: bool = False
    #: The images the turn sent (SPEC 15), shown as thumbnails above the finished reply
    #: (not while it streams: each update would carry their bytes again).
    images: tuple[Any, ...] = ()
    #: SHA-256s of images an earlier output already shows (a transcript shows each once).
    shown_above: tuple[str, ...] = ()
    #: What went with the message as context (``--cells``: how many cells went in).
    context: str = ""

    def finish(self, answer: Answer) -> None:
        """Take the committed turn's final text, status and metadata."""
        self.text = answer.turn.reply
        self.status = answer.turn.status
        self.left_out, self.bounded = answer.fit.left_out, answer.fit.bounded
        self.window = answer.window
        self.metadata = turn_metadata(answer.thread, answer.index, answer.turn)
        self.images = answer.turn.images
        if answer.turn.schema is not None:
            from ..core.structured import json_markdown

            self.value_markdown = json_markdown(answer.turn.value)

    def notices(self) -> list[Notice]:
        notes = [Notice("context", self.context)] if self.context else []
        if self.left_out:
            bounds = (" (sizes are upper bounds: this model's API has no tokenizer)"
                      if self.bounded else "")
            notes.append(Notice("left_out", f"{count(self.left_out, 'earlier turn')} left out "
                                            f"to fit the {self.window}-token window{bounds}."))
        if self.status == "truncated":
            notes.append(Notice(
                "truncated", "The reply was cut at max_tokens; raise --max-tokens to get all of it."
            ))
        if self.filtered:
            notes.append(Notice("filtered", "The content filter withheld the reply; nothing "
                                            "was added to the thread."))
        if self.interrupted:
            notes.append(Notice("interrupted",
                                "Interrupted: this partial reply was not added to the thread."))
        elif self.failed:
            notes.append(Notice("failed", "Failed: this partial reply was not added to the "
                                          "thread." if self.text
                                else "Failed: nothing was added to the thread."))
        return notes

    def _repr_mimebundle_(
        self, include: Any = None, exclude: Any = None
    ) -> tuple[dict[str, str], dict[str, Any]]:
        from .render import reply_html, thumbnails_html

        text = settled(self.text) if self.streaming else self.text
        body = reply_html(self.value_markdown or text, allow_html=self.allow_html,
                          image_hosts=self.image_hosts)
        if self.images:  # text/plain stays the exact reply
            body = thumbnails_html(self.images, shown_above=self.shown_above) + body
        plain = text
        if self.waiting and not text:
            body, plain = f"<p><em>{html.escape(self.waiting)}</em></p>", self.waiting
        notes = self.notices()
        body += "".join(f"<p><em>⚠ {html.escape(note.text)}</em></p>" for note in notes)
        plain += plain_notices(notes)
        metadata = {}
        if self.metadata:
            metadata = {"yagpt_magic": {**self.metadata, "notices": [asdict(n) for n in notes]}}
        return {"text/plain": plain, "text/html": body}, metadata


Show = Callable[[dict[str, str], dict[str, Any]], None]


class TerminalText:
    """A reply's Markdown as the plain text a terminal prints, fed as it streams.

    A line is printed as soon as its end is known; before that only a plain start of it
    (no Markdown mark in it yet) goes out, so a stream still shows as it grows. Emphasis,
    heading and link marks go (a link keeps its address in brackets), code blocks are
    indented, and control characters the model wrote are shown as escapes, never sent
    to the terminal.
    """

    def __init__(self) -> None:
        self._line = ""  # the line being written, as far as it came
        self._printed = ""  # what of it is printed already
        self._fence = ""

    def feed(self, new: str, *, final: bool = False) -> str:
        out = []
        *done, self._line = (self._line + new).split("\n")
        for line in done:
            shown = self._render(line)
            if shown is not None:
                out.append(self._rest(shown) + "\n")
            self._printed = ""
        if final and self._line:
            shown = self._render(self._line)
            out.append(self._rest(shown) if shown is not None else "")
            self._line = self._printed = ""
        elif self._line and not self._fence and (start := _partial(self._line)) is not None:
            shown = _visible(_inline_plain(start))
            if shown.startswith(self._printed):  # else wait for the line's end
                out.append(shown[len(self._printed):])
                self._printed = shown
        return "".join(out)

    def _rest(self, shown: str) -> str:
        """What is left to print of a line whose start may be printed already."""
        if shown.startswith(self._printed):
            return shown[len(self._printed):]
        return "\n" + shown  # rendering changed what was printed: the line again

    def _render(self, line: str) -> str | None:
        """A whole line as printed; None for a fence line, which prints nothing."""
        fence = _FENCE.match(line)
        if fence and (not self._fence or fence.group(1)[0] == self._fence[0]
                      and len(fence.group(1)) >= len(self._fence)):
            self._fence = "" if self._fence else fence.group(1)
            return None
        if self._fence:
            return "    " + _visible(line)
        return _visible(_inline_plain(line.lstrip("#").strip() if _HEADING.match(line)
                                      else line))


#: A heading line.
_HEADING = re.compile(r" {0,3}#{1,6}(\s|$)")


def _partial(line: str) -> str | None:
    """What the start of a line will read as once it is done, if that can be told now.

    An emphasis mark not yet closed is taken to close later (its run is left out:
    ``The **Vol`` reads ``The Vol``), a code span waits to be whole; a line whose end may
    still change what comes before it (a link or image in progress, an escape, an entity,
    a heading or fence mark at its start) waits for its end. A guess that proves wrong
    reprints the line.
    """
    if (line[-1] in "[]<>!\\(" or "\\" in line or "&" in line or line.lstrip()[:1] in "#`~"
            or line.count("[") != line.count("]") or line.count("<") != line.count(">")
            or ("](" in line and line.count("(") != line.count(")"))):
        return None
    runs = list(re.finditer(r"`+", line))
    if len(runs) % 2:  # a code span shows with its backticks: wait for it whole
        line = line[: runs[-1].start()]
    for mark in "*_~":
        runs = list(re.finditer(rf"{re.escape(mark)}+", line))
        if len(runs) % 2:
            last = runs[-1]
            line = line[: last.start()] + line[last.end():]
    return line


def _visible(text: str) -> str:
    """Control characters (an ANSI escape, a bidi override) as escapes; tabs stay."""
    return "".join(c if c.isprintable() or c == "\t" else repr(c)[1:-1] for c in text)


def _inline_plain(line: str) -> str:
    """One line's inline Markdown as plain text: no emphasis marks, links as text (url)."""
    from markdown_it import MarkdownIt

    tokens = MarkdownIt("commonmark").parseInline(line)
    parts: list[str] = []
    href = ""
    children = tokens[0].children if tokens else None
    for token in children or []:
        if token.type in ("text", "html_inline"):
            parts.append(token.content)
        elif token.type == "code_inline":
            parts.append(f"`{token.content}`")
        elif token.type == "link_open":
            href = str(token.attrs.get("href", ""))
        elif token.type == "link_close" and href:
            parts.append(f" ({href})")
        elif token.type == "image":
            parts.append(f"{token.content} ({token.attrs.get('src', '')})")
        elif token.type in ("softbreak", "hardbreak"):
            parts.append(" ")
    return "".join(parts)


class ReplyDisplay:
    """One reply on screen, from the request going out to its end.

    ``%%chat`` and the widget both use it; they differ only in ``show`` (a display
    output updated in place, or a widget's Output). A terminal has no outputs to
    update, so there ``echo`` writes the reply as it grows and then its notices.
    ``renew`` gives a fresh output, below whatever the cell printed since (``below``).
    """

    def __init__(
        self,
        show: Show,
        *,
        thread: str,
        settings: Settings,
        echo: Callable[[str], None] | None = None,
        renew: Callable[[], Show] | None = None,
    ) -> None:
        self.view = ReplyView(thread=thread, allow_html=settings.allow_html,
                              image_hosts=tuple(settings.image_hosts))
        self.shown = False
        self._show = show
        self._renew = renew
        self._echo = echo
        self._echoed = ""
        self._terminal = TerminalText()
        self._throttle = Throttle()

    def _publish(self, *, final: bool = False) -> None:
        if self._echo is not None:
            self._write(final=final)
            return
        data, metadata = self.view._repr_mimebundle_()
        self._show(data, metadata)
        self.shown = True

    def _write(self, *, final: bool) -> None:
        """The terminal: what is new since the last write (a stream is cumulative), as
        plain text (``TerminalText``), not Markdown."""
        assert self._echo is not None
        text = self.view.text
        new = ""
        if not text.startswith(self._echoed):  # withdrawn by the filter: start a new line
            new = "\n" if self._echoed else ""
            self._echoed, self._terminal = "", TerminalText()
        new += self._terminal.feed(text[len(self._echoed):], final=final)
        if final:
            new += plain_notices(self.view.notices()) + "\n"
        if new:
            self._echo(new)
            self.shown = True
        self._echoed = text

    def start(self, fit: Fit, window: int, *, waiting: str = "") -> None:
        """The request goes out: say so at once, so a slow start never looks like a hang."""
        self.view.left_out, self.view.window = fit.left_out, window
        self.view.bounded = fit.bounded
        if waiting and self._echo is None:
            self.view.waiting = waiting
            self._publish()

    def below(self, note: str) -> None:
        """Lines are about to be printed under the waiting line (tool calls): it becomes
        ``note`` and the reply goes on in a new output below them, so the answer reads
        after its call log, as it came."""
        if self._echo is not None or self._renew is None or not self.shown or self.view.text:
            return
        self._show({"text/plain": note, "text/html": f"<p><em>{html.escape(note)}</em></p>"},
                   {})
        self._show, self.shown = self._renew(), False

    def wait_for(self, what: str) -> None:
        """Say what the reply waits on now (a tool call, the user's answer), until it comes."""
        if self._echo is None and not self.view.text:
            self.view.waiting = what
            self._publish()

    def update(self, text: str) -> None:
        """More of the reply arrived; shown at most as often as ``Throttle`` allows."""
        self.view.text, self.view.streaming = text, True
        if self._echo is not None:
            self._publish()
            return
        if not self._throttle.due():
            return
        started = time.monotonic()
        self._publish()
        self._throttle.shown(started)

    def finish(self, answer: Answer) -> None:
        self.view.waiting, self.view.streaming = "", False
        self.view.finish(answer)
        self._publish(final=True)

    def interrupt(self) -> None:
        """Stopped by the user: what streamed stays visible, marked as not kept."""
        self.view.interrupted, self.view.waiting, self.view.streaming = True, "", False
        if self.shown or self.view.text:
            self._publish(final=True)

    def fail(self, err: ChatError) -> None:
        """The request failed: an output already shown says nothing was kept."""
        if isinstance(err, Interrupted):
            self.interrupt()
            return
        if not self.shown:
            return
        if isinstance(err, ContentFiltered):  # what streamed before the filter is withdrawn
            self.view.text, self.view.filtered = "", True
        else:
            self.view.failed = True
        self.view.waiting, self.view.streaming = "", False
        self._publish(final=True)


def ask_and_show(
    session: ChatSession,
    display: ReplyDisplay,
    thread: str,
    text: str,
    *,
    options: RequestOptions,
    cell_id: str | None = None,
    cancel: threading.Event | None = None,
    tools: str | Sequence[str] | None = None,
    approve: Approver | None = None,
    on_tool: Callable[[ToolEvent], None] | None = None,
    schema: Schema | None = None,
    at: int | None = None,
    images: Sequence[Any] = (),
) -> Answer:
    """Ask the session for a turn and show it through ``display`` from start to end."""

    def start(fit: Fit) -> None:
        # Fitted, so the backend is chosen. A streamed reply may take a while to begin;
        # a replayed one is there at once, with nothing to wait for.
        live = session.backend(options).api != "replay"
        waiting = f"Waiting for {options.model}…" if options.stream and live else ""
        display.start(fit, session.window(options), waiting=waiting)

    try:
        answer = session.ask(
            thread, text, options=options, cell_id=cell_id, cancel=cancel, schema=schema, at=at,
            on_text=display.update if options.stream else None,
            on_fit=start,
            tools=tools, approve=approve, on_tool=on_tool, images=images,
        )
    except KeyboardInterrupt:
        display.interrupt()
        raise Interrupted(
            f"Interrupted: the partial reply was not added to thread {thread!r}."
        ) from None
    except RecordingFailed as err:  # the turn is in the thread: show it as such, then fail
        display.finish(err.answer)
        raise
    except ChatError as err:
        display.fail(err)
        raise
    display.finish(answer)
    return answer


def count(n: int, noun: str) -> str:
    """``1 turn``, ``3 turns``: one way to say how many, for every message."""
    return f"{n} {noun}" + ("" if n == 1 else "s")


_PUNCTUATION = set("\\`*_{}[]()<>#+-.!|~&$:\"'=")


def inert_markdown(text: str) -> str:
    """Text that Markdown shows literally: every punctuation mark backslash-escaped."""
    return "".join("\\" + ch if ch in _PUNCTUATION else ch for ch in text.replace("\n", " "))


def _numbers(rows: Sequence[Sequence[Any]], column: int) -> bool:
    """Whether a table's column holds only numbers (right-aligned, as figures read)."""
    return bool(rows) and all(isinstance(row[column], (int, float))
                              and not isinstance(row[column], bool) for row in rows)


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
        # JupyterLab right-aligns every cell of a rendered table: text reads from the left.
        align = [f' style="text-align:{"right" if _numbers(self.rows, i) else "left"}"'
                 for i in range(len(self.headers))]
        title = f"<p><strong>{text_html(self.title)}</strong></p>" if self.title else ""
        head = "".join(f"<th{a}>{text_html(h)}</th>" for a, h in zip(align, self.headers))
        body = "".join(
            "<tr>" + "".join(f"<td{a}>{show(c)}</td>" for a, show, c in zip(align, shown, row))
            + "</tr>"
            for row in cells
        )
        table = f"{title}<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
        return {"text/plain": "\n".join(lines), "text/html": table}

    def __repr__(self) -> str:
        return self._repr_mimebundle_()["text/plain"]
