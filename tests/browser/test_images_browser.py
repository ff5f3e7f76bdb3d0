"""The widget's attach button (SPEC 15) in a real browser, on a Gemma turn with an image.

The user picks a PNG through the page's own file chooser, types a question and clicks
Send; the turn is answered by ``%chat replay`` of a recorded Gemma turn (the same
``session.ask`` as any turn, offline), and the reply shows the image it sent as a
thumbnail the browser decodes. Switching to a model that does not read images hides
the button.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.imagefiles import png
from yagpt_magic.core.conversation import Thread
from yagpt_magic.core.images import Image
from yagpt_magic.emulator import Emulator
from yagpt_magic.transcript import save_threads

from ..test_images_turns import commit
from .jupyter import (
    ServerFactory,
    assert_only_loopback,
    cell_output_locator,
    create_notebook,
    open_notebook,
    run_cell,
    screenshot,
)

pytestmark = pytest.mark.browser

QUESTION = "What is in this picture?"
ANSWER = "A red rectangle, sixty pixels by forty."


@pytest.mark.parametrize("kind", ["lab"])
def test_attach_an_image_and_send_it_to_gemma(
    kind: str,
    jupyter_server_factory: ServerFactory,
    chat_env: dict[str, str],
    emu: Emulator,
    page: Page,
    page_requests: list[str],
    blocked_requests: list[str],
    page_errors: list[str],
    tmp_path: Path,
) -> None:
    server = jupyter_server_factory(kind, chat_env)
    red = Image.from_bytes(png(60, 40, (255, 0, 0)), "red.png")
    recorded = Thread("pictures", "")
    commit(recorded, QUESTION, ANSWER, (red,))
    save_threads([recorded], server.root_dir / "gemma.json", force=True)
    (tmp_path / "red.png").write_bytes(red.data)
    name = create_notebook(server, f"images-{kind}.ipynb", [
        "%load_ext yagpt_magic\n%config ChatMagics.model = 'gemma-3-27b-it'\n"
        "%chat replay gemma.json\n%chat widget -t pictures"])
    open_notebook(page, server, name)
    run_cell(page, 0)
    chat = cell_output_locator(page, 0).locator(".yagpt-chat")
    expect(chat).to_be_visible(timeout=30_000)

    attach = chat.locator(".yagpt-attach")
    expect(attach).to_be_visible()
    with page.expect_file_chooser() as chooser:  # the browser's own file dialog
        attach.click()
    chooser.value.set_files(str(tmp_path / "red.png"))
    expect(chat.locator(".yagpt-attached")).to_contain_text("red.png: PNG 60x40")

    box = chat.locator(".yagpt-input textarea")
    box.click()
    box.fill(QUESTION)
    chat.locator("button.yagpt-send").click()
    turn = chat.locator(".yagpt-turn").nth(0)
    expect(turn.locator(".yagpt-reply")).to_contain_text(ANSWER)
    expect(chat.locator(".yagpt-status")).to_have_text("idle")
    expect(chat.locator(".yagpt-attached")).to_have_text("")
    thumbnail = turn.locator(".yagpt-reply .yagpt-images img")
    expect(thumbnail).to_have_count(1)
    assert thumbnail.get_attribute("src") == red.data_url
    # The browser decoded it: the bytes sent are the bytes shown.
    assert thumbnail.evaluate("img => img.complete && img.naturalWidth") == 60
    chat.scroll_into_view_if_needed()
    screenshot(page, f"images-{kind}")

    chat.locator(".yagpt-model input").fill("yandexgpt")
    chat.locator(".yagpt-model input").press("Enter")
    expect(attach).to_be_hidden()
    assert emu.completions == []  # replay answered: nothing reached the service
    assert [e for e in page_errors if "reading 'schema'" not in e] == []
    assert blocked_requests == []
    assert_only_loopback(page_requests)
