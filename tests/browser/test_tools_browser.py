"""Tools (SPEC 12) in a real browser: approve a call at the cell's input box, and with
the widget's buttons, in JupyterLab 4 and Notebook 7, as a user does."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from yagpt_magic.emulator import Emulator

from .jupyter import (
    KINDS,
    ServerFactory,
    assert_only_loopback,
    cell_output_locator,
    create_notebook,
    open_notebook,
    run_cell,
    screenshot,
    wait_for_output,
)
from .test_widget_browser import open_widget, send

pytestmark = pytest.mark.browser

DEFINE = '''%load_ext yagpt_magic
calls = []
def lookup(column: str) -> str:
    """Mean of a column of my table."""
    calls.append(column)
    return f"mean of {column} is 42.5"'''


@pytest.mark.parametrize("kind", KINDS)
def test_approve_in_the_cell_and_in_the_widget(
    kind: str,
    jupyter_server_factory: ServerFactory,
    chat_env: dict[str, str],
    emu: Emulator,
    page: Page,
    page_requests: list[str],
    blocked_requests: list[str],
) -> None:
    server = jupyter_server_factory(kind, chat_env)
    name = create_notebook(server, f"tools-{kind}.ipynb", [
        DEFINE, '%%chat --tools lookup\nUse lookup for "price"',
        '%config ChatMagics.tools = ["lookup"]\n%chat widget', "print(calls)"])
    open_notebook(page, server, name)
    run_cell(page, 0)
    run_cell(page, 1)

    # 1. The cell asks with input(): the front end's input box under the cell.
    wait_for_output(page, 1, "Tool call: lookup(column='price')")
    box = cell_output_locator(page, 1).locator("input.jp-Stdin-input")
    expect(box).to_be_visible(timeout=30_000)
    wait_for_output(page, 1, "Run lookup? [y/N]")
    # Issue 25: nothing says the call runs while the user is still being asked.
    assert "Calling lookup" not in cell_output_locator(page, 1).inner_text()
    screenshot(page, f"tools-{kind}-ask")
    box.fill("y")
    box.press("Enter")
    wait_for_output(page, 1, "→ mean of price is 42.5")
    wait_for_output(page, 1, "Answer from the tool results")
    assert emu.completions[-1].messages[-1] == ("user", "lookup: mean of price is 42.5")

    # 2. The widget offers the `tools` setting's functions and asks with a pair of
    #    buttons; Don't run tells the model it did not run.
    run_cell(page, 2)
    chat = open_widget(page, 2)
    send(chat, 'Use lookup for "cost"')
    approval = chat.locator(".yagpt-tool-approval")
    expect(approval).to_contain_text("Run lookup(column='cost')?", timeout=30_000)
    screenshot(page, f"tools-{kind}-widget-ask")
    approval.get_by_role("button", name="Don't run").click()
    expect(chat.locator(".yagpt-tools")).to_contain_text("not run: refused")
    expect(chat.locator(".yagpt-status")).to_have_text("idle", timeout=30_000)
    expect(chat.locator(".yagpt-turn")).to_have_count(2)
    assert "did not allow this call" in emu.completions[-1].messages[-1][1]

    run_cell(page, 3)
    wait_for_output(page, 3, "['price']")
    assert blocked_requests == []
    assert_only_loopback(page_requests)
