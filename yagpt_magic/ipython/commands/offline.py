"""``%chat offline [--if-needed]``: serve the built-in emulator in the kernel and use it.

``--if-needed`` is for notebooks that must run anywhere (the bundled ones, Run All,
papermill): with credentials the service answers; without them the emulator does, and
the output says which, so nobody mistakes an offline reply for YandexGPT's.
"""

from __future__ import annotations

import argparse

from ...core.errors import ConfigProblem
from . import Context, Parser


def parser() -> Parser:
    parser = Parser("offline")
    parser.add_argument("--if-needed", action="store_true",
                        help="only when no credentials are set; else say the service answers")
    return parser


def run(ctx: Context, args: argparse.Namespace) -> None:
    why = ""
    if args.if_needed and ctx.live.offline is None:
        try:
            connection = ctx.live.connection()  # YAGPT_OFFLINE=1 starts the emulator here
        except ConfigProblem as err:
            why = "No credentials found" if "credential" in str(err) else str(err).rstrip(".")
        else:
            if ctx.live.offline is None:
                print(f"Credentials found ({connection.credential.source}): replies come "
                      f"from YandexGPT at {connection.shown_endpoint}.")
                return
    emulator = ctx.live.start_offline()
    lead = f"{why}: " if why else "Offline: "
    print(f"{lead}replies now come from the built-in offline emulator at {emulator.address}, "
          "not from YandexGPT."
          + (" Set YC_API_KEY and YC_FOLDER_ID (or run %chat login) to use the service."
             if why else ""))
