"""Issue 19 in a real browser: the widget has the habits of the chat boxes users know.

Enter sends and Shift+Enter makes a new line, the box keeps focus and Up recalls the
last message; the history scrolls inside its height and follows the newest reply;
code blocks have Copy and Insert-below; Regenerate and Edit replace the last turn;
the dark theme. All typed and clicked as a user would, against the emulator.
"""

from __future__ import annotations

import json
import re

import pytest
from playwright.sync_api import Locator, Page, expect

from yagpt_magic.emulator import Emulator

from .jupyter import (
    ARTIFACTS_DIR,
    KINDS,
    JupyterServer,
    ServerFactory,
    append_and_run,
    assert_only_loopback,
    cell_count,
    cell_locator,
    cell_output_locator,
    create_notebook,
    open_notebook,
    run_cell,
    screenshot,
    wait_for_output,
)
from .test_widget_browser import open_widget, wait_until

pytestmark = pytest.mark.browser

WIDGET_CELL = "%load_ext yagpt_magic\n%chat widget"
CODE = "print('inserted by the widget')\ntotal = sum(range(10))"
CODE_REPLY = f"Here is the code:\n\n```python\n{CODE}\n```\n\nRun it when you like."
LONG_REPLY = "\n\n".join(
    f"Paragraph {i}: " + " ".join(f"word{i}-{j}" for j in range(60)) for i in range(6)
)


def message_box(chat: Locator) -> Locator:
    return chat.locator(".yagpt-input textarea")


def wait_idle(chat: Locator) -> None:
    expect(chat.locator(".yagpt-status")).to_have_text("idle", timeout=30_000)


def type_and_enter(chat: Locator, text: str) -> None:
    """Type `text` into the message box and press Enter, as a user would."""
    box = message_box(chat)
    box.click()
    box.fill(text)
    box.press("Enter")


def send_and_wait(chat: Locator, text: str) -> None:
    """Send with Enter and wait until the reply is in (the turn shows, the status is idle)."""
    turns = chat.locator(".yagpt-turn")
    before = turns.count()
    type_and_enter(chat, text)
    expect(turns).to_have_count(before + 1)
    # The meta line is written when the turn is committed, after "sending…" was shown.
    expect(turns.nth(before).locator(".yagpt-meta")).to_contain_text("tokens", timeout=30_000)
    wait_idle(chat)


def open_chat(page: Page, server: JupyterServer, name: str) -> Locator:
    create_notebook(server, name, [WIDGET_CELL])
    open_notebook(page, server, name)
    run_cell(page, 0)
    chat = open_widget(page, 0)
    expect(chat).to_have_class(has_class("yagpt-ready"))  # the front-end habits attached
    return chat


def has_class(css: str) -> re.Pattern[str]:
    """For ``to_have_class``: the element's classes include ``css``."""
    return re.compile(rf"\b{css}\b")


def notebook_screenshot(page: Page, name: str) -> None:
    """The visible notebook alone (no side panels), for the README."""
    ARTIFACTS_DIR.mkdir(exist_ok=True)
    page.locator(".jp-NotebookPanel").filter(visible=True).first.screenshot(
        path=ARTIFACTS_DIR / f"{name}.png")


def history_geometry(chat: Locator) -> dict[str, float]:
    return chat.locator(".yagpt-history").evaluate(
        "h => ({top: h.scrollTop, height: h.clientHeight, scroll: h.scrollHeight,"
        " box: h.getBoundingClientRect().height})"
    )


