"""The chat widget on a Qwen3 thread in a real browser (SPEC 15): the OpenAI-compatible API.

As a user does it: the notebook's model is Qwen3, the widget sends, the reply streams in
place from the emulator's HTTP API, a ``%%chat`` cell continues the same thread, Stop
cancels a slow reply. The emulator's records show every request went over HTTP.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from yagpt_magic.emulator import Emulator

from .jupyter import (
    ServerFactory,
    append_and_run,
    assert_only_loopback,
    create_notebook,
    open_notebook,
    run_cell,
    screenshot,
    wait_for_output,
)
from .test_widget_browser import SLOW_REPLY, open_widget, send, wait_until

pytestmark = pytest.mark.browser

QWEN = "qwen3-235b-a22b-fp8"
CELL_REPLY = "QWEN-CELL: the %%chat cell answered over HTTP."


@pytest.mark.parametrize("kind", ["lab"])
def test_the_widget_on_a_qwen_thread(
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
    name = create_notebook(server, f"qwen-{kind}.ipynb", [
        f"%load_ext yagpt_magic\n%config ChatMagics.model = {QWEN!r}\n%chat widget"])
    open_notebook(page, server, name)
    run_cell(page, 0)
    chat = open_widget(page, 0)
    turns = chat.locator(".yagpt-turn")
    status = chat.locator(".yagpt-status")

    # The model box shows Qwen3, and the usage line names its API and window.
    expect(chat.locator(".yagpt-model input")).to_have_value(QWEN)
    expect(chat.locator(".yagpt-usage")).to_contain_text(
        "Qwen3 235B A22B: OpenAI-compatible API (HTTP), 262144-token window")

    send(chat, "What is a context window?")
    first = turns.nth(0)
    expect(first.locator(".yagpt-reply")).to_contain_text("Reply to message 1")
    expect(first.locator(".yagpt-reply")).to_contain_text(f"{QWEN}/latest")
    expect(first).to_contain_text(f"#1 · {QWEN}/latest")
    expect(status).to_have_text("idle")
    requests = emu.state.recorded("Completion", "ChatCompletion")
    assert [r.method for r in requests] == ["ChatCompletion"]

    emu.reply_with(CELL_REPLY, chunks=3)
    cell = append_and_run(page, "%%chat\nAnd how big is yours?")
    wait_for_output(page, cell, CELL_REPLY)
    expect(turns).to_have_count(2)
    last = emu.state.recorded("ChatCompletion")[-1]
    assert [text for _role, text in last.messages][0] == "What is a context window?"

    emu.chunk_delay = 0.05
    emu.reply_with(SLOW_REPLY, chunks=400)
    send(chat, "Write me a very long answer.")
    live = chat.locator(".yagpt-live")
    expect(live).to_contain_text("word1")  # streamed in place, growing
    screenshot(page, f"widget-qwen-{kind}-streaming")
    chat.locator("button.yagpt-stop").click()
    expect(status).to_contain_text("stopped")
    expect(live).to_have_count(0)
    expect(turns).to_have_count(2)
    wait_until(lambda: emu.cancelled == 1, "the HTTP stream was cancelled")
    assert {r.method for r in emu.state.recorded("Completion", "ChatCompletion")} == {
        "ChatCompletion"}

    chat.scroll_into_view_if_needed()
    screenshot(page, f"widget-qwen-{kind}")
    assert [e for e in page_errors if "reading 'schema'" not in e] == []
    assert blocked_requests == []
    assert_only_loopback(page_requests)
