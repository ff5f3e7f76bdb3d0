"""``python -m yagpt_magic.emulator``: serve the emulator from the command line.

Every knob of :class:`~.server.Emulator` that shapes how the service behaves has a flag:
the documented limits (``--concurrent-generations``, ``--async-submit-rps``,
``--async-submit-per-hour``, ``--operation-poll-rps``, ``--tokenizer-rps``; 0 means no
limit, ``--no-limits`` turns them all off), the service-time model (``--service-time``
or any of ``--first-token``, ``--per-token``, ``--service-time-sigma``, ``--seed``),
``--delay``, ``--chunk-delay``, ``--quota-rps`` and ``--pending-polls``.
"""

from __future__ import annotations

import argparse
import dataclasses
import signal
import sys
import threading
from collections.abc import Sequence

from .limits import Limits
from .server import GRPC_WORKERS, Emulator
from .service_time import ServiceTime
from .state import DEFAULT_PENDING_POLLS

#: Flag name -> (Limits field, type, help).
_LIMIT_FLAGS = {
    "--concurrent-generations": ("concurrent_generations", int, "synchronous generations "
                                 "in flight per model"),
    "--async-submit-rps": ("async_submit_rps", float, "deferred completions submitted a second"),
    "--async-submit-per-hour": ("async_submit_per_hour", int,
                                "deferred completions submitted an hour"),
    "--operation-poll-rps": ("operation_poll_rps", float, "deferred results fetched a second"),
    "--tokenizer-rps": ("tokenizer_rps", float, "tokenizer calls a second"),
}  # fmt: skip

#: Flag name -> (ServiceTime field, type, help).
_SERVICE_TIME_FLAGS = {
    "--first-token": ("first_token", float, "median seconds to the first token"),
    "--per-token": ("per_token", float, "median seconds per token after it"),
    "--service-time-sigma": ("sigma", float, "lognormal shape of the tail (0: constant)"),
    "--seed": ("seed", int, "seed of the service-time draws"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m yagpt_magic.emulator",
        description="Serve an offline Foundation Models (YandexGPT) API for yagpt-magic: "
        "gRPC on --port, the OpenAI-compatible HTTP API on --http-port.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=50051, help="0 picks a free port")
    parser.add_argument(
        "--http-port",
        type=int,
        help="the OpenAI-compatible HTTP API's port (default: --port + 1, or a free one "
        "with --port 0)",
    )
    parser.add_argument("--api-key", help="require this API key (default: accept any)")
    parser.add_argument("--iam-token", help="also accept this IAM token")
    parser.add_argument("--delay", type=float, default=0.0, help="seconds before each reply")
    parser.add_argument("--chunk-delay", type=float, default=0.0, help="seconds between chunks")
    parser.add_argument("--quota-rps", type=float, help="per-folder requests per second")
    parser.add_argument(
        "--pending-polls",
        type=int,
        default=DEFAULT_PENDING_POLLS,
        help="OperationService/Get calls that see a deferred completion still running",
    )
    parser.add_argument("--workers", type=int, default=GRPC_WORKERS, help="gRPC threads")
    add_limit_arguments(parser)
    add_service_time_arguments(parser)
    return parser


def add_limit_arguments(parser: argparse.ArgumentParser) -> None:
    """``--no-limits`` and one flag a documented limit (read back with limits_from)."""
    group = parser.add_argument_group(
        "the service's documented limits", "each defaults to the documented value; 0: none"
    )
    group.add_argument("--no-limits", action="store_true", help="turn every limit off")
    defaults = Limits()
    for flag, (name, kind, text) in _LIMIT_FLAGS.items():
        group.add_argument(
            flag, type=kind, metavar="N", help=f"{text} (default {getattr(defaults, name):g})"
        )


def add_service_time_arguments(parser: argparse.ArgumentParser) -> None:
    """``--service-time`` and its knobs (read back with service_time_from)."""
    group = parser.add_argument_group(
        "service time", "off unless one of these is given: first token + per token, lognormal"
    )
    group.add_argument("--service-time", action="store_true", help="on, with the defaults")
    model = ServiceTime()
    for flag, (name, kind, text) in _SERVICE_TIME_FLAGS.items():
        group.add_argument(
            flag, type=kind, metavar="X", help=f"{text} (default {getattr(model, name):g})"
        )


def limits_from(args: argparse.Namespace) -> Limits:
    """The documented limits, or none, with each flag given replacing its value."""
    limits = Limits.off() if args.no_limits else Limits()
    changes = {}
    for flag, (name, _kind, _text) in _LIMIT_FLAGS.items():
        value = getattr(args, flag.lstrip("-").replace("-", "_"))
        if value is not None:
            changes[name] = value if value > 0 else None
    return dataclasses.replace(limits, **changes)


def service_time_from(args: argparse.Namespace) -> ServiceTime | None:
    """The service-time model if ``--service-time`` or any of its knobs is given."""
    changes = {}
    for flag, (name, _kind, _text) in _SERVICE_TIME_FLAGS.items():
        value = getattr(args, flag.lstrip("-").replace("-", "_"))
        if value is not None:
            changes[name] = value
    if not changes and not args.service_time:
        return None
    return ServiceTime(**changes)


def main(argv: Sequence[str] | None = None) -> int:
    """Serve until SIGINT or SIGTERM; prints the address it listens on."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        limits, service_time = limits_from(args), service_time_from(args)
    except ValueError as err:
        parser.error(str(err))
    http_port = args.http_port
    if http_port is None:
        http_port = args.port + 1 if args.port else 0
    emu = Emulator(
        api_key=args.api_key,
        iam_token=args.iam_token,
        host=args.host,
        port=args.port,
        http_port=http_port,
        limits=limits,
        service_time=service_time,
        workers=args.workers,
    )
    emu.delay = args.delay
    emu.chunk_delay = args.chunk_delay
    emu.quota_rps = args.quota_rps
    emu.pending_polls = args.pending_polls
    return serve(emu, "yagpt-magic emulator listening on {address}")


def serve(emu: Emulator, banner: str) -> int:
    """Start ``emu``, print ``banner`` with its gRPC address, then the HTTP API's base URL
    on a line of its own, and serve until SIGINT/SIGTERM."""
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    try:
        emu.start()
    except OSError as err:
        print(f"yagpt-magic emulator: {err}", file=sys.stderr)
        return 1
    print(banner.format(address=emu.address), flush=True)
    print(f"OpenAI-compatible HTTP API at {emu.chat_url}", flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        emu.stop()
    return 0
