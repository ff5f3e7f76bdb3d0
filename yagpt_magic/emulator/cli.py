"""``python -m yagpt_magic.emulator``: serve the emulator from the command line."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence

from .server import Emulator
from .state import DEFAULT_PENDING_POLLS


def main(argv: Sequence[str] | None = None) -> int:
    """Serve until SIGINT or SIGTERM; prints the address it listens on."""
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
    args = parser.parse_args(argv)

    http_port = args.http_port
    if http_port is None:
        http_port = args.port + 1 if args.port else 0
    emu = Emulator(
        api_key=args.api_key,
        iam_token=args.iam_token,
        host=args.host,
        port=args.port,
        http_port=http_port,
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
