"""The offline Foundation Models API: a local gRPC server the unmodified SDK talks to.

``server`` holds the gRPC services and the ``Emulator`` that serves them; what it
answers lives beside it, one job a module: ``tokenizer`` (token framing), ``catalogue``
(models, versions, error wording), ``answers`` (responses and usage), ``replies`` (the
offline text), ``tools`` (the tool-call rule), ``structured`` (JSON from a schema) and
``quota``. Run it standalone with ``python -m yagpt_magic.emulator --port 50051``.
"""

from __future__ import annotations

from .cli import main, serve
from .server import (
    MESSAGE_FRAMING,
    MESSAGE_OVERHEAD,
    REQUEST_FRAMING,
    Emulator,
    RecordedRequest,
    count_tokens,
    reply_for,
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
