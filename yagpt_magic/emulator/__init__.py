"""The offline Foundation Models API: local gRPC and HTTP servers the unmodified SDK talks to.

``server`` holds the ``Emulator``, which composes the rest: ``state`` (what every
service shares), ``rpc`` (gRPC plumbing), ``gateway`` (what every call passes: auth,
quotas and limits, faults, validation), the servicers (``completion_services``,
``platform_services``, ``dataset_service``, ``batch_service``), the stores they use
(``datasets``, ``object_store``) and the OpenAI-compatible HTTP API (``openai_http``
serving what ``openai_chat`` shapes). What it answers lives beside them, one job a module:
``tokenizer`` (token framing), ``catalogue`` (models, versions, error wording),
``answers`` (responses and usage), ``replies`` (the offline text), ``tool_rule`` (the
tool-call rule), ``schema_values`` (JSON from a schema), ``limits`` (the service's
documented quotas) and ``service_time`` (how long a reply takes). Run it standalone
with ``python -m yagpt_magic.emulator --port 50051`` (``--help`` lists the limit and
service-time flags).
"""

from __future__ import annotations

from .cli import main, serve
from .limits import Limits
from .replies import reply_for
from .server import Emulator
from .service_time import ServiceTime
from .state import RecordedRequest
from .tokenizer import MESSAGE_FRAMING, REQUEST_FRAMING, count_tokens, tokenize_text

#: The old name of MESSAGE_FRAMING. Counts are no longer additive: a request also costs
#: REQUEST_FRAMING once (see .tokenizer).
MESSAGE_OVERHEAD = MESSAGE_FRAMING

__all__ = [
    "MESSAGE_FRAMING",
    "MESSAGE_OVERHEAD",
    "REQUEST_FRAMING",
    "Emulator",
    "Limits",
    "RecordedRequest",
    "ServiceTime",
    "count_tokens",
    "main",
    "reply_for",
    "serve",
    "tokenize_text",
]
