"""Make reply text safe to display (SPEC 10).

A reply is text the user did not write: prompt injection can make it hold
`<img src=x onerror=...>`, a `javascript:` link, or an image whose URL carries the
conversation to another host.  Jupyter renders live `text/markdown` output (and
ipywidgets HTML) without sanitising, so the text is rewritten *before* display.

`safe_markdown` returns Markdown source and leaves every byte alone except the
constructs it neutralises, so Jupyter's own renderer still does formatting, code
highlighting and MathJax.  It works the way Jupyter reads the source:

1. Math is found exactly as JupyterLab's ``removeMath`` (rendermime ``latex.ts``)
   finds it and replaced by ``@@n@@`` placeholders, because that is the text
   ``marked`` parses.  Math is later put back into the HTML *unescaped for quotes*,
   so math that lands inside an attribute (a link's href or title, an image's alt,
   a code fence's language, a bare URL) could inject attributes; those cases are
   neutralised too.
2. markdown-it (CommonMark + tables + strikethrough, raw HTML on) parses that text.
   Wrapped inline rules record where code spans, links, images, autolinks and raw
   HTML start and end, and the positions are mapped back to the reply.
3. Every ``<`` that could open a tag, comment or autolink is written ``&lt;``
   outside code and math; links and images with a forbidden target get their
   brackets written as ``&#91;``/``&#93;``; images become links.  Entities (rather
   than backslashes) are used because they cannot pair with a neighbouring
   backslash and are not math delimiters for ``removeMath``.
4. Edits can change the parse (freeing a backtick that was inside a tag, say), so
   steps 1-3 repeat until nothing changes.  The result is then rendered both ways
   (with and without math protection) and the HTML checked against a whitelist;
   if that ever fails the whole reply is shown as a plain code block.

Trade-off inside math: ``<`` followed by something that reads as a tag or
autolink (``$a<b>c$``) gets a space after it (``$a< b>c$``), so a renderer without
math support never sees markup.  TeX ignores spaces in math mode, so MathJax draws
the same thing; a benign ``$a<b$`` is left untouched.
"""

from __future__ import annotations

import html as _html
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from html.parser import HTMLParser
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

if TYPE_CHECKING:  # markdown-it is imported lazily so `%load_ext` stays fast
    from markdown_it import MarkdownIt
    from markdown_it.token import Token

__all__ = ["safe_html", "safe_markdown"]

_IMAGE_MARK = "\N{FRAME WITH PICTURE} "
_MAX_ROUNDS = 64

# JavaScript's `\s` (what removeMath's regex means), not Python's.
_JS_WS = "\t\n\x0b\x0c\r \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
_JS_EOL = "\n\r\u2028\u2029"
_JS_WS_CHARS = frozenset("\t\n\x0b\x0c\r \u00a0\u1680\u2028\u2029\u202f\u205f\u3000\ufeff") | {
    chr(c) for c in range(0x2000, 0x200B)
}
_MATHSPLIT = re.compile(
    r"(\$\$?|\\(?:begin|end)\{[a-zA-Z]*\*?\}|\\[{}$]|[{}]|(?:\n[" + _JS_WS + r"]*)+"
    r"|@@\d+@@|\\\\(?:\(|\)|\[|\]))",
    re.ASCII | re.IGNORECASE,
)
_BOL = rf"(?:\A|(?<=[{_JS_EOL}]))"
_EOL = rf"(?=[{_JS_EOL}]|\Z)"
_STOPS_URL = _JS_WS_CHARS | {"<"}
_JUPYTER_FENCE = re.compile(
    _BOL + r"(?P<f>`{3,}|~{3,})[^`\n]*\n[\s\S]*?" + _BOL + r"(?P=f)`*" + _EOL
)
_JUPYTER_CODESPAN = re.compile(r"(?:" + _BOL + r"|[^\\])(`+)([^\n]*?[^`\n])\1(?!`)")
_TWO_LINES = re.compile(rf"\n[^{_JS_EOL}]*\n")
_PLACEHOLDER = re.compile(r"@@\d+@@")

