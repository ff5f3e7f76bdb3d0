"""``%chat offline``: serve the built-in emulator in the kernel and use it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import Parser

if TYPE_CHECKING:
    from ..magics import ChatMagics


def run(magics: ChatMagics, argv: list[str]) -> None:
    Parser("offline").parse_args(argv)
    emulator = magics.session.start_offline()
    print(
        f"Offline: replies now come from the built-in emulator at {emulator.address}, "
        "not from YandexGPT."
    )
