"""``%chat help``: usage, with examples (also a bare ``%chat``).

Built from the commands themselves: each one's usage comes from its parser and its
summary from the first line of its module docstring, so the two can't drift apart.
"""

from __future__ import annotations

import argparse
import textwrap
from types import ModuleType

from . import Context, Parser

INTRO = """\
yagpt-magic: chat with YandexGPT from a notebook.

{cell}
  <your message>

Re-running a %%chat cell replaces its turn; the model always sees the earlier turns
of the thread, fitted to its context window.
"""

EXAMPLES = """\
Examples:
  %%chat -s "You are a smart assistant"
  Hi! What fields of science did Albert Einstein study?

  %%chat -t sql -m yandexgpt-lite --temperature 0.1 -o query
  Write a SQL query that counts orders per day.

  %%chat --schema Fact -o facts     (Fact: a pydantic model, dataclass or JSON Schema dict)
  List the discoveries in this text with their years: ...

  %chat save review.ipynb
"""


class Help(str):
    """Shown as plain text in both terminal and notebook."""

    def __repr__(self) -> str:
        return str(self)


def summary(command: ModuleType) -> str:
    """The command's one-line summary: its docstring's first line after the usage."""
    first = (command.__doc__ or "").strip().splitlines()[0]
    _, sep, text = first.partition("``: ")
    return (text if sep else first).replace("``", "")


def usage(command: ModuleType) -> str:
    text = command.parser().format_usage().strip()
    return " ".join(text.removeprefix("usage:").split())


def cell_usage(ctx: Context) -> str:
    """``%%chat``'s own usage, from the argument definitions of the cell magic."""
    manager = getattr(ctx.shell, "magics_manager", None)
    magic = manager.magics["cell"].get("chat") if manager is not None else None
    found = getattr(magic, "parser", None)
    if found is None:
        return "%%chat [flags]"
    text = " ".join(found.format_usage().removeprefix("usage:").split()).removeprefix(":: ")
    return textwrap.fill(text.replace("%chat", "%%chat", 1), 88, initial_indent="  ",
                         break_on_hyphens=False,
                         subsequent_indent="         ")


def parser() -> Parser:
    return Parser("help")


def run(ctx: Context, args: argparse.Namespace) -> Help:
    lines = [INTRO.format(cell=cell_usage(ctx)), "Commands:"]
    for name in ctx.commands.names:
        if name == "help":
            continue
        command = ctx.commands.module(name)
        left, right = usage(command), summary(command)
        if len(left) <= 30:
            lines.append(f"  {left:<30}{right}")
        else:
            lines.append(f"  {left}")
            lines.append(f"  {'':<30}{right}")
    return Help("\n".join(lines) + "\n\n" + EXAMPLES)
