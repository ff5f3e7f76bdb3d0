"""``%chat login``: ask for an API key or IAM token and a folder id (kept in memory only).

It takes no arguments: a secret typed on a line would be saved with the notebook,
so it is asked for with ``getpass``.
"""

from __future__ import annotations

import argparse
import getpass

from ...core.errors import UsageProblem
from . import Context, Parser


def parser() -> Parser:
    return Parser("login")


def run(ctx: Context, args: argparse.Namespace) -> None:
    secret = getpass.getpass("API key or IAM token (input hidden): ").strip()
    if not secret:
        raise UsageProblem("%chat login: nothing entered; the credential is unchanged.")
    folder = getpass.getpass("Folder id: ").strip()
    credential = ctx.live.log_in(secret, folder)
    print(f"Logged in with an {credential.kind.replace('_', ' ')} (kept in kernel memory only).")
