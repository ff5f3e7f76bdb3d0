"""``%chat system [-t T] [--json] TEXT``: set a thread's system prompt; no text clears it.

The text is the rest of the line exactly as typed (an apostrophe needs no quoting; one
pair of surrounding quotes is dropped). A prompt with line breaks cannot be typed on a
line, so ``--json`` takes a JSON string instead; saved transcripts use it to stay exact.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING

from ..errors import UsageProblem

if TYPE_CHECKING:
    from ..magics import ChatMagics

_OPTION = re.compile(r"\s*(?:(-t|--thread)\s+(\"[^\"]*\"|'[^']*'|\S+)|(--json))(?=\s|$)")


def parse(rest: str) -> tuple[str, str]:
    """The thread name and the prompt from what follows ``%chat system``."""
    thread, as_json = "default", False
    while match := _OPTION.match(rest):
        if match.group(3):
            as_json = True
        else:
            thread = _unquoted(match.group(2))
        rest = rest[match.end() :]
    text = _unquoted(rest.strip())
    if text.startswith("-") and not as_json:
        raise UsageProblem(
            f"%chat system: unknown option {text.split()[0]!r}; a prompt that starts with "
            "'-' is given as a JSON string with --json. See %chat help."
        )
    if as_json:
        try:
            text = json.loads(rest)
        except ValueError as err:
            raise UsageProblem(f"%chat system --json: not a JSON string ({err}).") from None
        if not isinstance(text, str):
            raise UsageProblem("%chat system --json: the value must be a JSON string.")
    return thread, text


def _unquoted(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value


def line_for(thread: str, text: str) -> str:
    """A ``%chat system`` line that sets exactly ``text`` (used by saved transcripts)."""
    name = thread if re.fullmatch(r"[^\s'\"]+", thread) else json.dumps(thread)
    plain = text.splitlines() == [text] and text == text.strip() and text[0] not in "'\"-"
    if plain:
        return f"%chat system -t {name} {text}"
    return f"%chat system -t {name} --json {json.dumps(text, ensure_ascii=False)}"


def run(magics: ChatMagics, argv: list[str]) -> None:
    thread, text = parse(argv[0])
    magics.session.set_system(thread, text)
    print(f"System prompt of {thread!r} {'set' if text else 'cleared'}.")
