"""``%chat widget [-t T]``: a chat box on a thread, shared live with ``%%chat`` (notebooks)."""

from __future__ import annotations

import argparse
import sys

from ..core.errors import UsageProblem
from ..ipython.commands import Context, Parser, thread_parser


def parser() -> Parser:
    return thread_parser("widget")


def run(ctx: Context, args: argparse.Namespace) -> None:
    # Displayed rather than returned, so it shows even when not the cell's last line.
    from IPython.display import display

    from .chat import ChatWidget

    # A terminal would print the widget's repr: say what to use instead, in one line.
    terminal = sys.modules.get("IPython.terminal.interactiveshell")
    if terminal is not None and isinstance(ctx.shell, terminal.TerminalInteractiveShell):
        raise UsageProblem(
            "%chat widget needs a notebook front end (JupyterLab, Notebook 7, VS Code); "
            "in a terminal use %%chat and %chat history."
        )

    display(ChatWidget(args.thread, session=ctx.session))
