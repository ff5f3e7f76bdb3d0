"""The project's exceptions, and how each one reads to a notebook user.

Every error a user can meet is a ``ChatError``: one or two lines that say what went
wrong and what to do next. The magics turn them into ``UsageError`` (no traceback)
unless ``verbose_errors`` is on. A service's status becomes a ``ServiceError`` in
``service/failures.py``; this module only says what each kind of failure is.
"""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Iterable
from functools import lru_cache
from typing import Any, Literal


class ChatError(Exception):
    """Base class: a short, user-facing message."""


class UsageProblem(ChatError):
    """Bad input from the user (flags, empty cell, unknown thread); nothing was sent."""


class ConfigProblem(ChatError):
    """Missing or invalid configuration (credentials, folder); nothing was sent."""


class ContextTooLong(ChatError):
    """The new message cannot fit the context window even on its own."""


def sendable(text: str, what: str) -> str:
    """``text``, or a one-line ``UsageProblem`` if it cannot go out as UTF-8.

    A lone surrogate (from a file read with ``surrogateescape``, a broken API) has no
    UTF-8 form, so gRPC would fail deep inside with a traceback; say which and where.
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as err:
        raise UsageProblem(
            f"{what} holds a character that cannot be sent ({text[err.start]!r}, an unpaired "
            f"surrogate, at character {err.start}); nothing was sent. Clean the text, e.g. "
            "text.encode('utf-8', 'replace').decode()."
        ) from None
    return text


#: What a service failure means, whichever API reported it (``service/failures.py``
#: reads each status into one): bulk work decides by it whether to retry a row, give up
#: on that row, or stop the whole job.
FailureKind = Literal[
    "auth", "permission", "quota", "too_large", "context_overflow", "unknown_model",
    "invalid", "not_found", "unreachable", "unimplemented", "timeout", "cancelled",
    "client", "failed",
]  # fmt: skip


class ServiceError(ChatError):
    """The service refused or failed the request; the thread is unchanged.

    ``code`` is the status as the service named it (a gRPC status name); ``kind`` is
    what it means, the same for every API.
    """

    def __init__(self, message: str, *, code: str = "", kind: FailureKind = "failed",
                 facts: dict[str, int] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.kind: FailureKind = kind
        #: Numbers the cause gave (``limit``, ``got`` of a token limit), for callers that
        #: know more than the message can (whose request it was).
        self.facts = facts or {}


class ContentFiltered(ChatError):
    """The model's answer was withheld by the content filter; nothing was committed."""


class Interrupted(ChatError):
    """The user stopped the reply; nothing was committed."""


class TranscriptError(ChatError):
    """A transcript file could not be read or written; no thread was changed."""


class RecordingFailed(ChatError):
    """The turn was committed, but writing it to the recording failed.

    It carries the ``answer`` so the reply is still shown as the committed turn it is.
    """

    def __init__(self, message: str, answer: Any) -> None:
        super().__init__(message)
        self.answer = answer


class InvalidReply(ChatError):
    """A structured reply did not parse or validate against its schema; nothing was committed."""


class ReplayMiss(ChatError):
    """Replay mode met a request that the transcript does not hold."""


class ScrubbedCause(Exception):
    """The original failure's traceback as text, with every secret removed.

    With ``verbose_errors`` the user sees the full chain; the raw gRPC error would
    carry server details verbatim, which may echo the credential back.
    """


def scrubbed_cause(err: BaseException, secrets: Iterable[str]) -> ScrubbedCause:
    import traceback

    text = "".join(traceback.format_exception(type(err), err, err.__traceback__))
    return ScrubbedCause(scrub(text, secrets))


def mask_arguments(message: str, flags: Iterable[str] = ()) -> str:
    """argparse's "unrecognized arguments: ..." without the values, which may be a key.

    A key typed as a flag (``--api-key AQVN...``) must not be echoed into an error
    output that is saved with the notebook; flag names are kept so the user sees what
    was wrong, with the nearest known flag (of ``flags``) when a typo is likely.
    """
    head, sep, rest = message.partition("unrecognized arguments:")
    if sep:
        words = rest.split()
        shown = [word if word.startswith("-") else "…" for word in words]
        message = f"{head}{sep} {' '.join(shown)}"
        import difflib  # only on this error path: %load_ext stays lean

        known = [flag for flag in flags if flag.startswith("--")]
        for word in words:
            close = difflib.get_close_matches(word.split("=")[0], known, n=1, cutoff=0.75)
            if word.startswith("--") and close:
                message += f" (did you mean {close[0]}?)"
                break
    return message


