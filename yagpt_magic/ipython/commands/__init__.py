"""``%chat`` subcommands: one short module each, dispatched by name through ``COMMANDS``.

Each module has a docstring whose first line is ``USAGE: summary``, a ``parser()``
with its arguments, and ``run(ctx, args)``. A command works with the ``Context``
(the session, and the shell it displays through), never with the magics class, so
``%chat help`` is built from the modules themselves.
"""

from __future__ import annotations

import argparse
import importlib
import shlex
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any, NoReturn

from ...core.credentials import refuse_secret
from ...core.errors import UsageProblem, mask_arguments

if TYPE_CHECKING:
    from ...core.session import ChatSession

#: Command name -> module, in the order ``%chat help`` lists them.
COMMANDS: tuple[str, ...] = (
    "help", "history", "threads", "system", "undo", "reset", "usage", "config", "models",
    "login", "offline", "save", "load", "record", "replay", "live", "restore", "widget",
    "code", "explain", "batch", "cache",
)  # fmt: skip


@dataclass
class Context:
    """What a command works with: the session, and the shell it displays through.

    ``shell`` is IPython's shell: its user namespace (``%chat restore`` reads
    ``__session__``) and its display machinery. Nothing here reaches the magics.
    """

    session: ChatSession
    shell: Any


class Parser(argparse.ArgumentParser):
    """argparse that reports a bad argument as a one-line ``UsageProblem``."""

    def __init__(self, command: str, **kwargs: Any) -> None:
        super().__init__(prog=f"%chat {command}", add_help=False, **kwargs)

    def error(self, message: str) -> NoReturn:
        masked = mask_arguments(message, self._option_string_actions)
        raise UsageProblem(f"{self.prog}: {masked}. See %chat help.")


def thread_name(value: str) -> str:
    """A ``-t`` value: any name, but never one shaped like a credential (it is saved)."""
    return refuse_secret(value, "-t")


def thread_parser(command: str, *, all_flag: bool = False) -> Parser:
    parser = Parser(command)
    parser.add_argument("-t", "--thread", default="default", metavar="T", type=thread_name,
                        help="the thread (default: default)")
    if all_flag:
        parser.add_argument("--all", action="store_true", help="every thread")
    return parser


def module(name: str) -> ModuleType:
    """The module of command ``name``; a command's code loads only when it is used."""
    return importlib.import_module(f"{__name__}.{name}")


def split(line: str, command: str) -> list[str]:
    try:
        return shlex.split(line)
    except ValueError as err:
        raise UsageProblem(f"%chat {command}: cannot parse the line ({err}).") from None


def parse(name: str, rest: str) -> argparse.Namespace:
    """A command's arguments: its own ``parse`` (verbatim text) or its parser over words."""
    command = module(name)
    custom = getattr(command, "parse", None)
    args: argparse.Namespace = (
        custom(rest) if custom is not None else command.parser().parse_args(split(rest, name))
    )
    return args


def dispatch(ctx: Context, line: str) -> Any:
    """Run ``%chat NAME ARGS``; a bare ``%chat`` is ``%chat help``."""
    name, _, rest = line.strip().partition(" ")
    name = name or "help"
    if name not in COMMANDS:
        known = ", ".join(sorted(COMMANDS))
        raise UsageProblem(f"Unknown command %chat {name}; commands: {known}.")
    return module(name).run(ctx, parse(name, rest))
