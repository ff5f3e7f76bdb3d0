"""How the emulator counts tokens: a text tokenizer plus the real service's framing.

The real ``TokenizeCompletion`` of the single user message "ping" (recorded in
test_tokenize) is 15 tokens::

    <s> ▁Пользователь : ▁ping [NL] [NL] А сси стент : ▁[ EDIT ORS ] [SEP]

so every request costs ``REQUEST_FRAMING`` = 10 tokens (``<s>`` and the assistant
prompt that ends it) and every message ``MESSAGE_FRAMING`` = 4 (its role label, ``:``
and two ``[NL]``) on top of its text's own tokens. A request's count is therefore
*not* the sum of its messages' counts: a client that fits history into the window
must add the request framing once.

The text tokenizer is not the real vocabulary (that is not public): it cuts about
four characters per token, which puts the recorded chat requests within a few tokens
of the real counts (28, 63, 95 for the 2-, 4- and 6-message chat of test_chat; the
emulator says 31, 65, 98, erring high). "ping" is one token in both, so the framing
of the recorded request is reproduced exactly.

Offered tools cost tokens too (the real service counts about 70 per small tool): the
emulator counts each tool's JSON as one more framed block.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence

__all__ = [
    "MESSAGE_FRAMING",
    "REQUEST_FRAMING",
    "Piece",
    "count_tokens",
    "frame",
    "text_pieces",
    "tokenize_text",
]

#: Tokens every request costs once: ``<s>`` and the assistant prompt ending in ``[SEP]``.
REQUEST_FRAMING = 10
#: Tokens every message costs on top of its text: role label, ``:`` and two ``[NL]``.
MESSAGE_FRAMING = 4

# About four characters per token, like a real BPE vocabulary on prose. Every
# character is matched by one alternative, so the pieces concatenate back to the text
# and each piece is at least one UTF-8 byte.
_TOKEN_RE = re.compile(r"\s?\w{1,4}|\s?[^\w\s]|\s+")

#: A token as TokenizeCompletion shows it: (text, special, id).
Piece = tuple[str, bool, int]

# Ids the real vocabulary gave the recorded tokens; the rest get stable made-up ids.
_KNOWN_IDS = {
    "<s>": 1,
    "[NL]": 3,
    "[SEP]": 4,
    "▁Пользователь": 16861,
    ":": 125851,
    "▁ping": 45533,
    "А": 125904,
    "сси": 845,
    "стент": 57590,
    "▁[": 502,
    "EDIT": 32166,
    "ORS": 20386,
    "]": 125895,
}
_VOCABULARY = 128000

# One token per role label, as "▁Пользователь" is for the user.
_ROLE_LABELS = {
    "user": "▁Пользователь",
    "assistant": "▁Ассистент",
    "system": "▁Система",
    "tools": "▁Инструменты",
}

# The assistant prompt every request ends with, as recorded.
_SUFFIX = ("А", "сси", "стент", ":", "▁[", "EDIT", "ORS", "]")


def tokenize_text(text: str) -> list[str]:
    """Split a text into the emulator's tokens; ``"".join(tokens) == text``."""
    return _TOKEN_RE.findall(text)


def count_tokens(
    messages: Sequence[tuple[str, str]],
    tools: Sequence[str] = (),
    *,
    request_framing: int = REQUEST_FRAMING,
    message_framing: int = MESSAGE_FRAMING,
) -> int:
    """The input token count of a request: framing plus every message's text tokens.

    ``tools`` are the offered tools as JSON texts. Equal to ``len(frame(...))`` with the
    default framing, which is YandexGPT's; the open models of the OpenAI-compatible API
    frame differently (see :class:`.catalogue.ChatModel`).
    """
    blocks = [text for _role, text in messages] + list(tools)
    return request_framing + sum(message_framing + len(tokenize_text(t)) for t in blocks)


def _token_id(piece: str) -> int:
    """The recorded id, or a stable one (crc32) so answers agree across processes."""
    known = _KNOWN_IDS.get(piece)
    if known is not None:
        return known
    return 5 + zlib.crc32(piece.encode("utf-8")) % (_VOCABULARY - 5)


def _piece(text: str, special: bool = False) -> Piece:
    return (text, special, _token_id(text))


def text_pieces(text: str) -> list[Piece]:
    """A text's tokens shown SentencePiece-style: ``▁`` for a space, ``[NL]`` for a newline."""
    pieces: list[Piece] = []
    for i, token in enumerate(tokenize_text(text)):
        if "\n" in token:
            pieces.append(_piece("[NL]", True))
            continue
        shown = token.replace(" ", "▁")
        if i == 0 and not shown.startswith("▁"):
            shown = "▁" + shown  # the space after "Role:" joins the first token
        pieces.append(_piece(shown))
    return pieces


def frame(messages: Sequence[tuple[str, str]], tools: Sequence[str] = ()) -> list[Piece]:
    """The request's tokens as TokenizeCompletion lists them (see the module docstring)."""
    pieces = [_piece("<s>", True)]
    blocks = [("tools", text) for text in tools] + list(messages)
    for role, text in blocks:
        pieces.append(_piece(_ROLE_LABELS.get(role, "▁" + role)))
        pieces.append(_piece(":"))
        pieces.extend(text_pieces(text))
        pieces.extend([_piece("[NL]", True), _piece("[NL]", True)])
    pieces.extend(_piece(t) for t in _SUFFIX)
    pieces.append(_piece("[SEP]", True))
    return pieces
