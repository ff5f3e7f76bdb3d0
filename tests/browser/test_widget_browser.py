"""The widget (SPEC 7) in a real browser: the chat widget sends, streams, shares the thread, stops.

Everything is done the way a user does it, by typing into the message box and
clicking buttons, against the emulator running in this process; the emulator's
records then show what reached the service.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from playwright.sync_api import Locator, Page, expect

from yagpt_magic.emulator import Emulator

from .jupyter import (
    KINDS,
    ServerFactory,
    append_and_run,
    assert_only_loopback,
    cell_output_locator,
    create_notebook,
    open_notebook,
    run_cell,
    screenshot,
    wait_for_output,
)

pytestmark = pytest.mark.browser

WIDGET_CELL = "%load_ext yagpt_magic\n%chat widget"
CELL_REPLY = "CELL-REPLY: the %%chat cell answered this."
SLOW_REPLY = " ".join(f"word{i}" for i in range(400))


def open_widget(page: Page, index: int) -> Locator:
    """The chat widget shown by cell `index`, once it has rendered."""
    chat = cell_output_locator(page, index).locator(".yagpt-chat")
    expect(chat).to_be_visible(timeout=30_000)
    return chat


def send(chat: Locator, text: str) -> None:
    """Type `text` into the message box and click Send, as a user would."""
    box = chat.locator(".yagpt-input textarea")
    box.click()
    box.fill(text)
    chat.locator("button.yagpt-send").click()


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 15) -> None:
    """Wait for something another process does (a wait, not a timing assertion)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached in {timeout} s: {what}")
        time.sleep(0.05)


@pytest.mark.parametrize("kind", KINDS)
def test_widget_send_share_and_stop(
    kind: str,
    jupyter_server_factory: ServerFactory,
    chat_env: dict[str, str],
    emu: Emulator,
    page: Page,
    page_requests: list[str],
    blocked_requests: list[str],
    page_errors: list[str],
) -> None:
    server = jupyter_server_factory(kind, chat_env)
    name = create_notebook(server, f"widget-{kind}.ipynb", [WIDGET_CELL])
    open_notebook(page, server, name)
    run_cell(page, 0)
    chat = open_widget(page, 0)
    turns = chat.locator(".yagpt-turn")
    status = chat.locator(".yagpt-status")
    expect(turns).to_have_count(0)

    # 1. Send from the widget: the emulator's streamed reply appears under the question.
    send(chat, "What is a context window?")
    first = turns.nth(0)
    expect(first.locator(".yagpt-user")).to_contain_text("What is a context window?")
    expect(first.locator(".yagpt-reply")).to_contain_text("offline emulator")
    expect(first.locator(".yagpt-reply")).to_contain_text("Reply to message 1")
    expect(first.locator(".yagpt-live")).to_have_count(0)  # committed, not streaming
    expect(status).to_have_text("idle")
    expect(chat.locator(".yagpt-input textarea")).to_have_value("")
    expect(chat.locator(".yagpt-usage")).to_contain_text("1 turn")
    assert emu.completions[-1].messages[-1] == ("user", "What is a context window?")

    # 2. A %%chat cell on the same thread: its turn shows up in the widget, live,
    #    and the widget's turn went along as context.
    emu.reply_with(CELL_REPLY, chunks=3)
    cell = append_and_run(page, "%%chat\nAnd how big is yours?")
    wait_for_output(page, cell, CELL_REPLY)
    expect(turns).to_have_count(2)
    expect(turns.nth(1).locator(".yagpt-user")).to_contain_text("And how big is yours?")
    expect(turns.nth(1).locator(".yagpt-reply")).to_contain_text(CELL_REPLY)
    expect(chat.locator(".yagpt-usage")).to_contain_text("2 turns")
    sent = [text for _role, text in emu.completions[-1].messages]
    assert "What is a context window?" in sent

    # 3. Stop during a slow reply: the stream is cancelled and no turn is added.
    emu.chunk_delay = 0.05
    emu.reply_with(SLOW_REPLY, chunks=400)
    send(chat, "Write me a very long answer.")
    live = chat.locator(".yagpt-live")
    expect(live).to_contain_text("word1")  # streaming has visibly started
    expect(status).to_contain_text("streaming")
    screenshot(page, f"widget-{kind}-streaming")
    stop = chat.locator("button.yagpt-stop")
    expect(stop).to_be_enabled()
    stop.click()
    expect(status).to_contain_text("stopped")
    expect(live).to_have_count(0)
    expect(turns).to_have_count(2)
    expect(chat.locator("button.yagpt-send")).to_be_enabled()
    expect(stop).to_be_disabled()
    # The unsent message is given back, so the user can edit and resend it.
    expect(chat.locator(".yagpt-input textarea")).to_have_value("Write me a very long answer.")
    wait_until(lambda: emu.cancelled == 1, "the emulator saw the stream cancelled")
    assert "word399" not in chat.inner_text()

    chat.scroll_into_view_if_needed()
    screenshot(page, f"widget-{kind}")
    errors = [e for e in page_errors if "reading 'schema'" not in e]
    assert errors == []
    assert blocked_requests == []
    assert_only_loopback(page_requests)
