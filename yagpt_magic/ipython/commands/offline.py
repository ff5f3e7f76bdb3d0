"""``%chat offline``: serve the built-in emulator in the kernel and use it (no credentials)."""

from __future__ import annotations

import argparse

from . import Context, Parser


def parser() -> Parser:
    return Parser("offline")


def run(ctx: Context, args: argparse.Namespace) -> None:
    emulator = ctx.live.start_offline()
    print(
        f"Offline: replies now come from the built-in emulator at {emulator.address}, "
        "not from YandexGPT."
    )