# `<` that a CommonMark/GFM renderer could read as the start of markup.
_TAG_START = re.compile(r"<[A-Za-z/!?]")
# Inside math only what really reads as markup or an autolink is touched.
_MATH_MARKUP = re.compile(
    r"<(?:[A-Za-z][\w:.\-]*(?=[\s/>]|\Z)|/[A-Za-z]|!|\?"
    r"|[A-Za-z][A-Za-z0-9+.\-]{1,31}:[^<>\x00-\x20]*>"
    r"|[A-Za-z0-9.!#$%&'*+/=?^_`{|}~\-]+@[A-Za-z0-9.\-]+>)"
)
# GFM (marked) turns these into links by itself; a placeholder glued to one ends up
# in its href.
_BARE_URL = re.compile(r"(?i)(?:https?|ftp)(:)//|www(\.)")
_FTP = re.compile(r"(?i)ftp(:)//")
_LINK_JUNK = re.compile(r"[\x00-\x20\x7f-\x9f\s\u200b-\u200f\u2028\u2029\u2060\ufeff]+")
_SAFE_NETLOC = re.compile(r"[A-Za-z0-9.\-]+(?::\d+)?\Z")

_MARKDOWN_TAGS = {
    "p", "em", "strong", "code", "pre", "a", "ul", "ol", "li", "blockquote",
    "h1", "h2", "h3", "h4", "h5", "h6", "table", "thead", "tbody", "tr", "th", "td",
    "hr", "br", "del", "s", "img",
}  # fmt: skip
# Presentational HTML a user may opt into with allow_html; nothing that runs,
# fetches on its own, submits, or changes the page around it.
_OPT_IN_TAGS = _MARKDOWN_TAGS | {
    "b", "i", "u", "sub", "sup", "span", "div", "details", "summary", "kbd", "mark",
    "small", "big", "center", "font", "abbr", "cite", "q", "dl", "dt", "dd", "ins",
    "var", "samp", "tt", "caption", "colgroup", "col", "tfoot", "figure",
    "figcaption", "section", "article", "aside", "header", "footer", "nav", "main",
}  # fmt: skip
_ATTRS = {"href", "src", "alt", "title", "class", "start", "align", "style"}
_OPT_IN_ATTRS = _ATTRS | {
    "width", "height", "colspan", "rowspan", "open", "lang", "dir", "color", "size",
    "face", "valign", "border", "cellpadding", "cellspacing", "type", "reversed",
}  # fmt: skip
_TABLE_STYLE = re.compile(r"text-align:(?:left|right|center)\Z")
_EVENT_ATTR = re.compile(r"(?i)(?:^|[\s\"'/=])on[a-z]+\s*=")


def safe_markdown(text: str, *, allow_html: bool = False, image_hosts: Sequence[str] = ()) -> str:
    """Markdown source safe to hand to Jupyter's Markdown renderer.

    Raw HTML is shown as text (unless `allow_html`), links keep only http, https and
    mailto targets, and images load only from `image_hosts`; everything else is
    returned byte for byte (line endings become ``\\n``).
    """
    source = _normalise(text)
    if _plainly_safe(source):
        return source
    hosts = _hosts(image_hosts)
    current = source
    try:
        for _ in range(_MAX_ROUNDS):
            edits = _find_edits(current, allow_html, hosts)
            if not edits:
                break
            current = _apply(current, edits)
        else:
            return _as_code_block(source)
    except _Unplaceable:
        return _as_code_block(source)
    if not _renders_safely(current, allow_html, hosts):
        return _as_code_block(source)
    return current


#: Without these, a text holds no raw HTML (``<``), no link, image or reference syntax
#: (``[ ]``), no entity or escape that could spell one (``& \\``), no math (``$``) and
#: no bare URL (``://``, ``www.``): every construct left is plain formatting.
_MARKUP = re.compile(r"[<\[\]&\\$]|://|www\.", re.IGNORECASE)


def _plainly_safe(text: str) -> bool:
    """Most replies hold no markup at all; they need no parse (it costs ~1 ms per KB)."""
    return _MARKUP.search(text) is None


def safe_html(text: str, *, allow_html: bool = False, image_hosts: Sequence[str] = ()) -> str:
    """Sanitised HTML for places that need HTML, such as an ipywidgets HTML widget.

    Built by markdown-it from `safe_markdown`'s output; math is set aside first and
    put back as escaped text, so MathJax can typeset `$...$` where it runs.
    """
    hosts = _hosts(image_hosts)
    markdown = safe_markdown(text, allow_html=allow_html, image_hosts=hosts)
    masked, math = _remove_math(markdown)
    rendered = _restore_math(_renderer(allow_html).render(masked), math, quote=True)
    if not _html_is_safe(rendered, allow_html, hosts):
        return "<pre><code>" + _html.escape(_normalise(text)) + "</code></pre>\n"
    return rendered


