"""Issue 13: a saved notebook opened again, and a transcript, render replies the same.

In JupyterLab and Notebook 7, a notebook's ``%%chat`` cells are answered by the
emulator (a hostile reply, then a benign one with math, code and a table), the
rendered outputs are snapshotted (DOM text and structure, MathJax's formulas, the
colours the code gets: what a user sees, not pixels), and then:

1. the notebook is saved, its kernel shut down and the page left; a fresh page load
   of the file shows outputs that come from the saved ``.ipynb`` only. They must
   snapshot the same, and the hostile reply stays inert (nothing runs, nothing is
   fetched, no link of another scheme than http, https or mailto). A control cell
   saved with the reply shows the same text through ``IPython.display.Markdown``:
   when Jupyter trusts the reopened notebook it runs again, which proves the
   reopened page renders saved outputs live and the detectors see it.
2. the transcript ``%chat save`` wrote is opened: Jupyter does not trust it (the
   kernel wrote it, unsigned), so Jupyter's own sanitizer handles our HTML on top of
   ours; the replies must still snapshot the same.
3. in that transcript, ``%chat load`` + ``%chat replay`` and re-running its cells
   answers from the file (the emulator sees no request) with the same rendering.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from playwright.sync_api import Locator, Page, expect

from yagpt_magic.emulator import Emulator

from .conftest import Attacker
from .jupyter import (
    ARTIFACTS_DIR,
    KINDS,
    JupyterServer,
    ServerFactory,
    append_and_run,
    assert_only_loopback,
    cell_count,
    cell_output_locator,
    create_notebook,
    dismiss_dialogs,
    notebook_locator,
    open_notebook,
    run_cell,
    wait_for_output,
)
from .test_corpus_browser import BENIGN, KEYWORD_COLOURS
from .test_xss_browser import END_TEXT, assert_shown_as_text, hostile

pytestmark = pytest.mark.browser

BENIGN_END = "END-OF-BENIGN"
#: MathJax formulas in BENIGN: two inline, one $$ display, one align environment.
BENIGN_FORMULAS = 4

# Runs in the page on a reply's output: what a user sees of it, comparable as JSON.
SNAPSHOT = """
(out) => {
  const root = out.querySelector('.jp-RenderedHTMLCommon');
  if (!root) return null;
  const words = [];
  const tags = [];
  const walk = (node) => {
    for (const child of node.childNodes) {
      if (child.nodeType === Node.TEXT_NODE) {
        const text = child.textContent.replace(/\\s+/g, ' ').trim();
        if (text) words.push(text);
      } else if (child.nodeType === Node.ELEMENT_NODE) {
        const tag = child.localName;
        if (tag === 'mjx-container') {
          const mml = child.querySelector('mjx-assistive-mml');
          words.push('[math ' + (child.getAttribute('display') || 'inline') + ': ' +
                     (mml ? mml.textContent.replace(/\\s+/g, '') : '?') + ']');
        } else if (child.classList.contains('numbering-entry')) {
          // Jupyter's table of contents numbers headings, outputs' too, when it gets to it.
        } else if (tag !== 'style') {  // what a <style> does shows in the colours below
          tags.push(tag + (child.className ? '.' + child.className : ''));
          walk(child);
        }
      }
    }
  };
  walk(root);
  const look = (el) => {
    const s = getComputedStyle(el);
    return [s.color, s.fontStyle, s.fontWeight, s.backgroundColor].join(' ');
  };
  const code = [...root.querySelectorAll('pre')].map((pre) => ({
    pre: look(pre) + ' padding ' + getComputedStyle(pre).padding,
    code: pre.querySelector('code') ? look(pre.querySelector('code')) : null,
    spans: [...pre.querySelectorAll('span')].map((s) => [s.className, s.textContent, look(s)]),
  }));
  const table = [...root.querySelectorAll('tr')].map((tr) =>
    [...tr.children].map((c) => [c.localName, c.textContent.trim(),
                                 getComputedStyle(c).textAlign]));
  const links = [...root.querySelectorAll('a')].map((a) => a.getAttribute('href'));
  return {words, tags, code, table, links, formulas: root.querySelectorAll('mjx-container').length};
}
"""

# Runs in the page on an output: links of another scheme than http(s) or mailto.
BAD_LINKS = """
(out) => [...out.querySelectorAll('[href], [xlink\\\\:href]')]
  .map((a) => a.getAttribute('href') || a.getAttribute('xlink:href'))
  .filter((h) => !/^(https?:|mailto:)/i.test(h) && !h.startsWith('#mjx-eqn'))