def single_dash(words: Iterable[str], flags: Iterable[str]) -> str | None:
    """A long flag written with one dash (``-temperature``), as one line, or None.

    argparse reads ``-temperature`` as ``-t emperature``: the turn would go to a new
    thread "emperature" without a word. The value after it is shown only when it is a
    number (anything else may be a key).
    """
    import difflib

    names = [flag[2:] for flag in flags if flag.startswith("--")]
    words = list(words)
    for at, word in enumerate(words):
        if not word.startswith("-") or word.startswith("--") or len(word) < 4:
            continue
        close = difflib.get_close_matches(word[1:].split("=")[0], names, n=1, cutoff=0.8)
        if not close:
            continue
        value = words[at + 1] if at + 1 < len(words) else ""
        shown = f" {value}" if _number(value) else ""
        return (f"{word} is not a flag: one dash takes one letter, so it reads as "
                f"{word[:2]} {word[2:]!r}; did you mean --{close[0]}{shown}?")
    return None


def _number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def sentence(message: str) -> str:
    """Start a message with a capital where it starts with a word; a path or flag stays as typed."""
    first = message.split(" ", 1)[0].rstrip(":,;.")
    if first.isalpha() and first.islower():
        return message[:1].upper() + message[1:]
    return message


_BEARER = re.compile(r"(?i)\b(api-key|bearer)\s+[^\s\"'`<>]+")
#: Shortest run of a secret's characters that counts as a leak.
_RUN = 8
#: What a server or library may have made of the secret's characters: percent-encoding
#: (``%2D``), JSON escapes (``\\u002D``, ``\\/``), HTML entities, and whitespace (a secret
#: split across lines, ``%0A``), which the view drops.
_ESCAPE = re.compile(
    r"%[0-9A-Fa-f]{2}|\\u[0-9A-Fa-f]{4}|\\[\\/\"]|\\[nrt]|&#[0-9]{1,7};|&#[xX][0-9A-Fa-f]{1,6};"
    r"|&[A-Za-z][A-Za-z0-9]{1,31};|\s+"
)


