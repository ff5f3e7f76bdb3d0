"""The offline Foundation Models API: a local gRPC server the unmodified SDK talks to.

It serves the real service definitions from the ``yandexcloud`` package, so every
request goes through the SDK's own discovery, channels, interceptors and parsing:

- ``ApiEndpointService/List`` (discovery: every service id points back here),
- ``TextGenerationService/Completion`` (streamed and not),
- ``TokenizerService/TokenizeCompletion`` and ``Tokenize``,
- ``TextGenerationAsyncService/Completion`` with ``OperationService/Get``,
- ``IamTokenService/Create`` (so OAuth-style auth can be exercised too).
- ``DatasetService``, ``TextGenerationBatchService`` and ``BatchInferenceService``
  with presigned-URL storage, for ``sdk.datasets`` and ``model.batch`` (see batch.py).

It behaves like the recorded real service (tests/real_traffic): token framing
(:mod:`.tokenizer`), the model catalogue and its ``model_version`` dates and error
wording (:mod:`.catalogue`), usage in every chunk, ``TOOL_CALLS`` when tools are offered
(:mod:`.tools`), JSON for ``response_format`` (:mod:`.structured`), deferred operations
that finish after a poll, an optional per-folder quota, and replies shaped like real
answers (:mod:`.replies`). Faults, scripted replies and tool calls, and delays can be
queued from a test. The module imports only ``grpc`` and the protos, never the SDK.

Run standalone with ``python -m yagpt_magic.emulator --port 50051``.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from concurrent import futures
from typing import Any

import grpc
from google.protobuf import timestamp_pb2
from yandex.cloud.ai.foundation_models.v1.text_generation import (
    text_generation_service_pb2_grpc as tg_grpc,
)
from yandex.cloud.endpoint import api_endpoint_service_pb2_grpc as endpoint_grpc
from yandex.cloud.iam.v1 import iam_token_service_pb2_grpc
from yandex.cloud.operation import operation_pb2, operation_service_pb2_grpc

from .answers import STATUSES, Script
from .quota import TokenBucket
from .replies import reply_for

# The handler helpers stay importable from here (batch.py and older code use these names).
from .services import _SERVICE_IDS as _SERVICE_IDS
from .services import RecordedRequest, _Fault, _Servicers
from .services import _Abort as _Abort
from .services import _Call as _Call
from .services import _Gone as _Gone
from .services import _make as _make
from .tokenizer import MESSAGE_FRAMING, REQUEST_FRAMING, count_tokens, tokenize_text
from .tools import Call

__all__ = [
    "MESSAGE_FRAMING",
    "MESSAGE_OVERHEAD",
    "REQUEST_FRAMING",
    "Emulator",
    "RecordedRequest",
    "count_tokens",
    "reply_for",
    "tokenize_text",
]

#: The old name of MESSAGE_FRAMING, kept so imports keep working. Counts are no longer
#: additive: a request also costs REQUEST_FRAMING once (see .tokenizer).
MESSAGE_OVERHEAD = MESSAGE_FRAMING

#: Input tokens a request may hold; more is INVALID_ARGUMENT, as the real service does.
DEFAULT_CONTEXT_WINDOW = 32768

#: OperationService/Get calls that still see a deferred completion running: the recording
#: (test_run_deferred) has one not-done poll before the done one.
DEFAULT_PENDING_POLLS = 1
class Emulator:
    """A Foundation Models gRPC server on 127.0.0.1, served from this process's threads.

    Use as ``with Emulator(api_key="k") as emu:`` and point the SDK at
    ``emu.address`` with ``verify=False`` (plaintext). Attributes ``delay`` (service
    time) and ``chunk_delay`` slow replies down; ``quota_rps`` turns on a per-folder
    requests-per-second quota (``rejected`` counts what it refused); ``pending_polls`` is
    how many OperationService/Get calls see a deferred completion still running;
    :meth:`fail`, :meth:`reply_with` and :meth:`call_tools` queue faults, scripted
    replies and scripted tool calls for the next calls.
    """

    def __init__(
        self,
        *,
        api_key: str | None = None,
        iam_token: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.api_key = api_key
        self.iam_token = iam_token
        self.host = host
        self.port = port
        self.delay: float = 0.0
        self.chunk_delay: float = 0.0
        self.context_window: int = DEFAULT_CONTEXT_WINDOW
        self.pending_polls: int = DEFAULT_PENDING_POLLS
        self.quota_rps: float | None = None
        self.requests: list[RecordedRequest] = []
        self.cancelled: int = 0
        self.rejected: int = 0
        self._lock = threading.Lock()
        self._faults: list[_Fault] = []
        self._scripts: list[Script] = []
        self._buckets: dict[str, TokenBucket] = {}
        # What OperationService/Get returns, by id: the one operation store. A deferred
        # completion waits in _pending (Gets left, finished operation) until it is due.
        self._operations: dict[str, operation_pb2.Operation] = {}
        self._pending: dict[str, tuple[int, operation_pb2.Operation]] = {}
        self._op_counter = 0
        self._server: grpc.Server | None = None
        self._executor: futures.ThreadPoolExecutor | None = None
        from .batch import BatchServices  # here, not at the top: batch builds on this module

        self.batch = BatchServices(self)  # datasets, storage, batch tasks (batch.py)

    # -- lifecycle -------------------------------------------------------------

    @property
    def address(self) -> str:
        """``host:port`` for the SDK's ``endpoint`` (or every ``service_map`` entry)."""
        return f"{self.host}:{self.port}"

    def start(self) -> Emulator:
        """Bind and serve in background threads; returns self."""
        if self._server is not None:
            return self
        self._executor = futures.ThreadPoolExecutor(
            max_workers=16, thread_name_prefix="yagpt-emulator"
        )
        # so_reuseport=0: a second server on a taken port must fail, not share it.
        server = grpc.server(self._executor, options=[("grpc.so_reuseport", 0)])
        servicers = _Servicers(self)
        tg_grpc.add_TextGenerationServiceServicer_to_server(servicers.text_generation, server)
        tg_grpc.add_TextGenerationAsyncServiceServicer_to_server(servicers.text_async, server)
        tg_grpc.add_TokenizerServiceServicer_to_server(servicers.tokenizer, server)
        endpoint_grpc.add_ApiEndpointServiceServicer_to_server(servicers.endpoints, server)
        operation_service_pb2_grpc.add_OperationServiceServicer_to_server(
            servicers.operations, server
        )
        iam_token_service_pb2_grpc.add_IamTokenServiceServicer_to_server(servicers.iam, server)
        try:
            bound = server.add_insecure_port(f"{self.host}:{self.port}")
        except RuntimeError as err:
            bound = 0
            cause: Exception | None = err
        else:
            cause = None
        if not bound:
            self._executor.shutdown(wait=False)
            raise OSError(f"emulator could not listen on {self.host}:{self.port}") from cause
        self.port = bound
        self.batch.start(server)
        server.start()
        self._server = server
        return self

    def stop(self) -> None:
        """Cancel in-flight calls and close the port; safe to call twice."""
        server, self._server = self._server, None
        if server is not None:
            server.stop(grace=0).wait()
        self.batch.stop()
        if self._executor is not None:
            # Waiting leaves no thread behind (%unload_ext promises that); handlers see
            # their calls cancelled by the stop above and return within one step.
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- test controls ---------------------------------------------------------

    @property
    def completions(self) -> list[RecordedRequest]:
        """Completion calls only, streamed, unary and deferred."""
        with self._lock:
            return [r for r in self.requests if r.method in ("Completion", "AsyncCompletion")]

    @property
    def tokenize_calls(self) -> int:
        """How many TokenizeCompletion calls arrived."""
        with self._lock:
            return sum(1 for r in self.requests if r.method == "TokenizeCompletion")

    def fail(
        self,
        code: grpc.StatusCode,
        details: str = "",
        *,
        after_chunks: int = 0,
        method: str = "Completion",
        times: int = 1,
        prefixed: bool = False,
    ) -> None:
        """Make the next ``times`` calls of ``method`` end with ``code``.

        ``method`` is a RecordedRequest method name ("Completion", "AsyncCompletion",
        "TokenizeCompletion", "Tokenize", "List", "OperationGet", "IamTokenCreate")
        or "*" for any. ``after_chunks=N`` sends N stream chunks first (a mid-stream
        abort; if the reply has fewer chunks, all of them, then the error; for
        AsyncCompletion the operation is created and then fails). The
        literal ``{authorization}`` in ``details`` becomes the credential the client
        sent, to prove clients scrub what servers echo. ``prefixed=True`` puts the real
        service's ``Error in session internal_id=…&request_id=…&client_request_id=…
        &folder_id=…: `` in front of ``details``, as errors the service itself raises have.
        """
        with self._lock:
            self._faults.append(_Fault(code, details, after_chunks, method, times, prefixed))

    def reply_with(
        self,
        text: str,
        *,
        status: str = "FINAL",
        chunks: int | None = None,
        times: int = 1,
    ) -> None:
        """Answer the next ``times`` completions with ``text`` instead of the emulator's own.

        The text is sent as is, whatever the request asked for: a test can answer a
        ``response_format`` request with invalid JSON, or a tools request with text.
        """
        if status not in STATUSES:
            raise ValueError(f"status must be one of {sorted(STATUSES)}, not {status!r}")
        if chunks is not None and chunks < 1:
            raise ValueError("chunks must be at least 1")
        with self._lock:
            self._scripts.append(Script(text, status, chunks, times))

    def call_tools(
        self,
        calls: Sequence[tuple[str, Mapping[str, Any]] | Mapping[str, Any]],
        *,
        times: int = 1,
    ) -> None:
        """Answer the next ``times`` completions with exactly these tool calls.

        Each call is ``(name, arguments)`` or ``{"name": ..., "arguments": {...}}``; the
        name need not be a tool the request offered (the real model can invent one).
        Queued with reply_with() in one first-in, first-out line.
        """
        parsed = []
        for call in calls:
            if isinstance(call, Mapping):
                parsed.append(Call(str(call["name"]), dict(call.get("arguments", {}))))
            else:
                name, arguments = call
                parsed.append(Call(name, dict(arguments)))
        if not parsed:
            raise ValueError("call_tools needs at least one call")
        with self._lock:
            self._scripts.append(Script("", "FINAL", 1, times, calls=parsed))

    def reset(self) -> None:
        """Forget recordings, queued faults and replies, delays and the quota."""
        with self._lock:
            self.requests.clear()
            self._faults.clear()
            self._scripts.clear()
            self._buckets.clear()
            self.cancelled = 0
            self.rejected = 0
            self.delay = 0.0
            self.chunk_delay = 0.0
            self.quota_rps = None

    # -- internals used by the servicers ---------------------------------------

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def _count_cancelled(self) -> None:
        with self._lock:
            self.cancelled += 1

    def _take_fault(self, method: str) -> _Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.method in (method, "*"):
                    fault.times -= 1
                    if fault.times <= 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def _take_script(self) -> Script | None:
        with self._lock:
            if not self._scripts:
                return None
            script = self._scripts[0]
            script.times -= 1
            if script.times <= 0:
                self._scripts.pop(0)
            return script

    def _spend_quota(self, folder: str) -> bool:
        """Take one request from the folder's bucket; False (and counted) when it is empty."""
        rps = self.quota_rps
        if rps is None:
            return True
        with self._lock:
            bucket = self._buckets.get(folder)
            if bucket is None or bucket.rate != rps:
                bucket = self._buckets[folder] = TokenBucket(rps)
            if bucket.take():
                return True
            self.rejected += 1
            return False

    def _add_operation(
        self, created: operation_pb2.Operation, finished: operation_pb2.Operation
    ) -> None:
        """Store a deferred result: Get shows ``created`` ``pending_polls`` times, then it."""
        with self._lock:
            if self.pending_polls > 0:
                self._operations[created.id] = created
                self._pending[created.id] = (self.pending_polls, finished)
            else:
                self._operations[created.id] = finished

    def _poll_operation(self, op_id: str) -> operation_pb2.Operation | None:
        """What one OperationService/Get sees; a pending operation moves one poll closer."""
        with self._lock:
            current = self._operations.get(op_id)
            pending = self._pending.get(op_id)
            if pending is None:
                return current
            left, finished = pending
            if left > 1:
                self._pending[op_id] = (left - 1, finished)
            else:
                del self._pending[op_id]
                now = timestamp_pb2.Timestamp()
                now.GetCurrentTime()
                finished.modified_at.CopyFrom(now)
                self._operations[op_id] = finished
            return current

    def _next_operation_id(self) -> str:
        with self._lock:
            self._op_counter += 1
            return f"emu-op-{self._op_counter}"

    def _check_auth(self, metadata: dict[str, str]) -> None:
        accepted = set()
        if self.api_key is not None:
            accepted.add(f"Api-Key {self.api_key}")
        if self.iam_token is not None:
            accepted.add(f"Bearer {self.iam_token}")
        if not accepted:
            return
        sent = metadata.get("authorization")
        if sent is None:
            raise _Abort(grpc.StatusCode.UNAUTHENTICATED, "Authorization metadata is missing")
        if sent not in accepted:
            what = "IAM token" if sent.startswith("Bearer ") else "API key"
            raise _Abort(grpc.StatusCode.UNAUTHENTICATED, f"The {what} is invalid")
