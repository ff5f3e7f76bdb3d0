"""Code in a message's text: where it is, and how to fence some so it stays exact.

``--vars`` and ``--map`` fill ``{name}`` only outside code: fenced blocks and inline
code spans are left exactly as typed, so code, JSON and f-strings in a message
survive; both fillers split a text the same way here. ``fence`` is the other
direction: a block that holds any text exactly (a traceback, a JSON value, a reply).
"""

from __future__ import annotations

import re

#: Fenced blocks and inline code spans.
CODE = re.compile(
    r"^(?P<fence>`{3,}|~{3,})[^\n]*\n.*?^(?P=fence)[ \t]*$"
    r"|(?P<ticks>`+)(?!`).+?(?<!`)(?P=ticks)(?!`)",
    re.M | re.S,
)


def split_code(text: str) -> list[tuple[bool, str]]:
    """``text`` as (is_code, piece) pairs, in order; joined, the pieces are ``text``."""
    parts: list[tuple[bool, str]] = []
    last = 0
    for code in CODE.finditer(text):
        parts += [(False, text[last : code.start()]), (True, code.group(0))]
        last = code.end()
    parts.append((False, text[last:]))
    return parts


def fence(text: str, info: str) -> str:
    """A fenced block that holds ``text`` exactly: its fence outruns every backtick run."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    mark = "`" * max(3, longest + 1)
    return f"{mark}{info}\n{text}\n{mark}" if text else f"{mark}{info}\n{mark}"
