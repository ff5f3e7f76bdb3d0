"""Render a reply to sanitized HTML (SPEC 10).

A reply is text the user did not write: prompt injection can make it hold
``<img src=x onerror=...>``, a ``javascript:`` link, or an image whose URL carries the
conversation to another host. Handing it to the front end as ``text/markdown`` lets
the front end's Markdown parser decide what is a link or HTML, and JupyterLab's
(marked) accepts forms a CommonMark-based check rejects. So the extension renders the
reply itself and only ever hands out HTML it has sanitized:

1. markdown-it (CommonMark, GFM tables, strikethrough and bare-URL autolinks) parses
   the reply with raw HTML off (shown as text) unless ``allow_html``. Its link check
   is ours: only ``http``, ``https`` and ``mailto``. Images become a link plus their
   address unless their host is in ``image_hosts``. Fenced code is highlighted by
   Pygments (classes styled from JupyterLab's theme variables; the block's box is
   inline, so it survives Jupyter's sanitizer in an untrusted notebook).
2. Math (``$..$``, ``$$..$$``, ``\\begin{..}``) is written back as escaped text,
   so Jupyter's MathJax typesets it in the page.
3. nh3 (ammonia) cleans the HTML against an allowlist: the tags Markdown makes (and a
   presentational set with ``allow_html``), no event handlers, ``href``/``src`` only
   absolute and of the allowed schemes, classes only Pygments' own.
4. The images a turn sent (SPEC 15) are shown apart from the reply, as thumbnails
   (``thumbnails_html``): an ``<img>`` whose address is the image's own ``data:`` URL,
   and nothing more. Their own cleaner allows only that: ``div``/``img``/``span``, a
   ``src`` that is a base64 PNG, JPEG or WebP data URL, a size of at most
   ``THUMBNAIL`` pixels, and ``alt``/``title`` text. A reply can never add one: its
   cleaner loads no ``data:`` image at all.
5. MathJax in Jupyter loads every TeX package, so ``\\href``, ``\\class``,
   ``\\style``, ``\\unicode``, ``\\require``... could still make links, attributes or
   requests from text that *looks* harmless. MathJax only sees math inside one run of
   text, so each such control word outside code is wrapped in ``<code>`` (math that
   holds one is shown as code): no run of text that reaches MathJax holds one.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from functools import lru_cache
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:  # the libraries are imported lazily so `%load_ext` stays fast
    import nh3
    from markdown_it import MarkdownIt
    from markdown_it.token import Token

    from ..core.images import Image

__all__ = ["inline_html", "reply_bundle", "reply_html", "text_html", "thumbnails_html"]

IMAGE_MARK = "image: "  # an emoji would need a font the page may not have
REL = "noopener noreferrer nofollow"

#: TeX control words that make MathJax emit links, attributes, styles or fetches (the
#: html, unicode, bbox, enclose and require packages, \mmlToken, \ref's links), that
#: change its options (\setOptions), or that could spell any of them (\csname).
_TEX_DANGER = re.compile(
    r"\\(?:href|url|unicode|class|style|cssId|data|html|require|mmlToken|bbox"
    r"|enclose|setOptions|csname|(?:eq)?ref(?![A-Za-z]))"
)

_MARKDOWN_TAGS = {
    "p", "em", "strong", "code", "pre", "a", "ul", "ol", "li", "blockquote",
    "h1", "h2", "h3", "h4", "h5", "h6", "table", "thead", "tbody", "tr", "th", "td",
    "hr", "br", "s", "del", "span", "div",
}  # fmt: skip
_MARKDOWN_ATTRS = {"a": {"href", "title"}, "ol": {"start"}, "th": {"style"}, "td": {"style"}}
# What a user may opt into with allow_html: formatting only. Nothing that runs, fetches
# on its own (no style property that takes url()), submits, or sets ids or names.
_OPT_IN_TAGS = _MARKDOWN_TAGS | {
    "b", "i", "u", "sub", "sup", "small", "big", "mark", "kbd", "samp", "var", "tt",
    "abbr", "cite", "q", "dfn", "ins", "details", "summary", "dl", "dt", "dd",
    "caption", "colgroup", "col", "tfoot", "figure", "figcaption", "center",
}  # fmt: skip
_OPT_IN_ATTRS = {
    "*": {"title", "lang", "dir", "style", "align"},
    "a": {"href"}, "ol": {"start", "type", "reversed"}, "ul": {"type"},
    "td": {"colspan", "rowspan"}, "th": {"colspan", "rowspan"}, "col": {"span"},
    "colgroup": {"span"}, "details": {"open"}, "abbr": {"title"},
}  # fmt: skip
_OPT_IN_STYLES = {
    "color", "background-color", "font-weight", "font-style", "font-size",
    "text-align", "text-decoration", "vertical-align", "white-space",
}  # fmt: skip

# A highlighted block as nh3 leaves it, and with its box. Jupyter drops the <style> of
# an untrusted notebook's output (a transcript, a notebook from someone else) and keeps
# only literal colours inline, so the box is drawn inline in a grey that reads on light
# and dark themes (token colours then come from jupyterlab_pygments' classes); the
# <code> in it is made clear, or Jupyter's own `code` background paints each line over it.
_CODE_BLOCK = '<pre class="highlight"><code>'
_CODE_BLOCK_STYLED = (
    '<pre class="highlight" style="background-color:rgba(128,128,128,0.08);padding:6px 8px">'
    '<code style="background-color:rgba(0,0,0,0)">'
)

# Pygments' token classes, and the theme colour JupyterLab gives each kind of token.
_CODE_COLOURS = {
    "Keyword": "keyword", "Name.Builtin": "builtin", "Name.Function": "def",
    "Name.Class": "def", "Name.Decorator": "meta", "Name.Tag": "tag",
    "Name.Attribute": "attribute", "Literal.String": "string", "Literal.Number": "number",
    "Operator": "operator", "Operator.Word": "keyword", "Comment": "comment",
    "Punctuation": "punctuation", "Name.Variable": "variable-2", "Literal": "atom",
    "Keyword.Constant": "atom", "Generic.Heading": "header", "Error": "error",
}  # fmt: skip

#: Without these a reply is paragraphs of plain text: no inline markup, no HTML, no
#: entity, escape, math or URL, and no line starting a block (list, quote, heading,
#: indented code, table, setext underline).
_MARKUP = re.compile(
    r"[\\`*_\[\]<>&$~|]|://|www\.|@|^[ \t#+=\-\d]|[ \t]$|\t", re.MULTILINE | re.IGNORECASE
)


def reply_bundle(
    text: str, *, allow_html: bool = False, image_hosts: Sequence[str] = ()
) -> dict[str, str]:
    """The reply as a display bundle: sanitized ``text/html`` and the exact text."""
    return {
        "text/html": reply_html(text, allow_html=allow_html, image_hosts=image_hosts),
        "text/plain": text,
    }


def reply_html(text: str, *, allow_html: bool = False, image_hosts: Sequence[str] = ()) -> str:
    """The reply rendered from Markdown and sanitized, safe in any page (SPEC 10).

    Raw HTML is shown as text unless ``allow_html``; links keep only http, https and
    mailto targets; images load only from ``image_hosts``; math stays ``$...$`` text
    for MathJax.
    """
    source = text.replace("\r\n", "\n").replace("\r", "\n").replace("\0", "\ufffd")
    if _MARKUP.search(source) is None:
        body = _paragraphs(source)
    else:
        hosts = _hosts(image_hosts)
        md = _markdown(allow_html)
        rendered = md.render(source, {"image_hosts": hosts})
        body = _defuse_tex(_cleaner(allow_html, hosts).clean(rendered))
        if _CODE_BLOCK in body:
            body = _code_css() + body.replace(_CODE_BLOCK, _CODE_BLOCK_STYLED)
    return f'<div class="yagpt-rendered">{body}</div>'


def inline_html(text: str) -> str:
    """One line of Markdown as sanitized inline HTML (for tables): no raw HTML, no images."""
    line = " ".join(text.splitlines())
    rendered = _markdown(False).renderInline(line, {"image_hosts": frozenset()})
    return _defuse_tex(_cleaner(False, frozenset()).clean(rendered))


def text_html(text: str) -> str:
    """Text shown as it reads, escaped, with no TeX that MathJax could turn into markup."""
    return _defuse_tex(html.escape(text, quote=False))


def _paragraphs(text: str) -> str:
    """What markdown-it makes of text without markup, without parsing it."""
    blocks = [b for b in re.split(r"\n{2,}", text.strip("\n")) if b]
    return "".join(f"<p>{html.escape(b, quote=False)}</p>\n" for b in blocks).replace(
        '"', "&quot;"
    )


# --- links and images -----------------------------------------------------------------


def _hosts(image_hosts: Sequence[str]) -> frozenset[str]:
    if isinstance(image_hosts, str):  # a lone host, not its characters
        image_hosts = (image_hosts,)
    return frozenset(h.strip().lower() for h in image_hosts if h.strip())


def _link_allowed(url: str) -> bool:
    """An absolute http, https or mailto URL, as markdown-it normalised it (or nh3 read it)."""
    return url.lower().startswith(("http://", "https://", "mailto:")) and not any(
        ch <= " " or ch == "\\" for ch in url
    )


_HOST = re.compile(r"[a-z0-9.\-]+(?::\d+)?\Z")


def _image_allowed(url: str, hosts: frozenset[str]) -> bool:
    """True when the image may load: http(s) from a host the user named, nothing else."""
    if not hosts or not _link_allowed(url) or url.lower().startswith("mailto:"):
        return False
    netloc = urlsplit(url).netloc.lower()
    # No user-info or odd characters: "https://ok@evil" must not pass as "ok".
    return _HOST.match(netloc) is not None and netloc.split(":")[0] in hosts


# --- markdown-it ------------------------------------------------------------------------


@lru_cache(maxsize=2)
def _markdown(allow_html: bool) -> MarkdownIt:
    from markdown_it import MarkdownIt
    from mdit_py_plugins.amsmath import amsmath_plugin
    from mdit_py_plugins.dollarmath import dollarmath_plugin
    from mdit_py_plugins.gfm_autolink import gfm_autolink_plugin

    md = MarkdownIt("commonmark", {"html": allow_html, "highlight": _highlight})
    md.enable(["table", "strikethrough"])
    gfm_autolink_plugin(md)
    dollarmath_plugin(md, allow_labels=False, double_inline=True)
    amsmath_plugin(md)
    md.validateLink = _link_allowed  # type: ignore[method-assign]
    md.add_render_rule("image", _render_image)
    md.add_render_rule("math_inline", _math_renderer("$", "$", block=False))
    md.add_render_rule("math_inline_double", _math_renderer("$$", "$$", block=False))
    md.add_render_rule("math_block", _math_renderer("$$", "$$", block=True))
    md.add_render_rule("amsmath", _math_renderer("", "", block=True))
    return md


def _render_image(
    self: Any, tokens: Sequence[Token], idx: int, options: Any, env: dict[str, Any]
) -> str:
    """An image from a named host, or else a link showing its text and its address."""
    token = tokens[idx]
    src = str(token.attrGet("src") or "")
    alt = html.escape(self.renderInlineAsText(token.children or [], options, env))
    title = token.attrGet("title")
    title_attr = f' title="{html.escape(str(title))}"' if title else ""
    if _image_allowed(src, env.get("image_hosts", frozenset())):
        return f'<img src="{html.escape(src)}" alt="{alt}"{title_attr}>'
    address = f"<code>{html.escape(src)}</code>"
    opened = sum(t.type == "link_open" for t in tokens[:idx])
    if opened > sum(t.type == "link_close" for t in tokens[:idx]):  # no link in a link
        return f"{IMAGE_MARK}{alt} {address}"
    return f'<a href="{html.escape(src)}"{title_attr}>{IMAGE_MARK}{alt}</a> {address}'


def _math_renderer(opener: str, closer: str, *, block: bool) -> Any:
    """Math written back as text for MathJax, or as code if it holds a risky control word."""

    def render(
        self: Any, tokens: Sequence[Token], idx: int, options: Any, env: dict[str, Any]
    ) -> str:
        tex = html.escape(opener + tokens[idx].content + closer, quote=False)
        if _TEX_DANGER.search(tex):
            return f"<pre><code>{tex}</code></pre>\n" if block else f"<code>{tex}</code>"
        return f"<div>{tex}</div>\n" if block else tex

    return render


def _highlight(code: str, lang: str, attrs: str) -> str:
    """A fenced block, highlighted by Pygments if it names a language Pygments knows."""
    from pygments import highlight  # type: ignore[import-untyped]
    from pygments.formatters import HtmlFormatter  # type: ignore[import-untyped]

    lexer = _lexer(lang)
    if lexer is None:
        return f"<pre><code>{html.escape(code, quote=False)}</code></pre>"
    spans = highlight(code, lexer, HtmlFormatter(nowrap=True))
    return f'<pre class="highlight"><code>{spans}</code></pre>'


@lru_cache(maxsize=64)
def _lexer(lang: str) -> Any:
    """Pygments' lexer for a fence's language name (finding one costs more than using it)."""
    from pygments.lexers import get_lexer_by_name  # type: ignore[import-untyped]
    from pygments.util import ClassNotFound  # type: ignore[import-untyped]

    try:
        return get_lexer_by_name(lang) if lang else None
    except ClassNotFound:
        return None


@lru_cache(maxsize=1)
def _pygments_classes() -> frozenset[str]:
    from pygments.token import STANDARD_TYPES  # type: ignore[import-untyped]

    return frozenset(name for name in STANDARD_TYPES.values() if name)


@lru_cache(maxsize=1)
def _code_css() -> str:
    """Colours for Pygments' classes from JupyterLab's theme, so light and dark both work."""
    from pygments.token import STANDARD_TYPES  # type: ignore[import-untyped]

    groups: dict[str, list[str]] = {}
    for token, name in STANDARD_TYPES.items():
        kind = token  # a token takes the colour of its closest kind that has one
        while kind is not None and str(kind).removeprefix("Token.") not in _CODE_COLOURS:
            kind = kind.parent
        if name and kind is not None:
            groups.setdefault(_CODE_COLOURS[str(kind).removeprefix("Token.")], []).append(name)
    scope = ".yagpt-rendered .highlight"
    rules = "".join(
        f"{scope} :is({','.join('.' + n for n in names)})"
        f"{{color:var(--jp-mirror-editor-{colour}-color)}}"
        for colour, names in groups.items()
    )
    return f"<style>{rules}{scope} :is(.c,.ch,.cm,.c1,.cs){{font-style:italic}}</style>"


# --- sanitizing -------------------------------------------------------------------------


@lru_cache(maxsize=16)
def _cleaner(allow_html: bool, hosts: frozenset[str]) -> nh3.Cleaner:
    import nh3

    tags = set(_OPT_IN_TAGS if allow_html else _MARKDOWN_TAGS)
    attrs = {k: set(v) for k, v in (_OPT_IN_ATTRS if allow_html else _MARKDOWN_ATTRS).items()}
    if hosts:
        tags.add("img")
        attrs["img"] = {"src", "alt", "title"} | ({"width", "height"} if allow_html else set())

    def check(tag: str, name: str, value: str) -> str | None:
        if name == "href":
            return value if _link_allowed(value) else None
        if name == "src":
            return value if _image_allowed(value, hosts) else None
        return value

    return nh3.Cleaner(
        tags=tags,
        clean_content_tags={"script", "style"},
        attributes=attrs,
        attribute_filter=check,
        link_rel=REL,
        url_schemes={"http", "https", "mailto"},
        url_relative="deny",
        allowed_classes={"span": set(_pygments_classes()), "pre": {"highlight"}},
        filter_style_properties=_OPT_IN_STYLES if allow_html else {"text-align"},
    )


# Tags as ammonia writes them: attribute values always double-quoted, '"' escaped.
_TAG = re.compile(r'<(/?)([a-zA-Z][a-zA-Z0-9]*)(?:[^>"]|"[^"]*")*>')


def _defuse_tex(fragment: str) -> str:
    """Put every risky TeX control word outside code in ``<code>``, out of MathJax's reach."""
    if _TEX_DANGER.search(fragment) is None:
        return fragment
    out: list[str] = []
    in_code = 0
    pos = 0
    for tag in _TAG.finditer(fragment):
        text = fragment[pos : tag.start()]
        out.append(text if in_code else _TEX_DANGER.sub(r"<code>\g<0></code>", text))
        out.append(tag.group(0))
        if tag.group(2).lower() in ("code", "pre"):
            in_code += -1 if tag.group(1) else 1
        pos = tag.end()
    tail = fragment[pos:]
    out.append(tail if in_code else _TEX_DANGER.sub(r"<code>\g<0></code>", tail))
    return "".join(out)


