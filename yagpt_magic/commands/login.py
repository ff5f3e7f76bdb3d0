"""``%chat login``: ask for a credential and folder with getpass; kept in memory only."""

from __future__ import annotations

import getpass
from typing import TYPE_CHECKING

from ..connection import Credential
from ..errors import UsageProblem
from . import Parser

if TYPE_CHECKING:
    from ..magics import ChatMagics


def run(magics: ChatMagics, argv: list[str]) -> None:
    Parser("login").parse_args(argv)  # no arguments: a secret must never be typed on a line
    secret = getpass.getpass("API key or IAM token (input hidden): ").strip()
    if not secret:
        raise UsageProblem("%chat login: nothing entered; the credential is unchanged.")
    folder = getpass.getpass("Folder id: ").strip()
    kind = "iam_token" if secret.startswith("t1.") else "api_key"
    magics.session.login = Credential(kind, secret, "%chat login")
    if folder:
        magics.session.login_folder = folder
    print(f"Logged in with an {kind.replace('_', ' ')} (kept in kernel memory only).")