# --- URLs -------------------------------------------------------------------------


def _hosts(image_hosts: Sequence[str]) -> frozenset[str]:
    if isinstance(image_hosts, str):  # a lone host, not its characters
        image_hosts = (image_hosts,)
    return frozenset(h.strip().lower() for h in image_hosts if h.strip())


def _link_allowed(url: str) -> bool:
    """True for absolute http, https and mailto URLs, however the scheme is disguised.

    Every decoding a browser or renderer might apply (entities, percent-escapes) is
    tried, and each form must pass, so `jav&#x61;script:` or `java%09script:` fail.
    """
    forms = {url}
    current = url
    for _ in range(3):
        current = _html.unescape(unquote(current))
        forms.add(current)
    return all(
        _LINK_JUNK.sub("", form).lower().startswith(("http://", "https://", "mailto:"))
        for form in forms
    )


def _image_allowed(url: str, hosts: frozenset[str]) -> bool:
    """True when the image may load: http(s) from a host the user named."""
    if not hosts or not _link_allowed(url):
        return False
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https"):
        return False
    # No user-info or odd characters: "https://ok@evil" must not pass as "ok".
    if not _SAFE_NETLOC.match(parts.netloc):
        return False
    return (parts.hostname or "") in hosts


# --- Jupyter's math ----------------------------------------------------------------


def _normalise(text: str) -> str:
    # markdown-it and removeMath both do this; offsets must agree with them.
    return re.sub(r"\r\n?", "\n", text).replace("\0", "\ufffd")


@dataclass(frozen=True)
class _Span:
    start: int
    end: int
    is_math: bool  # False for a literal "@@n@@" that removeMath also sets aside


def _math_spans(text: str) -> list[_Span]:
    """Where JupyterLab's removeMath finds math (and `@@n@@` markers), as offsets."""
    masked = text
    if "`" in text or "~~~" in text:
        chars = list(text)
        for regex in (_JUPYTER_FENCE, _JUPYTER_CODESPAN):
            for m in regex.finditer("".join(chars)):
                for i in range(m.start(), m.end()):
                    if chars[i] == "$":
                        chars[i] = "\x01"
        masked = "".join(chars)

    # Blocks alternate text / delimiter, as JavaScript's split with a capture group.
    blocks: list[tuple[str, int]] = []
    pos = 0
    for m in _MATHSPLIT.finditer(masked):
        blocks.append((masked[pos : m.start()], pos))
        blocks.append((m.group(0), m.start()))
        pos = m.end()
    blocks.append((masked[pos:], pos))

    spans: list[_Span] = []

    def process(i: int, j: int) -> None:
        spans.append(_Span(blocks[i][1], blocks[j][1] + len(blocks[j][0]), True))

    start: int | None = None
    end: str | None = None
    last: int | None = None
    braces = 0
    i = 1
    while i < len(blocks):
        block = blocks[i][0]
        if block.startswith("@"):
            spans.append(_Span(blocks[i][1], blocks[i][1] + len(block), False))
        elif start is not None:
            if block == end:
                if braces:
                    last = i
                else:
                    process(start, i)
                    start = end = last = None
            elif _TWO_LINES.search(block):
                if last:
                    i = last
                    process(start, i)
                start = end = last = None
                braces = 0
            elif block == "{":
                braces += 1
            elif block == "}" and braces:
                braces -= 1
        elif block in ("$", "$$"):
            start, end, braces = i, block, 0
        elif block in ("\\\\(", "\\\\["):
            start, braces = i, 0
            end = "\\\\)" if block.endswith("(") else "\\\\]"
        elif block[:6] == "\\begin":
            start, end, braces = i, "\\end" + block[6:], 0
        i += 2
    if last and start is not None:
        process(start, last)

    # Markers met inside an open math block end up nested in it; keep outer spans.
    spans.sort(key=lambda s: (s.start, -s.end))
    top: list[_Span] = []
    for span in spans:
        if not top or span.start >= top[-1].end:
            top.append(span)
    return top


def _remove_math(text: str) -> tuple[str, list[str]]:
    """The text marked sees (math as `@@n@@`) and the math, like removeMath."""
    pieces: list[str] = []
    math: list[str] = []
    pos = 0
    for span in _math_spans(text):
        pieces.append(text[pos : span.start])
        pieces.append(f"@@{len(math)}@@")
        math.append(text[span.start : span.end])
        pos = span.end
    pieces.append(text[pos:])
    return "".join(pieces), math