@pytest.mark.parametrize("kind", KINDS)
def test_keys_focus_recall_and_the_bounded_history(
    kind: str,
    jupyter_server_factory: ServerFactory,
    chat_env: dict[str, str],
    emu: Emulator,
    page: Page,
    page_requests: list[str],
    blocked_requests: list[str],
) -> None:
    server = jupyter_server_factory(kind, chat_env)
    chat = open_chat(page, server, f"ux-keys-{kind}.ipynb")
    turns = chat.locator(".yagpt-turn")
    box = message_box(chat)

    # Shift+Enter is a new line and sends nothing; Enter sends; the box keeps focus.
    box.click()
    box.press_sequentially("first line")
    box.press("Shift+Enter")
    box.press_sequentially("second line")
    expect(box).to_have_value("first line\nsecond line")
    expect(turns).to_have_count(0)
    assert emu.completions == []
    box.press("Enter")
    expect(turns).to_have_count(1)
    expect(turns.nth(0).locator(".yagpt-user")).to_contain_text("first line")
    expect(turns.nth(0).locator(".yagpt-user")).to_contain_text("second line")
    wait_idle(chat)
    assert emu.completions[-1].messages[-1] == ("user", "first line\nsecond line")
    expect(box).to_have_value("")
    expect(box).to_be_focused()
    # Each turn says its role, model and tokens.
    expect(turns.nth(0).locator(".yagpt-meta")).to_contain_text("yandexgpt/latest")
    expect(turns.nth(0).locator(".yagpt-meta")).to_contain_text("tokens")
    expect(chat.locator(".yagpt-usage")).to_contain_text("of 32768 tokens in the window")

    # Up in the empty box recalls the last message, ready to edit.
    box.press("ArrowUp")
    expect(box).to_have_value("first line\nsecond line")
    box.fill("")

    # Seven long turns: the widget keeps its height, and the newest reply is in view.
    emu.reply_with(LONG_REPLY, chunks=12, times=7)
    for i in range(7):
        send_and_wait(chat, f"Long answer number {i}, please.")
    expect(turns).to_have_count(8)
    shape = history_geometry(chat)
    assert shape["scroll"] > 3 * shape["height"]  # far more history than fits
    assert shape["box"] <= 28 * 14 + 20  # the default 28em bound (14 px font), borders
    assert chat.bounding_box()["height"] < 700
    newest = turns.nth(7).locator(".yagpt-meta")
    expect(newest).to_be_in_viewport()
    history_box = chat.locator(".yagpt-history").bounding_box()
    meta_box = newest.bounding_box()
    assert history_box["y"] <= meta_box["y"] <= history_box["y"] + history_box["height"]
    screenshot(page, f"widget-ux-{kind}-long")

    # While a reply streams the history follows it, unless the user scrolled up.
    emu.chunk_delay = 0.05
    emu.reply_with(LONG_REPLY, chunks=120, times=2)
    type_and_enter(chat, "Stream a long one.")
    expect(chat.locator(".yagpt-live")).to_contain_text("Paragraph 1")
    wait_until(lambda: history_geometry(chat)["scroll"] - history_geometry(chat)["top"]
               - history_geometry(chat)["height"] <= 40, "the history follows the stream")
    wait_idle(chat)
    type_and_enter(chat, "And another long one.")
    expect(chat.locator(".yagpt-live")).to_contain_text("Paragraph 0")
    chat.locator(".yagpt-history").hover()
    page.mouse.wheel(0, -3000)  # the user scrolls up to read an earlier turn
    wait_until(lambda: history_geometry(chat)["scroll"] - history_geometry(chat)["top"]
               - history_geometry(chat)["height"] > 1000, "scrolled up")
    where = history_geometry(chat)["top"]
    expect(chat.locator(".yagpt-live")).to_contain_text("Paragraph 4")  # more arrived
    assert history_geometry(chat)["top"] == where  # it stayed where the user put it
    wait_idle(chat)
    assert blocked_requests == []
    assert_only_loopback(page_requests)


