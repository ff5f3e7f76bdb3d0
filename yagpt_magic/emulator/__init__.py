"""The offline Foundation Models API: a local gRPC server the unmodified SDK talks to.

``server`` holds the gRPC services and the ``Emulator`` that serves them; run it
standalone with ``python -m yagpt_magic.emulator --port 50051``.
"""

from __future__ import annotations

from .server import (
    MESSAGE_FRAMING,
    MESSAGE_OVERHEAD,
    REQUEST_FRAMING,
    Emulator,
    RecordedRequest,
    count_tokens,
    main,
    reply_for,
    serve,
    tokenize_text,
)

__all__ = [
    "MESSAGE_FRAMING",
    "MESSAGE_OVERHEAD",
    "REQUEST_FRAMING",
    "Emulator",
    "RecordedRequest",
    "count_tokens",
    "main",
    "reply_for",
    "serve",
    "tokenize_text",
]