def _restore_math(rendered: str, math: list[str], *, quote: bool) -> str:
    """Put math back the way replaceMath does (`quote=False`) or safely (`True`)."""

    def one(m: re.Match[str]) -> str:
        n = int(m.group(1))
        if n >= len(math):
            return m.group(0)
        escaped = math[n].replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        return escaped.replace('"', "&quot;") if quote else escaped

    return re.sub(r"@@(\d+)@@", one, rendered)


# --- parsing with positions ---------------------------------------------------------


@dataclass
class _Event:
    """An inline construct markdown-it recognised, in its inline-content offsets."""

    kind: str
    start: int
    end: int
    href: str = ""
    title: str = ""
    label: tuple[int, int] = (0, 0)  # the text between the brackets
    angle: int | None = None  # where `<href>` opens, if written that way


@dataclass
class _Recorder:
    events: list[_Event] = field(default_factory=list)
    base: int = 0


_RECORDED = ("link", "image", "autolink", "html_inline", "backticks")


def _recording(kind: str, rule: Callable[[Any, bool], bool]) -> Callable[[Any, bool], bool]:
    """Wrap an inline rule so that, when it matches, where it matched is noted."""

    def wrapped(state: Any, silent: bool) -> bool:
        recorder = state.env.get("_yagpt_recorder")
        if silent or recorder is None:
            return rule(state, silent)
        start, count, base = state.pos, len(state.tokens), recorder.base
        if kind == "image":  # alt text is parsed from a substring
            recorder.base = base + start + 2
        try:
            matched = rule(state, silent)
        finally:
            recorder.base = base
        if matched:
            recorder.events.append(_describe(kind, state, start, count, base))
        return matched

    return wrapped


def _describe(kind: str, state: Any, start: int, count: int, base: int) -> _Event:
    event = _Event(kind, base + start, base + state.pos)
    new = state.tokens[count:]
    for token in new:
        if token.type in ("link_open", "image"):
            event.href = str(token.attrGet("href") or token.attrGet("src") or "")
            event.title = str(token.attrGet("title") or "")
            break
    if kind in ("link", "image"):
        saved = state.pos
        open_at = start if kind == "link" else start + 1
        label_end = state.md.helpers.parseLinkLabel(state, open_at, kind == "link")
        state.pos = saved
        event.label = (base + open_at + 1, base + label_end)
        pos = label_end + 1
        if pos < len(state.src) and state.src[pos] == "(":
            pos += 1
            while pos < len(state.src) and state.src[pos] in " \t\n":
                pos += 1
            if pos < len(state.src) and state.src[pos] == "<":
                event.angle = base + pos
    return event


def _inline_core(state: Any) -> None:
    """markdown-it's core "inline" rule, plus a recorder per inline token."""
    for token in state.tokens:
        if token.type == "inline":
            if token.children is None:
                token.children = []
            recorder = _Recorder()
            token.meta["yagpt_events"] = recorder.events
            state.env["_yagpt_recorder"] = recorder
            state.md.inline.parse(token.content, state.md, state.env, token.children)
    state.env.pop("_yagpt_recorder", None)


@lru_cache(maxsize=1)
def _analyser() -> MarkdownIt:
    """The parser used to find constructs: raw HTML on, every URL accepted."""
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])
    # marked does not filter schemes, so neither may the parser that stands in for it.
    md.validateLink = lambda url: True  # type: ignore[method-assign]
    for rule in md.inline.ruler.__rules__:
        if rule.name in _RECORDED:
            md.inline.ruler.at(rule.name, _recording(rule.name, rule.fn))
    md.core.ruler.at("inline", _inline_core)
    return md


@lru_cache(maxsize=2)
def _renderer(allow_html: bool) -> MarkdownIt:
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark", {"html": allow_html}).enable(["table", "strikethrough"])


def _line_starts(text: str) -> list[int]:
    starts = [0]
    starts.extend(m.end() for m in re.finditer("\n", text))
    return starts


