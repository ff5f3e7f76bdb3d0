"""``%chat widget [-t T]``: a chat box on a thread, shared live with ``%%chat``."""

from __future__ import annotations

import argparse

from . import Context, Parser, thread_parser


def parser() -> Parser:
    return thread_parser("widget")


def run(ctx: Context, args: argparse.Namespace) -> None:
    # Displayed rather than returned, so it shows even when not the cell's last line.
    from IPython.display import display

    from ..widget import ChatWidget

    display(ChatWidget(args.thread, session=ctx.session))