@pytest.mark.parametrize("kind", KINDS)
def test_code_blocks_copy_and_insert_below_regenerate_and_edit(
    kind: str,
    jupyter_server_factory: ServerFactory,
    chat_env: dict[str, str],
    emu: Emulator,
    page: Page,
) -> None:
    server = jupyter_server_factory(kind, chat_env)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    name = f"ux-code-{kind}.ipynb"
    chat = open_chat(page, server, name)
    turns = chat.locator(".yagpt-turn")

    emu.reply_with(CODE_REPLY, chunks=3)
    send_and_wait(chat, "Write me some code.")
    reply = turns.nth(0).locator(".yagpt-reply")
    expect(reply.locator("pre")).to_contain_text("inserted by the widget")

    # Copy puts exactly the code on the clipboard.
    reply.locator("button.yagpt-code-copy").click()
    assert page.evaluate("navigator.clipboard.readText()").strip() == CODE
    # The whole reply can be copied too.
    reply.hover()
    reply.locator("button.yagpt-copy-reply").click()
    copied = page.evaluate("navigator.clipboard.readText()")
    assert "Here is the code:" in copied and "Run it when you like." in copied
    assert "Insert below" not in copied

    # Insert below: a new cell right below the widget's cell holds the code, not run.
    cells = cell_count(page)
    reply.locator("button.yagpt-code-insert").click()
    expect(page.locator(".jp-Notebook").filter(visible=True).first.locator(".jp-Cell")
           ).to_have_count(cells + 1)
    inserted = cell_locator(page, 1)
    expect(inserted.locator(".cm-content")).to_contain_text("inserted by the widget")
    assert inserted.locator(".cm-content").inner_text().strip() == CODE
    expect(inserted.locator(".jp-InputPrompt")).to_have_text("[ ]:")  # never run
    page.keyboard.press("Escape")

    # Regenerate replaces the last turn: same count, new reply, old one not sent back.
    emu.reply_with("REGENERATED: a second version of the answer.", chunks=2)
    chat.locator("button.yagpt-regenerate").click()
    expect(turns.nth(0).locator(".yagpt-reply")).to_contain_text("REGENERATED")
    wait_idle(chat)
    expect(turns).to_have_count(1)
    expect(turns.nth(0).locator(".yagpt-reply")).not_to_contain_text("inserted by the widget")
    assert emu.completions[-1].messages == [("user", "Write me some code.")]
    expect(chat.locator(".yagpt-usage")).to_contain_text(": 1 turn,")

    # Edit-and-resend: the last message comes back into the box; Enter replaces the turn.
    chat.locator("button.yagpt-edit").click()
    box = message_box(chat)
    expect(box).to_have_value("Write me some code.")
    box.fill("Write me shorter code.")
    box.press("Enter")
    expect(turns.nth(0).locator(".yagpt-user")).to_have_text("Write me shorter code.")
    expect(turns.nth(0).locator(".yagpt-reply")).not_to_contain_text("REGENERATED")
    wait_idle(chat)
    expect(turns).to_have_count(1)
    assert emu.completions[-1].messages == [("user", "Write me shorter code.")]
    screenshot(page, f"widget-ux-{kind}-code")
    notebook_screenshot(page, f"widget-ux-{kind}-code-notebook")


def set_theme(server: JupyterServer, theme: str) -> None:
    """Choose the theme through the settings API, as the Settings menu stores it."""
    server.api("PUT", "/lab/api/settings/@jupyterlab/apputils-extension:themes",
               {"raw": json.dumps({"theme": theme})})


def test_dark_theme(
    jupyter_server_factory: ServerFactory,
    chat_env: dict[str, str],
    emu: Emulator,
    page: Page,
) -> None:
    server = jupyter_server_factory("lab", chat_env)
    set_theme(server, "JupyterLab Dark")
    try:
        chat = open_chat(page, server, "ux-dark.ipynb")
        expect(page.locator("body")).to_have_attribute("data-jp-theme-light", "false")
        emu.reply_with(CODE_REPLY, chunks=3)
        send_and_wait(chat, "Write me some code.")
        send_and_wait(chat, "Thanks! What does sum(range(10)) give?")
        # The history is drawn in the theme's colours, not on a white box.
        background = chat.locator(".yagpt-history").evaluate(
            "h => getComputedStyle(h).backgroundColor")
        channels = [int(c) for c in background[background.index("(") + 1:-1].split(",")[:3]]
        assert max(channels) < 100, background
        chat.scroll_into_view_if_needed()
        screenshot(page, "widget-ux-dark")
        notebook_screenshot(page, "widget-ux-dark-notebook")
    finally:
        set_theme(server, "JupyterLab Light")