def _content_positions(
    token: Token, parent: Token | None, text: str, starts: list[int], cursor: dict[int, int]
) -> list[int] | None:
    """Offset in `text` of each character of an inline token's content.

    Inline tokens carry no offsets; their content is cut from source lines (minus
    container markers and indentation), so each line is re-found in its source
    line.  None means it could not be placed, and the caller gives up safely.
    """
    content = token.content
    if not content or token.map is None:
        return []
    first_line = token.map[0]

    def line(n: int) -> tuple[int, str]:
        end = starts[n + 1] - 1 if n + 1 < len(starts) else len(text)
        return starts[n], text[starts[n] : end]

    kind = parent.type if parent is not None else ""
    if kind in ("th_open", "td_open") or (kind == "heading_open" and parent.markup[:1] == "#"):
        begin, source = line(first_line)
        from_ = cursor.get(first_line, 0)
        if kind == "heading_open":
            from_ = source.find("#") + len(parent.markup)
        found = source.find(content, from_)
        if found >= 0 and not source[from_:found].strip(" \t|"):
            cursor[first_line] = found + len(content)
            return [begin + found + i for i in range(len(content))]
        positions = []  # an escaped pipe lost its backslash: align char by char
        at = from_
        for ch in content:
            at = source.find(ch, at)
            if at < 0:
                return None
            positions.append(begin + at)
            at += 1
        cursor[first_line] = at
        return positions

    positions: list[int] = []
    for n, piece in enumerate(content.split("\n")):
        if first_line + n >= len(starts):
            return None
        begin, source = line(first_line + n)
        found = source.rfind(piece)
        lead = 0
        if found < 0:  # a tab partly expanded into spaces
            lead = len(piece) - len(piece.lstrip(" "))
            found = source.rfind(piece[lead:])
            if found < 0:
                return None
        positions.extend([begin + found] * lead)
        positions.extend(begin + found + i for i in range(len(piece) - lead))
        positions.append(begin + found + len(piece) - lead)  # the newline
    return positions[: len(content)]


# --- finding what to neutralise ------------------------------------------------------


class _Edits(dict[int, str]):
    """Replacement text for single characters, keyed by offset."""

    def put(self, pos: int, text: str) -> None:
        old = self.get(pos)
        if old is not None and old != text:
            escaped = old.startswith("&") or text.startswith("&")
            if old.startswith(("[", "&#91;")) and text.startswith(("[", "&#91;")):
                # One bracket both neutralised and turned from image into link.
                image = _IMAGE_MARK in old or _IMAGE_MARK in text
                text = ("&#91;" if escaped else "[") + (_IMAGE_MARK if image else "")
            elif escaped:  # neutralising wins
                text = old if old.startswith("&") else text
        self[pos] = text


