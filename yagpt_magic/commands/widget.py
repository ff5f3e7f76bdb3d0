"""``%chat widget [-t T]``: show a chat widget on a thread, shared live with ``%%chat``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import thread_parser

if TYPE_CHECKING:
    from ..magics import ChatMagics


def run(magics: ChatMagics, argv: list[str]) -> None:
    # Displayed rather than returned, so it shows even when not the cell's last line.
    from IPython.display import display

    from ..widget import ChatWidget

    args = thread_parser("widget").parse_args(argv)
    display(ChatWidget(args.thread, magics=magics))
