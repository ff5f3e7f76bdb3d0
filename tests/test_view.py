"""``ReplyDisplay``: one reply's life on screen, the same for ``%%chat`` and the widget."""

from __future__ import annotations

from typing import Any

import pytest

from yagpt_magic.core.conversation import Turn, Usage
from yagpt_magic.core.errors import ContentFiltered, Interrupted, ServiceError
from yagpt_magic.core.fitting import Fit
from yagpt_magic.core.session import Answer
from yagpt_magic.core.settings import Settings
from yagpt_magic.display.render import reply_html
from yagpt_magic.display.reply import ReplyDisplay, plain_notices


class Screen:
    """Records every bundle shown, as a front end would receive it."""

    def __init__(self) -> None:
        self.shown: list[tuple[dict[str, str], dict[str, Any]]] = []

    def __call__(self, data: dict[str, str], metadata: dict[str, Any]) -> None:
        self.shown.append((data, metadata))

    @property
    def last(self) -> str:
        return self.shown[-1][0]["text/plain"]


def display(screen: Screen) -> ReplyDisplay:
    return ReplyDisplay(screen, thread="default", settings=Settings())


def answer(reply: str, *, status: str = "final", left_out: int = 0) -> Answer:
    turn = Turn("q", reply, usage=Usage(10, 5, 0, 15), status=status)  # type: ignore[arg-type]
    return Answer("default", 3, turn, Fit(left_out, 3, 10, 0), 4096, False)


def test_waiting_then_text_then_final_with_metadata() -> None:
    screen = Screen()
    shown = display(screen)
    shown.start(Fit(2, 3, 10, 0), 4096, waiting="Waiting for yandexgpt…")
    assert screen.last.startswith("Waiting for yandexgpt…")
    assert "2 earlier turns left out" in screen.last
    shown.update("Hello")
    assert screen.last.startswith("Hello")
    shown.finish(answer("Hello world", status="truncated", left_out=2))
    data, metadata = screen.shown[-1]
    notices = metadata["yagpt_magic"]["notices"]
    assert [n["kind"] for n in notices] == ["left_out", "truncated"]
    assert data["text/plain"] == "Hello world" + plain_notices(notices)
    assert metadata["yagpt_magic"]["turn"] == 3


def test_a_terminal_sees_the_reply_grow_then_its_notices() -> None:
    screen, printed = Screen(), []
    shown = ReplyDisplay(screen, thread="default", settings=Settings(), echo=printed.append)
    shown.start(Fit(0, 0, 1, 0), 4096, waiting="Waiting…")
    shown.update("Hel")
    shown.update("Hello, wor")
    assert printed == ["Hel", "lo, wor"]
    shown.finish(answer("Hello, world", status="truncated"))
    assert "".join(printed) == "Hello, world" + plain_notices(shown.view.notices()) + "\n"
    assert screen.shown == []  # nothing published: the terminal already has it all


def test_filtered_withdraws_what_streamed() -> None:
    screen = Screen()
    shown = display(screen)
    shown.update("something the filter stops")
    shown.fail(ContentFiltered("withheld"))
    assert "something" not in screen.last and "content filter" in screen.last


def test_interrupt_keeps_the_partial_text_marked() -> None:
    screen = Screen()
    shown = display(screen)
    shown.update("half a reply")
    shown.fail(Interrupted("stopped"))
    assert screen.last.startswith("half a reply") and "Interrupted" in screen.last


def test_a_failure_before_anything_was_shown_shows_nothing() -> None:
    screen = Screen()
    display(screen).fail(ServiceError("unreachable"))
    assert screen.shown == []


# -- issue 25: a streaming reply never flashes a half-finished code span --------------
@pytest.mark.parametrize(("partial", "held"), [
    ("Use `print(", "Use "),
    ("Done `x` and ``y ` z", "Done `x` and "),
    ("A `one`\n\nB `two", "A `one`\n\nB "),
    ("Intro\n``", "Intro\n"),
    ("```python\nx = `1", "```python\nx = `1"),  # in a fence a backtick is code already
    ("```\ncode\n```\nthen `open", "```\ncode\n```\nthen "),
    ("Stray ` and " + "word " * 100, "Stray ` and " + "word " * 100),  # too long to be a span
])
def test_a_streaming_reply_holds_back_an_open_code_span(partial: str, held: str) -> None:
    screen = Screen()
    shown = display(screen)
    shown.update(partial)
    assert screen.last == held
    assert screen.shown[-1][0]["text/html"] == reply_html(held)
    shown.fail(Interrupted("stopped"))  # what streamed stays, whole
    assert screen.last.startswith(partial)


def test_the_finished_reply_shows_whole() -> None:
    screen = Screen()
    shown = display(screen)
    shown.update("Use `print(")
    shown.finish(answer("Use `print(` for output"))
    assert screen.last == "Use `print(` for output"


def test_a_tables_text_columns_are_left_aligned_and_numbers_right() -> None:
    """Issue 25: JupyterLab right-aligns every table cell; text reads from the left."""
    import re

    from yagpt_magic.display.reply import Table

    table = Table(("#", "message", "tokens", "model"),
                  [(1, "What is a monad?", 120, "yandexgpt"), (2, "Thanks", 9, "yandexgpt")],
                  inline=("message",))
    html = table._repr_mimebundle_()["text/html"]
    cells = re.findall(r'<t[hd] style="text-align:(\w+)">', html)
    assert cells == ["right", "left", "right", "left"] * 3


def test_a_terminal_prints_plain_text_not_markdown() -> None:
    """Issue 25: terminal IPython printed the reply's raw Markdown."""
    screen, printed = Screen(), []
    shown = ReplyDisplay(screen, thread="default", settings=Settings(), echo=printed.append)
    reply = ("# Rivers\n\nThe **Volga** is the *longest*; see [the list](https://x.example).\n"
             "```python\nprint('hi')  # **not bold**\n```\nDone `now`.\x1b[2J")
    for end in range(5, len(reply) + 1, 7):
        shown.update(reply[:end])
    shown.finish(answer(reply))
    assert "".join(printed) == (
        "Rivers\n\nThe Volga is the longest; see the list (https://x.example).\n"
        "    print('hi')  # **not bold**\nDone `now`.\\x1b[2J\n")