def _find_edits(text: str, allow_html: bool, hosts: frozenset[str]) -> _Edits:
    """One round: every change `text` still needs, judged as Jupyter will read it."""
    edits = _Edits()
    spans = _math_spans(text)

    # The text marked sees, and where each of its characters came from.
    pieces: list[str] = []
    origin: list[int] = []
    pos = 0
    for n, span in enumerate(spans):
        pieces.append(text[pos : span.start])
        origin.extend(range(pos, span.start))
        placeholder = f"@@{n}@@"
        pieces.append(placeholder)
        origin.extend([span.start] * len(placeholder))
        pos = span.end
    pieces.append(text[pos:])
    origin.extend(range(pos, len(text) + 1))
    jtext = "".join(pieces)
    math_at = bytearray(len(text) + 1)
    for span in spans:
        math_at[span.start : span.end] = b"\x01" * (span.end - span.start)
    in_math = [bool(math_at[o]) for o in origin]
    risky_math: set[int] = set()  # starts of math spans whose quotes must go

    tokens = _analyser().parse(jtext, {})
    starts = _line_starts(jtext)
    code = bytearray(len(text) + 1)
    keep: set[int] = set()
    cursor: dict[int, int] = {}

    def line_range(first: int, stop: int) -> range:
        end = starts[stop] if stop < len(starts) else len(jtext)
        return range(starts[first], end)

    def mark(rng: range | list[int], array: bytearray) -> None:
        for j in rng:
            array[origin[j]] = 1

    parent: Token | None = None
    for token in tokens:
        if token.type in ("fence", "code_block") and token.map:
            mark(line_range(*token.map), code)
            if token.type == "fence":
                for j in line_range(token.map[0], token.map[0] + 1):
                    if in_math[j]:  # math in a fence's language becomes a class attr
                        risky_math.add(origin[j])
        elif token.type == "html_block" and token.map and allow_html:
            if _html_fragment_allowed(token.content, hosts):
                keep.update(origin[j] for j in line_range(*token.map))
        elif token.type == "inline":
            positions = _content_positions(token, parent, jtext, starts, cursor)
            if positions is None:
                raise _Unplaceable
            _inline_edits(
                token.meta.get("yagpt_events", []), positions, jtext, origin, in_math,
                text, edits, code, keep, allow_html, hosts,
            )  # fmt: skip
        parent = token

    # A renderer without math support reads the math as Markdown, links and all.
    plain_math = [bool(b) for b in math_at]
    identity = list(range(len(text) + 1))
    starts, cursor, parent = _line_starts(text), {}, None
    for token in _analyser().parse(text, {}):
        if token.type == "inline":
            positions = _content_positions(token, parent, text, starts, cursor)
            if positions is None:
                raise _Unplaceable
            _inline_edits(
                token.meta.get("yagpt_events", []), positions, text, identity, plain_math,
                text, edits, bytearray(len(text) + 1), set(), allow_html, hosts,
            )  # fmt: skip
        parent = token

    # Math glued to a bare URL lands in the href marked makes of it.
    for j, ch in enumerate(jtext):
        if ch == "@" and in_math[j] and (j == 0 or not in_math[j - 1]):
            run = j
            while run > 0 and jtext[run - 1] not in _STOPS_URL and not code[origin[run - 1]]:
                run -= 1
            for m in _BARE_URL.finditer(jtext, run, j):
                colon = m.start(1) if m.group(1) else m.start(2)
                edits.put(origin[colon], "&#58;" if m.group(1) else "&#46;")
    for m in _FTP.finditer(jtext):
        if not code[origin[m.start(1)]] and not in_math[m.start(1)]:
            edits.put(origin[m.start(1)], "&#58;")

    for span in spans:
        if not span.is_math:
            continue
        for p in range(span.start, span.end):
            if text[p] == "<" and _MATH_MARKUP.match(text, p):
                edits.put(p, "< ")
            elif text[p] == '"' and span.start in risky_math:
                edits.put(p, "&quot;")
    for m in _TAG_START.finditer(text):
        p = m.start()
        if not math_at[p] and not code[p] and p not in keep:
            edits.put(p, "&lt;")
    return edits


class _Unplaceable(Exception):
    """An inline token's content could not be located in the source."""


def _inline_edits(
    events: list[_Event],
    positions: list[int],
    jtext: str,
    origin: list[int],
    in_math: list[bool],
    text: str,
    edits: _Edits,
    code: bytearray,
    keep: set[int],
    allow_html: bool,
    hosts: frozenset[str],
) -> None:
    """Edits for the links, images, autolinks, code spans and HTML of one inline."""

    def where(i: int) -> int:
        return positions[min(i, len(positions) - 1)]

    def has_math(i: int, j: int) -> bool:
        return any(in_math[where(k)] for k in range(i, j))

    atomic: list[tuple[int, int]] = []
    for event in events:
        if event.kind == "backticks":
            for k in range(event.start, event.end):
                code[origin[where(k)]] = 1
            atomic.append((event.start, event.end))
        elif event.kind == "autolink":
            if _link_allowed(event.href) and not has_math(event.start, event.end):
                keep.add(origin[where(event.start)])
                atomic.append((event.start, event.end))
        elif event.kind == "html_inline" and allow_html:
            raw = jtext[where(event.start) : where(event.end - 1) + 1]
            if _html_fragment_allowed(raw, hosts):
                keep.update(origin[where(k)] for k in range(event.start, event.end))

    def inside_atomic(k: int) -> bool:
        return any(a <= k < b for a, b in atomic)

    def neutralise(event: _Event, first: str) -> None:
        for k in range(event.start, event.end):
            j = where(k)
            ch = jtext[j]
            if in_math[j]:
                # Only a renderer without math sees this link; a space after "]"
                # breaks it, and TeX ignores spaces in math.
                if ch == "]" and k == event.label[1]:
                    edits.put(origin[j], "] ")
                continue
            if inside_atomic(k):
                continue
            if k == event.label[0] - 1:
                edits.put(origin[j], first)
            elif ch == "[":
                edits.put(origin[j], "&#91;")
            elif ch == "]":
                edits.put(origin[j], "&#93;")

    for event in events:
        if event.kind not in ("link", "image"):
            continue
        math_in_attr = (
            _PLACEHOLDER.search(event.href) is not None
            or _PLACEHOLDER.search(event.title) is not None
        )
        link_ok = _link_allowed(event.href) and not math_in_attr
        if event.angle is not None and link_ok:
            keep.add(origin[where(event.angle)])
        if event.kind == "link":
            if not link_ok:
                neutralise(event, "&#91;")
            continue
        alt_has_math = has_math(*event.label)
        if _image_allowed(event.href, hosts) and not math_in_attr and not alt_has_math:
            continue
        if in_math[where(event.start)]:
            neutralise(event, "&#91;" + _IMAGE_MARK)
            continue
        edits.put(origin[where(event.start)], "")  # the "!"
        if link_ok:
            edits.put(origin[where(event.start + 1)], "[" + _IMAGE_MARK)
            # SPEC 10: the link shows its address too, as code so it stays inert text.
            last = origin[where(event.end - 1)]
            edits.put(last, text[last] + " " + _code_span(event.href))
        else:
            neutralise(event, "&#91;" + _IMAGE_MARK)