@lru_cache(maxsize=8)
def _needles(secret: str) -> tuple[int, frozenset[str]]:
    """Every run of ``_RUN`` characters of the secret, reversed, and of its base64 forms.

    Base64 of a text containing the secret depends on where the secret starts (mod 3);
    from the first 3-byte boundary inside it, whole groups encode the same way whatever
    surrounds them, so three "cores" per alphabet cover every alignment.
    """
    raw = "".join(secret.split()).encode()
    forms = [raw.decode(), raw.decode()[::-1]]
    for skip in range(3):
        core = base64.b64encode(raw[skip : skip + (len(raw) - skip) // 3 * 3]).decode()
        forms += [core, core.translate(_URLSAFE)]
    run = min(_RUN, len(forms[0]))
    if run < 4:
        return run, frozenset()
    grams = {form[i : i + run] for form in forms for i in range(len(form) - run + 1)}
    return run, frozenset(grams)


_URLSAFE = str.maketrans("+/", "-_")


def _decoded(token: str) -> str:
    """One escape sequence as the character it stands for ("" for whitespace)."""
    if token[0] == "%":
        return chr(int(token[1:], 16))
    if token[0] == "\\":
        if token[1] == "u":
            return chr(int(token[2:], 16))
        return "" if token[1] in "nrt" else token[1]
    if token[0] == "&":
        return _entity(token) if token[1] == "#" else html.unescape(token)
    return ""


def _entity(token: str) -> str:
    number = int(token[3:-1], 16) if token[2] in "xX" else int(token[2:-1])
    return chr(number) if 0 < number < 0x110000 else token


def _view(text: str) -> tuple[str, list[int], list[int]]:
    """The text with escapes decoded and whitespace dropped, and where each character came from."""
    chars: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    last = 0
    for match in _ESCAPE.finditer(text):
        begin, end = match.span()
        if begin > last:
            chars.append(text[last:begin])
            starts.extend(range(last, begin))
            ends.extend(range(last + 1, begin + 1))
        char = _decoded(match.group())
        if len(char) > 1:  # an entity for several characters, or for none: keep it as is
            chars.append(match.group())
            starts.extend(range(begin, end))
            ends.extend(range(begin + 1, end + 1))
        elif char and not char.isspace():
            chars.append(char)
            starts.append(begin)
            ends.append(end)
        last = end
    chars.append(text[last:])
    starts.extend(range(last, len(text)))
    ends.extend(range(last + 1, len(text) + 1))
    return "".join(chars), starts, ends


#: What code may have made of a secret (a traceback ``%chat explain`` sends, a tool's
#: result): hex of its bytes (any case, maybe ``:``/space separated) and a list of its
#: characters (``str(list(key))``). Each match is decoded and checked as a whole.
_HEX = re.compile(r"[0-9A-Fa-f]{2}(?:[:\s-]?[0-9A-Fa-f]{2}){7,}")
_CHARS = re.compile(r"""(?:['"](?:\\.|[^'"\\])['"]\s*,\s*){7,}['"](?:\\.|[^'"\\])['"]""")
_CHAR = re.compile(r"""['"](\\.|[^'"\\])['"]""")


def _hex_text(match: str) -> list[str]:
    digits = re.sub(r"[:\s-]", "", match)
    return [bytes.fromhex(digits[skip : skip + (len(digits) - skip) // 2 * 2]).decode("latin-1")
            for skip in (0, 1)]


def _encoded(text: str) -> list[tuple[int, int, list[str]]]:
    """Stretches of ``text`` that spell something in hex or as a list of characters, with
    what they spell."""
    found = [(m.start(), m.end(), _hex_text(m.group())) for m in _HEX.finditer(text)]
    found += [(m.start(), m.end(), ["".join(_CHAR.findall(m.group()))])
              for m in _CHARS.finditer(text)]
    return found


def _hits(plain: str, run: int, grams: frozenset[str]) -> list[int]:
    return [i for i in range(len(plain) - run + 1) if plain[i : i + run] in grams]


def scrub(text: str, secrets: Iterable[str]) -> str:
    """Remove every known secret, in any form it may be echoed back, and auth headers.

    A secret counts as leaked where any run of 8 of its characters appears, verbatim or
    reversed, percent-, JSON- or HTML-escaped, split by whitespace, base64-encoded (either
    alphabet, any alignment), hex-encoded or spelled as a list of its characters. The text
    is decoded once into a view that maps back to the original characters; each matched
    stretch becomes ``***`` (a hex run or a list: the whole of it).
    """
    spans: list[tuple[int, int]] = []
    view: tuple[str, list[int], list[int]] | None = None
    encoded: list[tuple[int, int, list[str]]] | None = None
    for secret in secrets:
        if not secret or len(secret) < 4:
            continue
        run, grams = _needles(secret)
        if view is None:
            view, encoded = _view(text), _encoded(text)
        plain, starts, ends = view
        spans += [(starts[i], ends[i + run - 1]) for i in _hits(plain, run, grams)]
        spans += [(start, end) for start, end, spelled in encoded or ()
                  if any(_hits(s, run, grams) for s in spelled)]
    if spans:
        text = _cut(text, spans)
    return _BEARER.sub(lambda m: f"{m.group(1)} ***", text)


def _cut(text: str, spans: list[tuple[int, int]]) -> str:
    """Replace each stretch covered by overlapping or touching spans with one ``***``."""
    spans.sort()
    parts, last = [], 0
    begin, end = spans[0]
    for start, stop in spans[1:]:
        if start <= end:
            end = max(end, stop)
            continue
        parts += [text[last:begin], "***"]
        last, (begin, end) = end, (start, stop)
    parts += [text[last:begin], "***", text[end:]]
    return "".join(parts)
