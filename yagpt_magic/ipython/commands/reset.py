"""``%chat reset [-t T | --all]``: empty a thread, or every thread."""

from __future__ import annotations

import argparse

from ...core.errors import UsageProblem
from . import Context, Parser, thread_parser


def parser() -> Parser:
    parser = thread_parser("reset", all_flag=True)
    parser.set_defaults(thread=None)
    return parser


def run(ctx: Context, args: argparse.Namespace) -> None:
    if args.all and args.thread is not None:
        raise UsageProblem("%chat reset: use either -t THREAD or --all, not both.")
    names = list(ctx.session.threads) if args.all else [args.thread or "default"]
    for name in names:
        ctx.session.reset(name)
    print(f"Reset {'all threads' if args.all else repr(names[0])}.")
