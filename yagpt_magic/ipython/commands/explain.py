"""``%chat explain [-t T]``: ask the model about the kernel's last error, as a turn on a thread.

The exception, its traceback from the failing cell on (trimmed, scrubbed of
credentials) and that cell's source go out as the user message; the answer streams
like any ``%%chat`` reply and stays in the thread.
"""

from __future__ import annotations

import argparse

from ...display.reply import ask_and_show
from ..shell import cell_id, reply_display
from ..workflow import last_error
from . import Context, Parser, thread_parser


def parser() -> Parser:
    return thread_parser("explain")


def run(ctx: Context, args: argparse.Namespace) -> None:
    session = ctx.session
    text = last_error(ctx.shell, ctx.live.secrets()).message()
    display = reply_display(ctx.shell, args.thread, session.settings)
    ask_and_show(session, display, args.thread, text, options=session.options(),
                 cell_id=cell_id(ctx.shell))
