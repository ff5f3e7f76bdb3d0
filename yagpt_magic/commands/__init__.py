"""``%chat`` subcommands: one short module each, dispatched by name through ``COMMANDS``."""

from __future__ import annotations

import argparse
import shlex
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NoReturn

from ..errors import UsageProblem, mask_arguments

if TYPE_CHECKING:
    from ..magics import ChatMagics

Command = Callable[["ChatMagics", list[str]], Any]


class Parser(argparse.ArgumentParser):
    """argparse that reports a bad argument as a one-line ``UsageProblem``."""

    def __init__(self, command: str, **kwargs: Any) -> None:
        super().__init__(prog=f"%chat {command}", add_help=False, **kwargs)

    def error(self, message: str) -> NoReturn:
        raise UsageProblem(f"{self.prog}: {mask_arguments(message)}. See %chat help.")


def thread_parser(command: str, *, all_flag: bool = False) -> Parser:
    parser = Parser(command)
    parser.add_argument("-t", "--thread", default="default")
    if all_flag:
        parser.add_argument("--all", action="store_true")
    return parser


def _commands() -> dict[str, Command]:
    from . import (
        config,
        help,
        history,
        live,
        load,
        login,
        models,
        offline,
        record,
        replay,
        reset,
        restore,
        save,
        system,
        threads,
        undo,
        usage,
        widget,
    )

    return {
        "help": help.run,
        "history": history.run,
        "reset": reset.run,
        "undo": undo.run,
        "system": system.run,
        "threads": threads.run,
        "config": config.run,
        "usage": usage.run,
        "login": login.run,
        "models": models.run,
        "offline": offline.run,
        "save": save.run,
        "load": load.run,
        "record": record.run,
        "replay": replay.run,
        "live": live.run,
        "restore": restore.run,
        "widget": widget.run,
    }


#: Commands that take the rest of the line as written (prose with apostrophes, say).
VERBATIM = frozenset({"system"})


def split(line: str, command: str) -> list[str]:
    try:
        return shlex.split(line)
    except ValueError as err:
        raise UsageProblem(f"%chat {command}: cannot parse the line ({err}).") from None


def dispatch(magics: ChatMagics, line: str) -> Any:
    """Run ``%chat NAME ARGS``; a bare ``%chat`` is ``%chat help``."""
    name, _, rest = line.strip().partition(" ")
    name = name or "help"
    commands = _commands()
    command = commands.get(name)
    if command is None:
        known = ", ".join(sorted(commands))
        raise UsageProblem(f"Unknown command %chat {name}; commands: {known}.")
    return command(magics, [rest] if name in VERBATIM else split(rest, name))