"""

# Runs in the page: whether the front end trusts each cell of notebook `path`.
TRUST = """
(path) => {
  for (const widget of window.jupyterapp.shell.widgets('main')) {
    if (widget.context && widget.context.path === path) {
      const cells = widget.content.model.cells;
      const trusted = [];
      for (let i = 0; i < cells.length; i++) trusted.push(cells.get(i).trusted);
      return trusted;
    }
  }
  return null;
}
"""


def show_notebook(page: Page, server: JupyterServer, name: str, cells: int) -> None:
    """A fresh page load of notebook `name`, once its `cells` cells are in the DOM."""
    page.goto(server.notebook_url(name))
    notebook_locator(page).wait_for(timeout=60_000)
    dismiss_dialogs(page)
    expect(notebook_locator(page).locator(".jp-Cell")).to_have_count(cells, timeout=30_000)


def wait_for_formulas(output: Locator, count: int) -> None:
    """Wait until MathJax has typeset `count` formulas in `output`, and then a moment more."""
    expect(output.locator("mjx-container")).to_have_count(count, timeout=30_000)
    time.sleep(0.5)  # MathJax adds its assistive MathML just after the container


def snapshot(output: Locator) -> dict[str, Any]:
    result = output.evaluate(SNAPSHOT)
    assert result is not None, f"no rendered HTML in the output:\n{output.inner_text()}"
    return result


def differences(before: Any, after: Any, where: str = "") -> list[str]:
    """Where two snapshots differ, as readable lines (empty when they are the same)."""
    if isinstance(before, dict) and isinstance(after, dict):
        keys = sorted(set(before) | set(after))
        return [d for k in keys for d in differences(before.get(k), after.get(k), f"{where}.{k}")]
    if isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
        return [d for i, (a, b) in enumerate(zip(before, after)) for d in
                differences(a, b, f"{where}[{i}]")]
    return [] if before == after else [f"{where}: {before!r} -> {after!r}"]


#: Pygments classes that only our <style> colours (JupyterLab's theme has colours for
#: them, but jupyterlab_pygments, whose classes style `.highlight` everywhere, has none).
#: Jupyter drops that <style> from an untrusted notebook, so these show in the text colour.
UNTRUSTED_PLAIN = {"nf", "fm", "nc", "nb", "bp", "nd", "nt", "na", "nv", "vc", "vg", "vi",
                   "vm", "gh"}  # fmt: skip


def assert_same(
    before: dict[str, Any], after: dict[str, Any], what: str, *, untrusted: bool = False
) -> list[str]:
    """Fail listing what differs; untrusted, name tokens may lose their colour (returned)."""
    found = differences(before, after)
    plain = []
    if untrusted:
        for block, spans in zip(before["code"], after["code"]):
            for (cls, text, look), (_, _, now) in zip(block["spans"], spans["spans"]):
                if look != now and cls in UNTRUSTED_PLAIN:
                    plain.append(f"{cls} {text!r}")
                    found = [d for d in found if not d.endswith(f"{look!r} -> {now!r}")]
    assert not found, f"{what} renders differently:\n" + "\n".join(found[:40])
    return plain


def check_benign(output: Locator) -> dict[str, Any]:
    """The benign reply reads as formatted text; return its snapshot."""
    wait_for_formulas(output, BENIGN_FORMULAS)
    shot = snapshot(output)
    assert "$" not in output.inner_text().replace("$$", "")  # no math left untypeset
    keyword, wanted, text = output.evaluate(KEYWORD_COLOURS)
    assert keyword == wanted != text, "code is not highlighted in the theme's colours"
    (block,) = shot["code"]
    assert "rgba(128, 128, 128, 0.08) padding 6px 8px" in block["pre"], "no box around code"
    assert block["code"].endswith("rgba(0, 0, 0, 0)"), "Jupyter's code background stripes it"
    assert [row[0][:2] for row in shot["table"]] == [["th", "Planet"], ["td", "Earth"],
                                                     ["td", "Mars"]]
    assert [row[1][2] for row in shot["table"]] == ["right"] * 3  # the `------:` column
    assert {"h1", "em", "strong", "s", "ol", "ul", "blockquote", "table"} <= set(shot["tags"])
    assert "https://example.com" in shot["links"]
    return shot


def check_inert(page: Page, output: Locator, attacker: Attacker, tag: str) -> None:
    """The hostile reply is text on screen: nothing of it ran, loaded or links elsewhere."""
    expect(output).to_contain_text(END_TEXT)
    assert_shown_as_text(output)
    assert output.evaluate(BAD_LINKS) == []
    time.sleep(1)  # let any handler or image of the reply have its go
    ran = [entry for entry in page.evaluate("window.__pwned || []") if entry.startswith(tag)]
    assert ran == [], f"the reply ran script: {ran}"
    assert attacker.hits(tag) == [], f"the reply fetched: {attacker.hits(tag)}"


def wait_for_control(page: Page, tag: str) -> list[str]:
    """What the unsafe control ran (its <img onerror> at least), once it has run."""
    page.wait_for_function(
        "tag => (window.__pwned || []).includes(tag + ':img-onerror')", arg=tag, timeout=15_000
    )
    return [e for e in page.evaluate("window.__pwned") if e.startswith(tag + ":")]


def chat_outputs(server: JupyterServer, name: str) -> list[dict[str, Any]]:
    """The outputs that carry a reply in notebook `name` as saved on disk."""
    model: Any = server.api("GET", f"/api/contents/{name}?content=1")
    return [
        output
        for cell in model["content"]["cells"]
        for output in cell.get("outputs", [])
        if "yagpt_magic" in output.get("metadata", {})
    ]


def close_notebook(page: Page, server: JupyterServer, name: str) -> str:
    """Leave the page and shut down the notebook's kernel; return that kernel's id."""
    page.goto("about:blank")
    sessions: Any = server.api("GET", "/api/sessions")
    (session,) = [s for s in sessions if s["path"] == name]
    server.api("DELETE", f"/api/sessions/{session['id']}")
    return session["kernel"]["id"]


def kernel_of(server: JupyterServer, name: str) -> str | None:
    sessions: Any = server.api("GET", "/api/sessions")
    return next((s["kernel"]["id"] for s in sessions if s["path"] == name), None)


def rerun(page: Page, index: int, text: str) -> Locator:
    """Run cell `index` again and wait for its new output (the old one holds `text` too)."""
    output = cell_output_locator(page, index)
    output.locator(".jp-OutputArea-output").evaluate_all(
        "nodes => nodes.forEach(n => n.setAttribute('data-old-output', ''))"
    )
    run_cell(page, index)
    fresh = output.locator(".jp-OutputArea-output:not([data-old-output])")
    expect(fresh.filter(has_text=text)).to_have_count(1, timeout=30_000)
    expect(output.locator("[data-old-output]")).to_have_count(0)
    return output


def element_shot(output: Locator, name: str) -> None:
    output.scroll_into_view_if_needed()
    output.screenshot(path=ARTIFACTS_DIR / f"{name}.png")


@pytest.mark.parametrize("kind", KINDS)
def test_reopened_notebook_and_transcript_render_the_same(
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
    ARTIFACTS_DIR.mkdir(exist_ok=True)
    name, transcript = f"reopen-{kind}.ipynb", f"reopen-{kind}-transcript.ipynb"
    reply_tag, control_tag = f"reply-{kind}", f"control-{kind}"
    control = hostile(control_tag, attacker)
    cells = [
        "%load_ext yagpt_magic",
        "%%chat\nSummarise the page I pasted.",
        "%%chat\nShow me what you can render.",
        f"%chat save {transcript}",
        f"from IPython.display import Markdown\nMarkdown({json.dumps(control)})",
    ]
    HOSTILE, BENIGN_CELL, CONTROL = 1, 2, 4  # noqa: N806 - cell indices
    create_notebook(server, name, cells)
    attacker.paths.clear()
    emu.reply_with(hostile(reply_tag, attacker))
    emu.reply_with(BENIGN)

    # -- as first shown: answered live -------------------------------------------------
    open_notebook(page, server, name)
    page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
    wait_for_output(page, 3, f"to {transcript}")
    wait_for_output(page, CONTROL, END_TEXT)
    benign = cell_output_locator(page, BENIGN_CELL)
    wait_for_output(page, BENIGN_CELL, BENIGN_END)
    live_benign = check_benign(benign)
    live_hostile = snapshot(cell_output_locator(page, HOSTILE))
    check_inert(page, cell_output_locator(page, HOSTILE), attacker, reply_tag)
    wait_for_control(page, control_tag)  # the unsafe way runs, live
    element_shot(benign, f"reopen-{kind}-benign-live")
    live_kernel = kernel_of(server, name)

    # -- saved, closed, opened again ----------------------------------------------------
    page.evaluate("window.jupyterapp.commands.execute('docmanager:save')")
    deadline = time.monotonic() + 15
    while len(chat_outputs(server, name)) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    saved = chat_outputs(server, name)
    assert [sorted(o["data"]) for o in saved] == [["text/html", "text/plain"]] * 2
    assert close_notebook(page, server, name) == live_kernel
    attacker.paths.clear()

    show_notebook(page, server, name, len(cells))
    benign = cell_output_locator(page, BENIGN_CELL)
    wait_for_output(page, BENIGN_CELL, BENIGN_END)
    assert_same(live_benign, check_benign(benign), "the benign reply, reopened")
    hostile_out = cell_output_locator(page, HOSTILE)
    assert_same(live_hostile, snapshot(hostile_out), "the hostile reply, reopened")
    check_inert(page, hostile_out, attacker, reply_tag)
    trust = page.evaluate(TRUST, name)
    if all(trust):  # Jupyter signed it on save: the saved control runs again on reopening
        assert wait_for_control(page, control_tag)
    else:  # not trusted: Jupyter's sanitizer keeps even the control from running
        assert page.evaluate("window.__pwned || []") == []
    print(f"{kind}: reopened notebook trusted per cell: {trust}")
    element_shot(hostile_out, f"reopen-{kind}-hostile-reopened")
    element_shot(benign, f"reopen-{kind}-benign-reopened")
    page.screenshot(path=ARTIFACTS_DIR / f"reopen-{kind}-reopened.png", full_page=True)
    assert kernel_of(server, name) != live_kernel  # outputs came from the file

    # -- the transcript %chat save wrote, opened ----------------------------------------
    # Cells: title, %load_ext, thread settings, then one %%chat cell per turn.
    t_hostile, t_benign = 3, 4
    attacker.paths.clear()
    open_notebook(page, server, transcript)
    trust = page.evaluate(TRUST, transcript)
    assert trust[t_hostile] is trust[t_benign] is False, trust  # Jupyter sanitizes it
    benign = cell_output_locator(page, t_benign)
    plain = assert_same(
        live_benign, check_benign(benign), "the benign reply in the transcript", untrusted=True
    )
    print(f"{kind}: untrusted transcript, tokens in the text colour: {plain}")
    hostile_out = cell_output_locator(page, t_hostile)
    assert_same(
        live_hostile, snapshot(hostile_out), "the hostile reply in the transcript", untrusted=True
    )
    check_inert(page, hostile_out, attacker, reply_tag)
    element_shot(hostile_out, f"reopen-{kind}-hostile-transcript")
    element_shot(benign, f"reopen-{kind}-benign-transcript")

    # -- %chat load + %chat replay, then its cells run again -----------------------------
    emu.reset()
    emu.reply_with("LIVE-ANSWER: replay let a request through.", times=2)
    run_cell(page, 1)
    setup = append_and_run(page, f"%chat load {transcript}\n%chat replay {transcript}")
    wait_for_output(page, setup, "Replaying 2 recorded turns")
    rerun(page, t_hostile, END_TEXT)
    benign = rerun(page, t_benign, BENIGN_END)
    assert_same(live_benign, check_benign(benign), "the benign reply, replayed")
    hostile_out = cell_output_locator(page, t_hostile)
    assert_same(live_hostile, snapshot(hostile_out), "the hostile reply, replayed")
    check_inert(page, hostile_out, attacker, reply_tag)
    assert emu.requests == [], "replay reached the service"
    element_shot(benign, f"reopen-{kind}-benign-replayed")
    # The control in this page: the detectors see what runs here.
    live_control = append_and_run(page, cells[CONTROL])
    wait_for_output(page, live_control, END_TEXT)
    wait_for_control(page, control_tag)
    assert cell_count(page) == live_control + 1

    assert blocked_requests == []
    assert_only_loopback(page_requests)
