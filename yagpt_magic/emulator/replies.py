"""The emulator's own replies: plainly offline, but shaped like a real answer.

A real YandexGPT answer is Markdown: paragraphs, bold, lists, fenced code when the
question is about code, ``$…$``/``$$…$$`` when it asks for math. The offline reply has
the same shapes, so the rendering, streaming and history a person sees offline are the
ones they will see online, while every reply still says it came from the emulator and
what context it saw (message count and a digest of model and messages). Same request,
same reply.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence

__all__ = ["BANNER", "digest_of", "reply_for", "reply_with_results"]

BANNER = "*(offline emulator — no model was called)*"

_FILLERS = (
    "A real model would answer the question itself; this text only proves the round trip worked.",
    "Point the session at Yandex Cloud to get a real answer.",
    "The same conversation always gets this same reply, so tests can rely on it.",
    "Streaming, token counts and history behave as they would against the service.",
)

_CODE_RE = re.compile(
    r"```|\b(code|python|function|script|program|snippet|implement|class|def|sql|regex|bash|"
    r"javascript|typescript|pandas|numpy)\b|\bкод|функци|скрипт|программ",
    re.IGNORECASE,
)
_MATH_RE = re.compile(
    r"\$|\b(math|formula|formulas|equation|integral|derivative|theorem|proof|solve|latex)\b"
    r"|формул|уравнен|интеграл|производн|теорем|математ",
    re.IGNORECASE,
)
_LANGUAGES = (("sql", "sql"), ("bash", "bash"), ("javascript", "javascript"),
              ("typescript", "typescript"))


def digest_of(model_uri: str, messages: Sequence[tuple[str, str]]) -> str:
    """Eight hex digits naming the model and the exact messages a reply saw."""
    payload = json.dumps([model_uri, [list(m) for m in messages]], ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:8]


def _model_label(model_uri: str) -> str:
    """``gpt://folder/yandexgpt/latest`` -> ``yandexgpt/latest``."""
    _scheme, _, rest = model_uri.partition("://")
    parts = rest.split("/", 1)
    return parts[1] if len(parts) == 2 else model_uri


def _last_user(messages: Sequence[tuple[str, str]]) -> tuple[int, str]:
    """1-based index and text of the last user message (or of the last message)."""
    for i in range(len(messages), 0, -1):
        if messages[i - 1][0] == "user":
            return i, messages[i - 1][1]
    return len(messages), messages[-1][1] if messages else ""


def _first_line(text: str) -> str:
    stripped = text.strip()
    line = stripped.splitlines()[0] if stripped else ""
    return line[:79] + "…" if len(line) > 80 else line


def _opening(model_uri: str, messages: Sequence[tuple[str, str]], what: str) -> list[str]:
    digest = digest_of(model_uri, messages)
    index, text = _last_user(messages)
    count = len(messages)
    plural = "" if count == 1 else "s"
    filler = _FILLERS[int(digest, 16) % len(_FILLERS)]
    return [
        f"{BANNER} {what} {index}: “{_first_line(text)}”.",
        f"This stand-in answer from `{_model_label(model_uri)}` saw {count} message{plural} "
        f"of context (digest {digest}). {filler}",
    ]


def _code_block(text: str, digest: str) -> str:
    lowered = text.lower()
    language = next((lang for word, lang in _LANGUAGES if word in lowered), "python")
    if language == "sql":
        body = f"-- offline emulator: a stand-in query (digest {digest})\nSELECT 1 AS answer;"
    elif language == "bash":
        body = f"# offline emulator: a stand-in command (digest {digest})\necho \"offline\""
    elif language in ("javascript", "typescript"):
        body = (f"// offline emulator: a stand-in snippet (digest {digest})\n"
                "function answer(question) {\n  return `offline reply to ${question}`;\n}")
    else:
        body = (
            f"# offline emulator: a stand-in snippet, not an answer (digest {digest})\n"
            "def answer(question: str) -> str:\n"
            '    """Connect to Yandex Cloud and re-run the cell for real code."""\n'
            '    return f"offline reply to {question!r}"'
        )
    return f"A real answer would show code here; this block only shows how one renders:\n\n" \
           f"```{language}\n{body}\n```"


_MATH = (
    "A real answer would write the math out; this is how it renders. Inline, "
    "$a^2 + b^2 = c^2$, and displayed:\n\n"
    "$$\\sum_{k=1}^{n} k = \\frac{n(n+1)}{2}$$"
)


def reply_for(model_uri: str, messages: Sequence[tuple[str, str]]) -> str:
    """The deterministic offline reply: depends only on the model and the messages."""
    digest = digest_of(model_uri, messages)
    _index, text = _last_user(messages)
    opening = _opening(model_uri, messages, "Reply to message")
    earlier = max(len(messages) - 1, 0)
    has_system = any(role == "system" for role, _ in messages)
    context = (
        "- answer the message on its own: there is nothing earlier in the thread;"
        if earlier == 0
        else f"- answer the last message, using the {earlier} earlier message"
        f"{'' if earlier == 1 else 's'} of the thread;"
    )
    points = [
        "**What a real answer would do here:**",
        context,
        "- follow the system prompt;" if has_system else "- reply in the language of the question;",
        "- stream the answer in pieces, as this one was.",
    ]
    blocks = [*opening, "\n".join(points)]
    if _CODE_RE.search(text):
        blocks.append(_code_block(text, digest))
    if _MATH_RE.search(text):
        blocks.append(_MATH)
    return "\n\n".join(blocks)


def reply_with_results(
    model_uri: str, messages: Sequence[tuple[str, str]], results: Sequence[tuple[str, str]]
) -> str:
    """The answer once tool results came back: it quotes every result it was given."""
    opening = _opening(model_uri, messages, "Answer from the tool results for message")
    lines = [f"- `{name}` returned `{content}`" for name, content in results]
    return "\n\n".join([opening[0], "\n".join(lines), opening[1]])
