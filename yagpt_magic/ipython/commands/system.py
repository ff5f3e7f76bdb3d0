"""``%chat system [-t T] TEXT``: set a thread's system prompt (no text clears it).

The text is the rest of the line exactly as typed (an apostrophe needs no quoting; one
pair of surrounding quotes is dropped), and ``-t T`` may stand before or after it. A
prompt with line breaks cannot be typed on a line, so ``--json`` takes a JSON string
instead; saved transcripts use it to stay exact.
"""

from __future__ import annotations

import argparse
import json
import re

from ...core.credentials import refuse_secret
from ...core.errors import UsageProblem
from . import Context, Parser

_THREAD = r"(-t|--thread)\s+(\"[^\"]*\"|'[^']*'|\S+)"
_OPTION = re.compile(rf"\s*(?:{_THREAD}|(--json))(?=\s|$)")
_TRAILING_THREAD = re.compile(rf"(?:^|\s+){_THREAD}\s*$")


def parser() -> Parser:
    """For ``%chat help`` only: the text is parsed by ``parse``, verbatim."""
    parser = Parser("system")
    parser.add_argument("-t", "--thread", metavar="T")
    parser.add_argument("--json", action="store_true", help="TEXT is a JSON string")
    parser.add_argument("text", nargs="?", metavar="TEXT")
    return parser


def parse(rest: str) -> argparse.Namespace:
    """The thread name and the prompt from what follows ``%chat system``."""
    thread, as_json = "default", False
    while match := _OPTION.match(rest):
        if match.group(3):
            as_json = True
        else:
            thread = _unquoted(match.group(2))
        rest = rest[match.end() :]
    trailing = _TRAILING_THREAD.search(rest)
    if trailing is not None:
        thread = _unquoted(trailing.group(2))
        rest = rest[: trailing.start()]
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
    refuse_secret(thread, "-t")
    return argparse.Namespace(thread=thread, text=refuse_secret(text, "%chat system"))


def _unquoted(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value


def run(ctx: Context, args: argparse.Namespace) -> None:
    ctx.session.set_system(args.thread, args.text)
    print(f"System prompt of {args.thread!r} {'set' if args.text else 'cleared'}.")
