"""The project's emulator in a process of its own, optionally answering with a long reply.

``python -m yagpt_magic.emulator`` has no flag for a scripted reply, and figure 4 needs
the emulator out of the client's process (its CPU must not count as the client's).
This runs the same ``Emulator`` class with ``reply_with`` queued for every request:
``python -m benchmarks.server --api-key K [--reply-tokens N] [--chunks C]``, plus the
emulator's own limit and service-time flags (``--concurrent-generations N``,
``--no-limits``, ``--first-token S``, ``--per-token S``, ``--service-time-sigma X``,
``--seed N``...; see ``python -m yagpt_magic.emulator --help``).
It prints ``listening on HOST:PORT`` and serves until SIGTERM; with ``--stats`` it then
prints the completions received, the rejections, and the refusals by quota.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from yagpt_magic.emulator import Emulator, serve, tokenize_text
from yagpt_magic.emulator.cli import (
    add_limit_arguments,
    add_service_time_arguments,
    limits_from,
    service_time_from,
)

_TEXT = (
    "the model streams a reply while the notebook shows it growing in place and "
    "every token counts against the window so history is fitted before each request "
    "markdown renders code blocks math and lists as Jupyter renders them"
)
_WORDS = _TEXT.split()


def long_reply(tokens: int) -> str:
    """Prose of exactly ``tokens`` emulator tokens, in paragraphs, like a long answer."""
    words: list[str] = []
    i = 0
    while len(words) < tokens:  # each word is at least one token
        words.append(_WORDS[i % len(_WORDS)])
        if i % 60 == 59:
            words[-1] += ".\n\n"
        i += 1
    return "".join(tokenize_text(" ".join(words))[:tokens])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.server")
    parser.add_argument("--api-key", required=True)
    parser.add_argument("--reply-tokens", type=int, default=0, help="answer with this long a reply")
    parser.add_argument("--chunks", type=int, default=None, help="stream it in this many chunks")
    parser.add_argument("--delay", type=float, default=0.0, help="service time per request")
    parser.add_argument("--quota-rps", type=float, default=None, help="the folder's quota")
    parser.add_argument("--stats", action="store_true",
                        help="on exit, print the completions received and quota rejections")
    add_limit_arguments(parser)
    add_service_time_arguments(parser)
    args = parser.parse_args(argv)

    emu = Emulator(api_key=args.api_key, limits=limits_from(args),
                   service_time=service_time_from(args))
    emu.delay = args.delay
    emu.quota_rps = args.quota_rps
    if args.reply_tokens:
        emu.reply_with(long_reply(args.reply_tokens), chunks=args.chunks, times=10**9)
    code = serve(emu, "listening on {address}")
    if args.stats:
        refused = " ".join(f"refused_{name}={n}" for name, n in sorted(emu.refusals.items()))
        print(f"stats completions={len(emu.completions)} rejected={emu.rejected} {refused}",
              flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
