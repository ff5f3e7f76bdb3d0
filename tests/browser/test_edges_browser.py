"""Issue 25 in a real browser: the widget's text is never typeset, a kernel restart leaves
it readable, and a reopened notebook's static transcript stays within a height.

- Tool names, results and the status line are text the model (or the service) controls:
  ipywidgets' Label handed them to MathJax, so ``$\\href{…}{…}$`` became a live link.
- After a kernel restart ipywidgets marks every widget view "disconnected" with a red
  icon-font ``::before``; the widget's own labels used ``::before`` too, so each turn
  showed a broken-link glyph and a red serif "YandexGPT".
- A reopened notebook showed the widget's ten turns as 3,157 px of page.
"""

from __future__ import annotations

import json

import grpc
import pytest
from playwright.sync_api import Locator, Page, expect

from yagpt_magic.emulator import Emulator

from .jupyter import (
    KINDS,
    JupyterServer,
    ServerFactory,
    cell_locator,
    create_notebook,
    open_notebook,
    run_cell,
    screenshot,
)
from .test_widget_browser import open_widget, wait_until
from .test_widget_ux_browser import has_class, send_and_wait, wait_idle

pytestmark = pytest.mark.browser

TEX = "$\\href{http://evil.example/}{click me}$"
SETUP = (
    "%load_ext yagpt_magic\n"
    'def echo(text: str) -> str:\n    """Say it back."""\n    return text\n'
    '%config ChatMagics.tools = ["echo"]\n'
    '%config ChatMagics.tool_calls = "auto"\n'
    "%chat widget"
)

# Runs in the page on the chat widget: every drawn element's ::before that draws something
# (a hidden control, such as the attach button for a model without sight, draws nothing).
BEFORES = """
(chat) => [chat, ...chat.querySelectorAll('*')].map((el) => {
  const s = getComputedStyle(el, '::before');
  if (s.content === 'none' || s.content === 'normal' || s.display === 'none') return null;
  if (el.getClientRects().length === 0) return null;  // not drawn: a hidden control's icon
  return {cls: String(el.className), content: s.content, color: s.color, font: s.fontFamily};
}).filter(Boolean)
"""

# Runs in the page: restart the kernel of notebook `path`, without the confirm dialog.
RESTART = """
async (path) => {
  for (const widget of window.jupyterapp.shell.widgets('main')) {
    if (widget.context && widget.context.path === path) {
      await widget.sessionContext.session.kernel.restart();
      return 'restarted';
    }
  }
  return 'no panel for ' + path;
}
"""


def typeset_in(area: Locator) -> int:
    """How many MathJax formulas and links a part of the widget holds."""
    return area.locator("mjx-container, a").count()


@pytest.mark.parametrize("kind", KINDS)
def test_model_text_is_plain_and_a_restart_leaves_the_widget_readable(
    kind: str,
    jupyter_server_factory: ServerFactory,
    chat_env: dict[str, str],
    emu: Emulator,
    page: Page,
) -> None:
    server = jupyter_server_factory(kind, chat_env)
    name = f"edges-restart-{kind}.ipynb"
    create_notebook(server, name, [SETUP])
    open_notebook(page, server, name)
    run_cell(page, 0)
    chat = open_widget(page, 0)

    # 1. Text the model controls is shown as text: a tool named with TeX, its result,
    #    and an error the service echoes, in the tool panel and the status line.
    emu.call_tools([(TEX, {"text": TEX}), ("echo", {"text": TEX})])
    send_and_wait(chat, "Call the tools.")
    tools = chat.locator(".yagpt-tools")
    expect(tools).to_contain_text(f"Tool call: {TEX!r}(text={TEX!r})")
    expect(tools).to_contain_text(f"→ {TEX}")  # the result, as the function returned it
    emu.fail(grpc.StatusCode.INVALID_ARGUMENT, f"unknown model {TEX}")
    chat.locator(".yagpt-input textarea").fill("Again.")
    chat.locator("button.yagpt-send").click()
    status = chat.locator(".yagpt-status")
    expect(status).to_contain_text(TEX, timeout=30_000)
    page.wait_for_timeout(1000)  # MathJax typesets asynchronously: give it its chance
    assert typeset_in(tools) == typeset_in(status) == 0
    assert typeset_in(chat.locator(".yagpt-meta")) == 0
    expect(chat.locator(".yagpt-meta").first).to_contain_text("tokens")
    before = chat.evaluate(BEFORES)
    assert {b["content"] for b in before} == {'"You"', '"YandexGPT\xa0·\xa0"'}, before

    # 2. The kernel restarts: one line says so; no per-widget broken-link mark, and the
    #    labels keep their own font and colour.
    assert page.evaluate(RESTART, name) == "restarted"
    expect(chat).to_have_class(has_class("jupyter-widgets-disconnected"), timeout=30_000)
    wait_until(lambda: len(chat.evaluate(BEFORES)) > len(before), "the restart notice")
    after = chat.evaluate(BEFORES)
    notice = [b for b in after if "Disconnected" in b["content"]]
    assert len(notice) == 1 and "yagpt-chat" in notice[0]["cls"], after
    others = [b for b in after if b not in notice]
    assert {b["content"] for b in others} == {'"You"', '"YandexGPT\xa0·\xa0"'}, after
    assert all("Awesome" not in b["font"] and b["color"] != "rgb(217, 83, 79)"
               for b in others), others
    screenshot(page, f"edges-{kind}-after-restart")


@pytest.mark.parametrize("kind", KINDS)
def test_a_reopened_notebooks_transcript_has_a_height_limit(
    kind: str,
    jupyter_server_factory: ServerFactory,
    chat_env: dict[str, str],
    emu: Emulator,
    page: Page,
) -> None:
    server = jupyter_server_factory(kind, chat_env)
    name = f"edges-height-{kind}.ipynb"
    ten_turns = (
        "%load_ext yagpt_magic\n"
        "from yagpt_magic import current_session\n"
        "for i in range(10):\n"
        "    current_session().ask('default', f'Question {i}: tell me about rivers.')\n"
        "%chat widget"
    )
    create_notebook(server, name, [ten_turns])
    open_notebook(page, server, name)
    run_cell(page, 0)
    chat = open_widget(page, 0)
    wait_idle(chat)
    expect(chat.locator(".yagpt-turn")).to_have_count(10)
    saved = page.evaluate("window.jupyterapp.commands.execute('docmanager:save')"
                          ".then(() => 'saved', (e) => String(e))")
    assert saved == "saved"
    wait_until(lambda: "Question 9" in _saved_text(server, name), "saved", timeout=30)
    for session in server.api("GET", "/api/sessions"):  # type: ignore[union-attr]
        server.api("DELETE", f"/api/sessions/{session['id']}")
    page.goto("about:blank")

    open_notebook(page, server, name)
    transcript = cell_locator(page, 0).locator(".jp-OutputArea-child").filter(
        has=page.locator(".yagpt-static-transcript"))
    expect(transcript).to_be_visible()
    expect(transcript).to_contain_text("Question 9")
    box = transcript.bounding_box()
    assert box is not None and box["height"] < 700, box  # was 3,157 px for these ten turns
    turns = transcript.locator(".yagpt-transcript-turns")
    scroll = turns.evaluate("t => [t.scrollHeight, t.clientHeight]")
    assert scroll[0] > 2 * scroll[1], scroll  # the turns are all there, scrolling inside it
    screenshot(page, f"edges-{kind}-reopened-height")


def _saved_text(server: JupyterServer, name: str) -> str:
    return json.dumps(server.api("GET", f"/api/contents/{name}"))
