"""``%chat`` subcommands: one short module each, dispatched by name through a ``CommandTable``.

Each module has a docstring whose first line is ``USAGE: summary``, a ``parser()``
with its arguments, and ``run(ctx, args)``. A command works with the ``Context``
(the session, the shell it displays through, the live connection), never with the
magics class, so ``%chat help`` is built from the modules themselves.

A command lives in the layer it belongs to: the ones here need only the session and
IPython; ``%chat widget`` is in ``widget/``, ``%chat batch`` in ``bulk/``, and the
transcript commands in ``transcript/commands/``. This layer cannot import those, so
the package root, which knows every layer, hands the magic the whole table.
"""

from __future__ import annotations

import argparse
import importlib
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any, NoReturn

from ...core.credentials import refuse_secret
from ...core.errors import UsageProblem, mask_arguments, single_dash

if TYPE_CHECKING:
    from ...core.session import ChatSession
    from ...service.live import LiveBackends

#: The commands of this layer: name -> module, in the order ``%chat help`` lists them.
OWN = {name: f"{__name__}.{name}" for name in (
    "help", "history", "threads", "system", "undo", "reset", "usage", "config", "models",
    "login", "offline", "code", "explain",
)}  # fmt: skip


class CommandTable:
    """Command name -> the module that runs it, in the order ``%chat help`` lists them.

    Modules are named, not imported: a command's code loads only when it is used, so
    ``%load_ext`` stays cheap.
    """

    def __init__(self, modules: Mapping[str, str]) -> None:
        self.modules = dict(modules)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.modules)

    def module(self, name: str) -> ModuleType:
        """The module of command ``name``, imported on first use."""
        return importlib.import_module(self.modules[name])


@dataclass
class Context:
    """What a command works with: the session, the shell it displays through, the table
    of commands, and the live backends (login, offline) the session returns to.

    ``shell`` is IPython's shell: its user namespace (``%chat restore`` reads
    ``__session__``) and its display machinery. Nothing here reaches the magics.
    """

    session: ChatSession
    shell: Any
    commands: CommandTable
    live: LiveBackends


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


def split(line: str, command: str) -> list[str]:
    try:
        return shlex.split(line)
    except ValueError as err:
        raise UsageProblem(f"%chat {command}: cannot parse the line ({err}).") from None


def parse(command: ModuleType, name: str, rest: str) -> argparse.Namespace:
    """A command's arguments: its own ``parse`` (verbatim text) or its parser over words."""
    custom = getattr(command, "parse", None)
    if custom is not None:
        return custom(rest)  # type: ignore[no-any-return]
    parser = command.parser()
    words = split(rest, name)
    misread = single_dash(words, parser._option_string_actions)
    if misread:
        raise UsageProblem(f"%chat {name}: {misread}")
    args: argparse.Namespace = parser.parse_args(words)
    return args


def dispatch(ctx: Context, line: str) -> Any:
    """Run ``%chat NAME ARGS``; a bare ``%chat`` is ``%chat help``."""
    name, _, rest = line.strip().partition(" ")
    name = name or "help"
    if name not in ctx.commands.modules:
        import difflib  # only on this error path

        refuse_secret(name, "%chat's command")  # an error output is saved with the notebook
        close = difflib.get_close_matches(name, ctx.commands.names, n=1, cutoff=0.75)
        if close:
            raise UsageProblem(f"Unknown command %chat {name}; did you mean %chat {close[0]}?")
        known = ", ".join(sorted(ctx.commands.names))
        raise UsageProblem(f"Unknown command %chat {name}; commands: {known}.")
    command = ctx.commands.module(name)
    return command.run(ctx, parse(command, name, rest))
