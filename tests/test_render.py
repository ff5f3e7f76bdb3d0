"""Replies are untrusted: the HTML they render to holds nothing live (SPEC 10).

Every output of ``reply_html`` is checked by a strict allowlist that reads it the way a
browser and Jupyter's MathJax would: only the tags and attributes Markdown makes, links
only to http, https and mailto, no image unless its host was named, no class but
Pygments' own, and no run of text that MathJax reads holding a TeX control word that
makes links, attributes or requests. The browser half is ``browser/test_corpus_browser.py``.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from yagpt_magic.display.render import (
    _MARKUP,
    _TEX_DANGER,
    _code_css,
    _markdown,
    inline_html,
    reply_bundle,
    reply_html,
    text_html,
)
from yagpt_magic.display.reply import ReplyView, Table

from .hostile_corpus import corpus

TAGS = {
    "p", "em", "strong", "code", "pre", "a", "ul", "ol", "li", "blockquote",
    "h1", "h2", "h3", "h4", "h5", "h6", "table", "thead", "tbody", "tr", "th", "td",
    "hr", "br", "s", "del", "span", "div",
}  # fmt: skip
PRESENTATIONAL = {"b", "i", "u", "sub", "sup", "details", "summary", "kbd", "mark", "small"}
ATTRS = {"a": {"href", "title", "rel"}, "ol": {"start"}, "th": {"style"}, "td": {"style"},
         "span": {"class"}, "pre": {"class", "style"}, "div": {"class"}, "code": {"style"},
         "img": {"src", "alt", "title"}}
#: The one inline style of a highlighted block: its box, with no theme variable, because
#: Jupyter drops <style> and var() from an untrusted notebook's outputs.
CODE_BOX = "background-color:rgba(128,128,128,0.08);padding:6px 8px"
CODE_CLEAR = "background-color:rgba(0,0,0,0)"  # the <code> in it, over Jupyter's own
# With allow_html: formatting attributes anywhere, styles that cannot fetch.
OPT_IN_ATTRS = {"title", "lang", "dir", "style", "align", "colspan", "rowspan", "span", "open",
                "type", "reversed", "start", "width", "height"}
OPT_IN_STYLE = re.compile(
    r"(?:(?:color|background-color|font-weight|font-style|font-size|text-align|text-decoration"
    r"|vertical-align|white-space):[^;:()\\]*;?)*"
)
PYGMENTS = re.compile(r"[a-z0-9]{1,3}")
WEB = ("http://", "https://", "mailto:")
MATHJAX_SKIPS = {"code", "pre", "style"}


def host_of(url: str) -> str:
    return (urlsplit(url).hostname or "") if url.lower().startswith("http") else ""


class Allowlist(HTMLParser):
    """Every problem a fragment has: markup outside the allowlist, or risky TeX in text."""

    def __init__(self, hosts: set[str], allow_html: bool) -> None:
        super().__init__(convert_charrefs=True)
        self.hosts, self.allow_html = hosts, allow_html
        self.tags = TAGS | PRESENTATIONAL if allow_html else TAGS
        self.problems: list[str] = []
        self.skipping: list[str] = []
        self.run = ""  # the text MathJax reads as one string (it crosses <br>)

    def flush(self) -> None:
        if _TEX_DANGER.search(self.run):
            self.problems.append(f"MathJax would read {self.run!r}")
        self.run = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "br":
            return
        self.flush()
        if tag == "style":
            self.skipping.append(tag)
            return
        if tag == "img" and not self.hosts:
            self.problems.append("<img> with no image host named")
        elif tag not in self.tags | {"img"}:
            self.problems.append(f"<{tag}>")
        for name, value in attrs:
            value = value or ""
            if name not in ATTRS.get(tag, set()) | (OPT_IN_ATTRS if self.allow_html else set()):
                self.problems.append(f"{tag}[{name}]")
            elif name == "style" and tag == "pre" and value == CODE_BOX:
                if dict(attrs).get("class") != "highlight":
                    self.problems.append(f"pre[style]={value!r} without class highlight")
            elif name == "style" and tag == "code" and value == CODE_CLEAR:
                pass  # our own, fixed; the allowlist has no other style for <code>
            elif name == "style" and self.allow_html:
                if not OPT_IN_STYLE.fullmatch(value.replace(" ", "")):
                    self.problems.append(f"style={value!r}")
            elif name == "href" and not value.lower().startswith(WEB):
                self.problems.append(f"href={value!r}")
            elif name == "src" and host_of(value) not in self.hosts:
                self.problems.append(f"src={value!r}")
            elif name == "style" and value != "text-align:left" and not re.fullmatch(
                r"text-align:(left|right|center)", value
            ):
                self.problems.append(f"style={value!r}")
            elif name == "class" and not all(PYGMENTS.fullmatch(c) or c in (
                "highlight", "yagpt-rendered") for c in value.split()):
                self.problems.append(f"class={value!r}")
            elif name == "rel" and value != "noopener noreferrer nofollow":
                self.problems.append(f"rel={value!r}")
        if tag in MATHJAX_SKIPS:
            self.skipping.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag in MATHJAX_SKIPS:
            self.skipping.pop()

    def handle_endtag(self, tag: str) -> None:
        if tag == "br":
            return
        self.flush()
        if tag in MATHJAX_SKIPS and self.skipping:
            self.skipping.pop()

    def handle_data(self, data: str) -> None:
        if self.skipping and self.skipping[-1] == "style":
            if data != _code_css()[len("<style>") : -len("</style>")]:
                self.problems.append("a stylesheet that is not ours")
        elif not self.skipping:
            self.run += data

    def handle_comment(self, data: str) -> None:
        self.problems.append("comment")

    def handle_pi(self, data: str) -> None:
        self.problems.append("processing instruction")

    def handle_decl(self, decl: str) -> None:
        self.problems.append("declaration")

    def unknown_decl(self, data: str) -> None:
        self.problems.append("declaration")


def problems(fragment: str, hosts: set[str] | None = None, allow_html: bool = False) -> list[str]:
    checker = Allowlist(hosts or set(), allow_html)
    checker.feed(fragment)
    checker.close()
    checker.flush()
    return checker.problems + (["unfinished markup"] if checker.rawdata else [])


# -- the corpus -----------------------------------------------------------------------

CORPUS = corpus()


def test_corpus_is_big_and_deterministic() -> None:
    assert len(set(CORPUS)) >= 4000
    assert corpus() == CORPUS


def test_every_hostile_reply_renders_to_allowlisted_html() -> None:
    failed = {}
    for n, reply in enumerate(CORPUS):
        found = problems(reply_html(reply))
        if found:
            failed[n] = (reply, found)
    assert failed == {}


def test_every_hostile_reply_is_safe_with_html_allowed_and_an_image_host() -> None:
    # The leak host is named, so only images from it could load; none may run script.
    for reply in CORPUS[::7]:
        out = reply_html(reply, allow_html=True, image_hosts=["img.example"])
        assert problems(out, {"img.example"}, allow_html=True) == [], reply


def test_the_replies_of_issue_13_are_text() -> None:
    out = reply_html("[click me](<&#106;avascript:(window.__pwned=1)//<>)")
    assert "<a" not in out and "javascript:(window.__pwned=1)" in out
    out = reply_html("[also me](javascript&#58;(window.__pwned2=1)//(")
    assert "<a" not in out and "[also me](javascript:" in out
    out = reply_html("![chart](<&#104;ttp://127.0.0.1:9/leak.png?q=SECRET<>)")
    assert "<a" not in out and "<img" not in out


# -- what benign replies look like ----------------------------------------------------


def test_markdown_renders() -> None:
    out = reply_html("# Title\n\nSome *em*, **strong**, ~~gone~~ and `code`.\n\n- a\n- b\n")
    for part in ("<h1>Title</h1>", "<em>em</em>", "<strong>strong</strong>", "<s>gone</s>",
                 "<code>code</code>", "<li>a</li>"):
        assert part in out


def test_links_keep_only_web_and_mail_targets() -> None:
    out = reply_html("[ok](https://example.com/a?b=1&c=2) [bad](javascript:x) <team@example.com>")
    assert ('<a href="https://example.com/a?b=1&amp;c=2" rel="noopener noreferrer nofollow">'
            "ok</a>") in out
    assert "[bad](javascript:x)" in out and 'href="mailto:team@example.com"' in out
    assert 'href="http://www.example.com"' in reply_html("see www.example.com")


def test_raw_html_is_text_unless_allowed() -> None:
    assert "&lt;b&gt;bold&lt;/b&gt;" in reply_html("a <b>bold</b> word")
    out = reply_html('a <b onclick="x()">bold</b> <img src=x onerror=y()>', allow_html=True)
    assert "<b>bold</b>" in out and "onclick" not in out and "onerror" not in out
    assert "<img" not in out


def test_images_become_links_unless_their_host_is_named() -> None:
    reply = "![chart](https://img.example/c.png)"
    assert reply_html(reply) == (
        '<div class="yagpt-rendered"><p><a href="https://img.example/c.png" '
        'rel="noopener noreferrer nofollow">image: chart</a> '
        "<code>https://img.example/c.png</code></p>\n</div>"
    )
    assert '<img src="https://img.example/c.png" alt="chart">' in reply_html(
        reply, image_hosts=["IMG.example"])
    assert "<img" in reply_html(reply, image_hosts="img.example")
    assert "<img" not in reply_html(reply, image_hosts=["other.example"])


@pytest.mark.parametrize("url", [
    "https://img.example@evil.example/c.png",
    "https://evil.example/img.example/c.png",
    "https://img.example.evil.example/c.png",
    "ftp://img.example/c.png",
    "//img.example/c.png",
])
def test_image_hosts_match_the_real_host(url: str) -> None:
    for reply in (f"![x]({url})", f'<img src="{url}">'):
        out = reply_html(reply, allow_html=True, image_hosts=["img.example"])
        assert problems(out, {"img.example"}, allow_html=True) == []
        assert "src=" not in out


def test_math_stays_text_for_mathjax() -> None:
    out = reply_html("Area $\\pi r^2$, *em*, $a<b$ and\n\n$$\n\\sum_i x_i\n$$\n")
    assert "$\\pi r^2$" in out and "<em>em</em>" in out and "$a&lt;b$" in out
    assert "<div>$$\n\\sum_i x_i\n$$</div>" in out
    assert "\\begin{align} a &amp;= b \\end{align}" in reply_html(
        "\\begin{align} a &= b \\end{align}")


def test_math_with_a_risky_macro_is_shown_as_code() -> None:
    out = reply_html("see $\\href{javascript:alert(1)}{x}$ and $y$")
    assert "<code>$\\href{javascript:alert(1)}{x}$</code> and $y$" in out
    # Text MathJax would read as math though markdown-it did not: only the word moves.
    assert "\\(<code>\\class</code>{a}{b}\\)" in reply_html("\\\\(\\class{a}{b}\\\\)")
    assert "<code>\\href" in reply_html("&#36;&#92;href{javascript:x}{y}&#36;")


def test_code_is_highlighted_with_theme_colours() -> None:
    out = reply_html("```python\nimport os  # hi $x$\n```\n")
    assert out.startswith('<div class="yagpt-rendered"><style>')
    assert (
        f'<pre class="highlight" style="{CODE_BOX}"><code style="{CODE_CLEAR}">'
        '<span class="kn">import</span>'
    ) in out
    assert "var(--jp-mirror-editor-keyword-color)" in out
    plain = reply_html("```nosuchlanguage\n<b>x</b>\n```")
    assert "<pre><code>&lt;b&gt;x&lt;/b&gt;\n</code></pre>" in plain and "<style>" not in plain


def test_tables_keep_their_alignment() -> None:
    out = reply_html("| a | b |\n|:-|-:|\n| 1 | *2* |")
    assert '<th style="text-align:left">a</th>' in out
    assert '<td style="text-align:right"><em>2</em></td>' in out


def test_bundle_is_html_and_the_exact_text() -> None:
    reply = "Hi <b>*there*</b>\r\n"
    assert reply_bundle(reply) == {"text/html": reply_html(reply), "text/plain": reply}
    assert "text/markdown" not in reply_bundle(reply)


def test_reply_view_and_table_bundles_are_html() -> None:
    view = ReplyView(text="**hi** <script>x</script>", interrupted=True)
    data, _ = view._repr_mimebundle_()
    assert set(data) == {"text/plain", "text/html"}
    assert "<strong>hi</strong>" in data["text/html"] and "<script>" not in data["text/html"]
    assert "<p><em>⚠ Interrupted" in data["text/html"]
    waiting = ReplyView(waiting="Waiting for <model>…")._repr_mimebundle_()[0]
    assert waiting["text/html"] == "<p><em>Waiting for &lt;model&gt;…</em></p>"
    table = Table(("n", "reply"), [(1, "*hi* <b>x</b> $\\href{j}{x}$")], "T <i>", ("reply",))
    html = table._repr_mimebundle_()["text/html"]
    assert "<em>hi</em> &lt;b&gt;x&lt;/b&gt;" in html and "<strong>T &lt;i&gt;</strong>" in html
    assert problems(html) == []
    assert text_html("$\\style{x}{y}$ <i>") == "$<code>\\style</code>{x}{y}$ &lt;i&gt;"
    assert problems(inline_html("![i](https://x.example/i.png) [a](javascript:x)")) == []


def test_line_endings_and_nul() -> None:
    assert reply_html("a\r\nb\rc\0") == '<div class="yagpt-rendered"><p>a\nb\nc\ufffd</p>\n</div>'


# -- properties -------------------------------------------------------------------------

MARKUP_ALPHABET = st.sampled_from(
    list("<>/![]()`$\\\"'=:*_#|-~&;@{}\n \t") + [
        "img", "script", "onerror", "javascript", "https://", "www.", "a", "b", "x", "1",
        "\\(", "\\[", "\\begin{a}", "```", "    ", "> ", "- ", "&#x61;", "&#92;", "&#36;",
        "data:", "\\href", "\\style", "\\class", "\\unicode", "\\require", "\\bbox", "svg",
        "math", "onload", "<a href=", "<img src=", "127.0.0.1", "\r\n", "| --- |",
    ]
)


@settings(max_examples=600, deadline=None)
@given(st.lists(MARKUP_ALPHABET, max_size=40).map("".join))
def test_any_markup_renders_to_allowlisted_html(text: str) -> None:
    assert problems(reply_html(text)) == []
    assert problems(reply_html(text, allow_html=True), allow_html=True) == []
    assert problems(inline_html(text)) == problems(text_html(text)) == []


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=120))
def test_any_unicode_text_renders_to_allowlisted_html(text: str) -> None:
    assert problems(reply_html(text)) == []


PLAIN = st.text(st.sampled_from(list("abc XYZ.,;:!?()'\"%/\nжё1")), max_size=80)


@settings(max_examples=400, deadline=None)
@given(PLAIN)
def test_plain_text_fast_path_matches_markdown_it(text: str) -> None:
    source = text.replace("\r\n", "\n")
    if _MARKUP.search(source) is None:
        body = reply_html(text)[len('<div class="yagpt-rendered">') : -len("</div>")]
        assert body == _markdown(False).render(source, {"image_hosts": frozenset()})