def _code_span(text: str) -> str:
    """``text`` as an inline code span, whatever backticks it holds."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _apply(text: str, edits: dict[int, str]) -> str:
    out: list[str] = []
    last = 0
    for pos in sorted(edits):
        out.append(text[last:pos])
        out.append(edits[pos])
        last = pos + 1
    out.append(text[last:])
    return "".join(out)


def _as_code_block(text: str) -> str:
    """Last resort: the whole reply as a code block, which every renderer shows as is."""
    longest = max((len(m.group(0)) for m in re.finditer("`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}\n{text}\n{fence}\n"


# --- checking HTML ----------------------------------------------------------------------


class _Checker(HTMLParser):
    """Fails on any element, attribute or URL outside the whitelist."""

    def __init__(self, tags: set[str], attrs: set[str], hosts: frozenset[str]) -> None:
        super().__init__(convert_charrefs=True)
        self.tags, self.attrs, self.hosts = tags, attrs, hosts
        self.ok = True

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in self.tags:
            self.ok = False
        if not all(self._attr_ok(tag, name, value or "") for name, value in attrs):
            self.ok = False
        if tag == "img" and not any(n == "src" for n, _ in attrs):
            self.ok = False

    def _attr_ok(self, tag: str, name: str, value: str) -> bool:
        if name not in self.attrs or name.startswith("on"):
            return False
        if name == "href":
            return _link_allowed(value)
        if name == "src":
            return tag == "img" and _image_allowed(value, self.hosts)
        if name == "style":
            return tag in ("th", "td") and _TABLE_STYLE.match(value) is not None
        return True

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)

    def handle_pi(self, data: str) -> None:
        self.ok = False

    def handle_decl(self, decl: str) -> None:
        self.ok = False

    def unknown_decl(self, data: str) -> None:
        self.ok = False


def _check(fragment: str, tags: set[str], attrs: set[str], hosts: frozenset[str]) -> bool:
    checker = _Checker(tags, attrs, hosts)
    checker.feed(fragment)
    # Anything left unparsed is an unfinished tag that would swallow what follows.
    return checker.ok and not checker.rawdata


def _html_fragment_allowed(raw: str, hosts: frozenset[str]) -> bool:
    """Whether raw HTML from a reply may stay live when the user allowed HTML."""
    if _PLACEHOLDER.search(raw) or _EVENT_ATTR.search(raw):
        return False
    return _check(raw, _OPT_IN_TAGS, _OPT_IN_ATTRS, hosts)


def _html_is_safe(rendered: str, allow_html: bool, hosts: frozenset[str]) -> bool:
    if allow_html:
        return _check(rendered, _OPT_IN_TAGS, _OPT_IN_ATTRS, hosts)
    comment = re.search(r"<!--", rendered) is not None
    return not comment and _check(rendered, _MARKDOWN_TAGS, _ATTRS, hosts)


def _renders_safely(markdown: str, allow_html: bool, hosts: frozenset[str]) -> bool:
    """Defence in depth: render as Jupyter would, and without math, and check both."""
    md = _analyser()
    masked, math = _remove_math(markdown)
    as_jupyter = _restore_math(md.render(masked), math, quote=False)
    return _html_is_safe(as_jupyter, allow_html, hosts) and _html_is_safe(
        md.render(markdown), allow_html, hosts
    )