@pytest.mark.parametrize("kind", KINDS)
def test_a_saved_notebook_reopened_shows_the_transcript(
    kind: str,
    jupyter_server_factory: ServerFactory,
    chat_env: dict[str, str],
    emu: Emulator,
    page: Page,
) -> None:
    server = jupyter_server_factory(kind, chat_env)
    name = f"ux-saved-{kind}.ipynb"
    chat = open_chat(page, server, name)
    emu.reply_with("The **Volga** is the longest river in Europe.", chunks=3)
    send_and_wait(chat, "Which river is the longest in Europe?")
    output = cell_locator(page, 0).locator(".jp-Cell-outputArea")
    transcript = output.locator(".jp-OutputArea-child").filter(
        has=page.locator(".yagpt-static-transcript"))
    # While the live widget is drawn, its static copy is hidden below it.
    expect(transcript).to_contain_text("Volga")  # kept current...
    expect(transcript).to_be_hidden()  # ...and out of sight
    # The control: a plain ipywidget, whose saved output has no transcript.
    slider = append_and_run(page, "import ipywidgets\nipywidgets.IntSlider()")
    expect(cell_output_locator(page, slider).locator(".widget-slider")).to_be_visible()
    # A %%chat turn on the thread updates it too, and never lands in that cell's output.
    cell = append_and_run(page, "%%chat\nAnd the second longest?")
    wait_for_output(page, cell, "offline emulator")
    expect(transcript).to_contain_text("And the second longest?")
    expect(cell_locator(page, cell).locator(".yagpt-static-transcript")).to_have_count(0)
    expect(chat).to_be_visible()
    expect(transcript).to_be_hidden()
    # File > Save (the test servers expose the app, so its command can be run directly).
    saved = page.evaluate("window.jupyterapp.commands.execute('docmanager:save')"
                          ".then(() => 'saved', (e) => String(e))")
    assert saved == "saved"
    wait_until(lambda: "Volga" in json.dumps(server.api("GET", f"/api/contents/{name}")),
               "the saved notebook holds the transcript", timeout=30)

    # Reopened after the kernel is gone: the transcript shows the widget's turns...
    for session in server.api("GET", "/api/sessions"):  # type: ignore[union-attr]
        server.api("DELETE", f"/api/sessions/{session['id']}")
    page.goto("about:blank")
    open_notebook(page, server, name)
    transcript = cell_locator(page, 0).locator(".jp-OutputArea-child").filter(
        has=page.locator(".yagpt-static-transcript"))
    expect(transcript).to_be_visible()
    expect(transcript).to_contain_text("Which river is the longest in Europe?")
    expect(transcript.locator("strong").filter(has_text="Volga")).to_be_visible()  # rendered
    # ...instead of the widget manager's error line, which the slider still shows: the
    # error is drawn for both, and only the one above a transcript is hidden.
    error = "Error displaying widget: model not found"
    expect(cell_output_locator(page, slider).get_by_text(error)).to_be_visible()
    widget_error = cell_output_locator(page, 0).get_by_text(error)
    expect(widget_error).to_have_count(1)  # drawn, so hidden is not merely absent
    expect(widget_error).to_be_hidden()
    expect(cell_output_locator(page, 0)).not_to_contain_text("model not found", use_inner_text=True)
    screenshot(page, f"widget-ux-{kind}-reopened")
    # The widget's cell and the slider's, as docs/widget-reopened.png shows them.
    top, bottom = (cell_locator(page, i).bounding_box() for i in (0, slider))
    assert top is not None and bottom is not None
    page.screenshot(path=ARTIFACTS_DIR / f"widget-reopened-{kind}.png", clip={
        "x": top["x"], "y": top["y"], "width": top["width"],
        "height": bottom["y"] + bottom["height"] - top["y"] + 6})


def test_a_stale_turn_looks_stale(
    jupyter_server_factory: ServerFactory,
    chat_env: dict[str, str],
    emu: Emulator,
    page: Page,
) -> None:
    server = jupyter_server_factory("lab", chat_env)
    chat = open_chat(page, server, "ux-stale.ipynb")
    turns = chat.locator(".yagpt-turn")
    cell = append_and_run(page, "%%chat\nFirst, from a cell.")
    wait_for_output(page, cell, "offline emulator")
    send_and_wait(chat, "Second, from the widget.")
    expect(turns.nth(1)).not_to_have_class(has_class("yagpt-stale"))
    run_cell(page, cell)  # re-running the first turn makes the second one stale
    expect(turns.nth(1)).to_have_class(has_class("yagpt-stale"))
    expect(turns.nth(1).locator(".yagpt-meta")).to_contain_text("stale")
    expect(turns.nth(1)).to_contain_text("an earlier turn was re-run")
    opacity = turns.nth(1).evaluate("t => getComputedStyle(t).opacity")
    assert float(opacity) < 1  # dimmed, unlike the current turns
    assert float(turns.nth(0).evaluate("t => getComputedStyle(t).opacity")) == 1