# --- thumbnails of the images a turn sent (SPEC 15) ---------------------------------------

#: The longest side of a thumbnail, in CSS pixels.
THUMBNAIL = 160
_DATA_URL = re.compile(r"data:image/(?:png|jpeg|webp);base64,[A-Za-z0-9+/]*={0,2}\Z")


def thumbnails_html(images: Sequence[Image], *, shown_above: Sequence[str] = ()) -> str:
    """The images sent with a turn, small, as sanitized HTML (their bytes, scaled down).

    An image whose SHA-256 is in ``shown_above`` (a transcript shows each image once) is
    named instead of shown again.
    """
    if not images:
        return ""
    return _thumbnails(tuple((i.sha256, i.name, i.label) for i in images), tuple(shown_above),
                       {i.sha256: i for i in images})


def _thumbnails(keys: tuple[tuple[str, str, str], ...], shown_above: tuple[str, ...],
                images: dict[str, Image]) -> str:
    cached = _THUMBNAILS.get((keys, shown_above))
    if cached is not None:
        return cached
    parts = []
    for sha, name, label in keys:
        title = html.escape(label)
        if sha in shown_above:
            parts.append(f'<span title="{title}">{IMAGE_MARK}{html.escape(name or sha[:12])} '
                         "(shown above)</span>")
            continue
        image = images[sha]
        scale = min(1.0, THUMBNAIL / max(image.width, image.height))
        width, height = max(1, round(image.width * scale)), max(1, round(image.height * scale))
        parts.append(f'<img src="{image.data_url}" alt="{html.escape(name or "image")}" '
                     f'title="{title}" width="{width}" height="{height}">')
    body = _thumbnail_cleaner().clean('<div class="yagpt-images">' + " ".join(parts) + "</div>")
    if len(_THUMBNAILS) >= 8:  # a streaming reply re-renders; its images stay the same
        _THUMBNAILS.clear()
    _THUMBNAILS[(keys, shown_above)] = body
    return body


_THUMBNAILS: dict[tuple[tuple[tuple[str, str, str], ...], tuple[str, ...]], str] = {}


@lru_cache(maxsize=1)
def _thumbnail_cleaner() -> nh3.Cleaner:
    import nh3

    def check(tag: str, name: str, value: str) -> str | None:
        if name == "src":
            return value if tag == "img" and _DATA_URL.match(value) else None
        if name in ("width", "height"):
            return value if value.isdigit() and 0 < int(value) <= THUMBNAIL else None
        return value

    return nh3.Cleaner(
        tags={"div", "img", "span"},
        clean_content_tags={"script", "style"},
        attributes={"img": {"src", "alt", "title", "width", "height"}, "span": {"title"}},
        attribute_filter=check,
        url_schemes={"data"},
        url_relative="deny",
        allowed_classes={"div": {"yagpt-images"}},
        link_rel=None,
    )
