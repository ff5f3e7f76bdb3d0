"""The differential test of SPEC 10: thousands of hostile replies, the real front end.

Every reply of ``tests/hostile_corpus.py`` is rendered by ``render.reply_html`` in a
kernel of a real JupyterLab 4 / Notebook 7 and shown as ``text/html`` output (a few
hundred replies per output, so the run takes minutes), where Jupyter's own pipeline
handles it: trusted-HTML rendering, link handling and MathJax typesetting. Then:

- nothing ran: every vector calls ``__pwn(n)`` and the page also records dialogs;
- nothing was fetched: the attacker's loopback server saw no request, and the page
  asked nothing of any origin but the Jupyter server;
- the DOM, after typesetting, holds no ``<a href>`` to another scheme than http, https
  or mailto, no element that fetches or embeds (img, iframe, object, embed, svg, math
  outside MathJax's own output...), no event-handler attribute, no ``url(`` in a style.

A control shows the Markdown forms of the corpus the unsafe way, as ``text/markdown``
through Jupyter's marked: the DOM scan and the attacker's server must both see them,
which proves they can (``test_xss_browser``'s control does the same for handlers).
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from playwright.sync_api import Page

from ..hostile_corpus import corpus
from .conftest import Attacker
from .jupyter import (
    ARTIFACTS_DIR,
    KINDS,
    JupyterServer,
    ServerFactory,
    append_and_run,
    cell_output_locator,
    create_notebook,
    open_notebook,
    wait_for_output,
)

pytestmark = pytest.mark.browser

BATCH = 400

# Runs before any script of the page: the corpus's vectors report through these.
INSTRUMENT = """
window.__pwnLog = [];
window.__pwn = (n) => { window.__pwnLog.push(n); };
for (const name of ['alert', 'confirm', 'prompt', 'print']) {
  window[name] = (...args) => { window.__pwnLog.push(name + ':' + String(args[0])); };
}
"""

# Runs in the page after typesetting: everything live in the outputs, by reply number.
SCAN = """
() => {
  const problems = [];
  const fetching = ['src', 'srcset', 'data', 'action', 'formaction', 'background',
                    'poster', 'ping', 'dynsrc', 'lowsrc', 'xlink:href', 'srcdoc'];
  const banned = new Set(['img', 'iframe', 'object', 'embed', 'script', 'link', 'meta',
    'base', 'form', 'input', 'button', 'textarea', 'select', 'video', 'audio', 'source',
    'picture', 'frame', 'frameset', 'image', 'use', 'foreignobject', 'template', 'portal']);
  const where = (el) => {
    const item = el.closest('[data-n]');
    return item ? item.getAttribute('data-n') : '?';
  };
  const outputs = document.querySelectorAll('.jp-Notebook .jp-OutputArea-output');
  for (const out of outputs) {
    for (const el of out.querySelectorAll('*')) {
      const tag = el.localName.toLowerCase();
      const inMathJax = !!el.closest('mjx-container');
      if (banned.has(tag) || ((tag === 'svg' || tag === 'math') && !inMathJax)) {
        problems.push([where(el), '<' + tag + '>']);
      }
      if (tag === 'style' && /url\\(|@import|expression/i.test(el.textContent)) {
        problems.push([where(el), 'stylesheet ' + el.textContent.slice(0, 80)]);
      }
      for (const attr of el.attributes) {
        const name = attr.name.toLowerCase();
        const value = attr.value;
        if (name.startsWith('on')) problems.push([where(el), tag + '[' + name + ']']);
        if (fetching.includes(name)) problems.push([where(el), tag + '[' + name + ']=' + value]);
        if (name === 'style' && /url\\(|expression|@import/i.test(value)) {
          problems.push([where(el), tag + '[style]=' + value]);
        }
        if (name === 'href') {
          // MathJax's own \\eqref links point at its equation labels on this page.
          const ownRef = inMathJax && value.startsWith('#mjx-eqn');
          if (!ownRef && !/^(https?:|mailto:)/i.test(value)) {
            problems.push([where(el), tag + '[href]=' + value]);
          }
        }
      }
    }
  }
  return problems;
}
"""


def batch_cell(attacker: Attacker, start: int, stop: int, *, markdown: bool = False) -> str:
    """A cell that shows replies start..stop of the corpus as one output."""
    if markdown:  # the control: Jupyter's Markdown renderer gets the raw reply
        show = (
            "display({'text/markdown': '\\n\\n<hr>\\n\\n'.join(replies) + "
            f"'\\n\\nEND-BATCH-{start}', 'text/plain': ''}}, raw=True)"
        )
        replies = f"[r for r in corpus({attacker.url!r})[{start}:{stop}] if control(r)]"
    else:
        show = (
            "display({'text/html': ''.join("
            "f'<div data-n=\"{n}\">' + reply_html(r) + '</div>' for n, r in replies) + "
            f"'<p>END-BATCH-{start}</p>', 'text/plain': ''}}, raw=True)"
        )
        replies = f"list(enumerate(corpus({attacker.url!r})[{start}:{stop}], {start}))"
    return (
        "from IPython.display import display\n"
        "from tests.hostile_corpus import corpus, control\n"
        "from yagpt_magic.display.render import reply_html\n"
        f"replies = {replies}\n"
        f"{show}\n"
    )


def run_all(page: Page) -> None:
    page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")


def wait_for_typesetting(page: Page, quiet: float = 3.0, timeout: float = 120) -> int:
    """Wait until MathJax has stopped adding formulas for `quiet` seconds; return how many."""
    count, since = -1, time.monotonic()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        now = page.locator(".jp-Notebook mjx-container").count()
        if now != count:
            count, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return count
        time.sleep(0.5)
    return count


def outside_requests(urls: list[str], server: JupyterServer) -> list[str]:
    allowed = (server.url, server.url.replace("http://", "ws://"), "data:", "blob:", "about:")
    return [url for url in urls if not url.startswith(allowed)]


@pytest.mark.parametrize("kind", KINDS)
def test_hostile_corpus_is_inert(
    kind: str,
    jupyter_server_factory: ServerFactory,
    chat_env: dict[str, str],
    attacker: Attacker,
    page: Page,
    page_requests: list[str],
    blocked_requests: list[str],
) -> None:
    server = jupyter_server_factory(kind, chat_env)
    size = len(corpus())
    starts = list(range(0, size, BATCH))
    cells = [batch_cell(attacker, start, start + BATCH) for start in starts]
    name = create_notebook(server, f"corpus-{kind}.ipynb", cells)
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.add_init_script(INSTRUMENT)
    open_notebook(page, server, name)
    attacker.paths.clear()

    run_all(page)
    for index, start in enumerate(starts):
        wait_for_output(page, index, f"END-BATCH-{start}", timeout=120)
    shown = page.locator(".jp-Notebook [data-n]").count()
    formulas = wait_for_typesetting(page)
    time.sleep(2)  # let any image or stylesheet a reply might have started arrive
    cell_output_locator(page, 0).scroll_into_view_if_needed()
    page.screenshot(path=ARTIFACTS_DIR / f"corpus-{kind}.png")

    problems: list[Any] = page.evaluate(SCAN)
    assert shown == size
    assert formulas > 0, "MathJax typeset nothing: the test would not see math-made links"
    assert problems == [], problems[:40]
    assert page.evaluate("window.__pwnLog") == [] and dialogs == []
    assert page.evaluate("typeof window.__pwned") == "undefined"
    assert attacker.paths == []
    assert blocked_requests == []
    assert outside_requests(page_requests, server) == []


@pytest.mark.parametrize("kind", KINDS)
def test_control_trips_the_detectors(
    kind: str,
    jupyter_server_factory: ServerFactory,
    chat_env: dict[str, str],
    attacker: Attacker,
    page: Page,
) -> None:
    """The Markdown part of the corpus as text/markdown (marked): the detectors fire."""
    server = jupyter_server_factory(kind, chat_env)
    # The base vectors come first: the Markdown forms and issue 13's replies are there.
    starts = [0, BATCH]
    cells = [batch_cell(attacker, s, s + BATCH, markdown=True) for s in starts]
    name = create_notebook(server, f"corpus-control-{kind}.ipynb", cells)
    page.on("dialog", lambda dialog: dialog.dismiss())
    page.add_init_script(INSTRUMENT)
    open_notebook(page, server, name)
    attacker.paths.clear()

    run_all(page)
    for index, start in enumerate(starts):
        wait_for_output(page, index, f"END-BATCH-{start}", timeout=120)
    wait_for_typesetting(page)
    time.sleep(2)
    problems: list[Any] = page.evaluate(SCAN)
    page.screenshot(path=ARTIFACTS_DIR / f"corpus-control-{kind}.png")

    kinds = {problem[1].split("=")[0] for problem in problems}
    assert {"a[href]", "<img>"} <= kinds, kinds
    assert any(p[1].startswith("a[href]=javascript:") for p in problems)
    # (Links are not clicked, so no handler runs here; test_xss_browser's control runs some.)
    # Issue 13's image: marked fetches it (the corpus writes it with an &#104; entity).
    assert any("/leak.png?q=SECRET-CONVERSATION" in path for path in attacker.paths)
    print(f"control ({kind}): {len(problems)} live elements, {len(attacker.paths)} fetches")


BENIGN = r"""# A benign reply

Some *emphasis*, **strong**, ~~gone~~ and `inline code`; see www.example.org.

Inline math $E = mc^2$ and $\frac{a}{b} < 1$, and on its own:

$$
\int_0^1 x^2\,dx = \frac{1}{3}
$$

\begin{align} a &= b + c \end{align}

```python
def greet(name: str) -> str:
    # say hello
    return f"Hello, {name}!" * 42
```

| Planet | Moons |
|:-------|------:|
| Earth  | 1 |
| Mars   | 2 |

1. first
2. second
   - nested

> A quote with a [link](https://example.com "Example").

![a chart](https://img.example/chart.png)

END-OF-BENIGN"""

# Runs in the page: the colour a keyword gets, and the colour the theme means for one.
KEYWORD_COLOURS = """
(output) => {
  const keyword = output.querySelector('.highlight .k');
  const probe = document.createElement('span');
  probe.style.color = 'var(--jp-mirror-editor-keyword-color)';
  output.appendChild(probe);
  const wanted = getComputedStyle(probe).color;
  probe.remove();
  return [keyword ? getComputedStyle(keyword).color : null, wanted,
          getComputedStyle(output).color];
}
"""


@pytest.mark.parametrize("kind", KINDS)
def test_benign_reply_renders_well(
    kind: str,
    jupyter_server_factory: ServerFactory,
    chat_env: dict[str, str],
    emu: Any,
    page: Page,
) -> None:
    """Through %%chat: math typeset by Jupyter's MathJax, code coloured, tables, lists."""
    server = jupyter_server_factory(kind, chat_env)
    name = create_notebook(server, f"benign-{kind}.ipynb", ["%load_ext yagpt_magic"])
    open_notebook(page, server, name)
    emu.reply_with(BENIGN)
    run_all(page)
    wait_for_output(page, 0, "", timeout=30)
    index = append_and_run(page, "%%chat\nShow me what you can render.")
    output = wait_for_output(page, index, "END-OF-BENIGN")
    wait_for_typesetting(page)

    rendered = output.locator(".jp-RenderedHTMLCommon")
    assert output.locator("mjx-container").count() == 4  # two inline, $$, align
    assert "$" not in output.inner_text().replace("$$", "")  # no math left untypeset
    keyword, wanted, text = output.evaluate(KEYWORD_COLOURS)
    assert keyword == wanted != text
    assert rendered.locator("table th").count() == 2 and rendered.locator("ol > li").count() == 2
    link = rendered.locator("a[href='https://example.com']")
    # Jupyter replaces the rel we write ("noopener noreferrer nofollow") by its own.
    assert "noopener" in (link.get_attribute("rel") or "").split()
    assert rendered.locator("a[href='https://img.example/chart.png']").count() == 1
    assert rendered.locator("img").count() == 0
    output.scroll_into_view_if_needed()
    output.screenshot(path=ARTIFACTS_DIR / f"benign-{kind}.png")
