"""The offline Foundation Models API: a local gRPC server the unmodified SDK talks to.

It serves the real service definitions from the ``yandexcloud`` package, so every
request goes through the SDK's own discovery, channels, interceptors and parsing:

- ``ApiEndpointService/List`` (discovery: every service id points back here),
- ``TextGenerationService/Completion`` (streamed and not),
- ``TokenizerService/TokenizeCompletion`` and ``Tokenize``,
- ``TextGenerationAsyncService/Completion`` with ``OperationService/Get``,
- ``IamTokenService/Create`` (so OAuth-style auth can be exercised too).

Replies are deterministic (:func:`reply_for`), token counts agree with the
emulator's tokenizer (:func:`count_tokens`), the API key is checked, and faults,
scripted replies and delays can be queued from a test. The module imports only
``grpc`` and the protos, never the SDK, so starting it is cheap.

Run standalone with ``python -m yagpt_magic.emulator --port 50051``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import signal
import sys
import threading
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from concurrent import futures
from dataclasses import dataclass, field
from typing import Any

import grpc
from google.protobuf import any_pb2, timestamp_pb2
from google.rpc import status_pb2
from yandex.cloud.ai.foundation_models.v1 import text_common_pb2 as common
from yandex.cloud.ai.foundation_models.v1.text_generation import (
    text_generation_service_pb2 as tg,
)
from yandex.cloud.ai.foundation_models.v1.text_generation import (
    text_generation_service_pb2_grpc as tg_grpc,
)
from yandex.cloud.endpoint import api_endpoint_pb2, api_endpoint_service_pb2
from yandex.cloud.endpoint import api_endpoint_service_pb2_grpc as endpoint_grpc
from yandex.cloud.iam.v1 import iam_token_service_pb2, iam_token_service_pb2_grpc
from yandex.cloud.operation import operation_pb2, operation_service_pb2_grpc

__all__ = [
    "MESSAGE_FRAMING",
    "MESSAGE_OVERHEAD",
    "REQUEST_FRAMING",
    "Emulator",
    "RecordedRequest",
    "count_tokens",
    "main",
    "reply_for",
    "tokenize_text",
]

#: Tokens a request and each of its messages cost on top of the texts' own, as the real
#: tokenizer frames them (its TokenizeCompletion of the one message "ping" is 15 tokens).
REQUEST_FRAMING = 10
MESSAGE_FRAMING = 4
MESSAGE_OVERHEAD = MESSAGE_FRAMING  # the old name
#: The specials TokenizeCompletion wraps a request in: a start, then the reply's prompt.
_REQUEST_HEAD = ("<s>",)
_REQUEST_TAIL = ("<|assistant|>", ":", "[", "EDIT", "ORS", "]", "[NL]", "[NL]", "[SEP]")

#: Input tokens a request may hold; more is INVALID_ARGUMENT, as the real service does.
DEFAULT_CONTEXT_WINDOW = 32768

# About four characters per token, like a real BPE vocabulary on prose. Every
# character is matched by one alternative, so the pieces concatenate back to the text
# and each piece is at least one UTF-8 byte.
_TOKEN_RE = re.compile(r"\s?\w{1,4}|\s?[^\w\s]|\s+")

# Every service id the SDK may look up through discovery (its _supported_modules).
_SERVICE_IDS = (
    "ai-foundation-models",
    "ai-assistants",
    "ai-files",
    "ai-llm",
    "ai-vision",
    "ai-vision-ocr",
    "ai-stt-v3",
    "ai-tts-v3",
    "ai-translate",
    "endpoint",
    "iam",
    "operation",
    "searchapi",
)

_STATUSES = {
    "FINAL": common.Alternative.ALTERNATIVE_STATUS_FINAL,
    "TRUNCATED_FINAL": common.Alternative.ALTERNATIVE_STATUS_TRUNCATED_FINAL,
    "CONTENT_FILTER": common.Alternative.ALTERNATIVE_STATUS_CONTENT_FILTER,
}
_PARTIAL = common.Alternative.ALTERNATIVE_STATUS_PARTIAL

_BANNER = "*(offline emulator — no model was called)*"
_FILLERS = (
    "A real model would answer the question itself; this text only proves the round trip worked.",
    "Point the session at Yandex Cloud to get a real answer.",
    "The same conversation always gets this same reply, so tests can rely on it.",
    "Streaming, token counts and history behave as they would against the service.",
)


def tokenize_text(text: str) -> list[str]:
    """Split text into the emulator's tokens; ``"".join(tokens) == text``."""
    return _TOKEN_RE.findall(text)


def count_tokens(messages: Sequence[tuple[str, str]]) -> int:
    """The input token count of a request, framing included (see REQUEST_FRAMING)."""
    return REQUEST_FRAMING + sum(len(tokenize_text(t)) + MESSAGE_FRAMING for _r, t in messages)


def _token_id(piece: str) -> int:
    """A stable id, so TokenizeCompletion answers the same across processes."""
    return zlib.crc32(piece.encode("utf-8")) & 0x7FFFFFFF


def _model_label(model_uri: str) -> str:
    """``gpt://folder/yandexgpt/latest`` -> ``yandexgpt/latest``."""
    _scheme, _, rest = model_uri.partition("://")
    parts = rest.split("/", 1)
    return parts[1] if len(parts) == 2 else model_uri


def reply_for(model_uri: str, messages: Sequence[tuple[str, str]]) -> str:
    """The deterministic reply: depends only on the model and the messages."""
    payload = json.dumps([model_uri, [list(m) for m in messages]], ensure_ascii=False)
    digest = hashlib.sha256(payload.encode("utf-8")).hexdigest()[:8]
    index = len(messages)
    for i in range(len(messages), 0, -1):
        if messages[i - 1][0] == "user":
            index = i
            break
    text = messages[index - 1][1] if messages else ""
    stripped = text.strip()
    line = stripped.splitlines()[0] if stripped else ""
    if len(line) > 80:
        line = line[:79] + "…"
    count = len(messages)
    plural = "" if count == 1 else "s"
    filler = _FILLERS[int(digest, 16) % len(_FILLERS)]
    return (
        f"{_BANNER} Reply to message {index}: “{line}”.\n\n"
        f"This stand-in answer from `{_model_label(model_uri)}` saw {count} message{plural} "
        f"of context (digest {digest}). {filler}"
    )


@dataclass
class RecordedRequest:
    """One call the emulator received, as a test wants to assert on it."""

    method: str
    model_uri: str = ""
    messages: list[tuple[str, str]] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass
class _Fault:
    code: grpc.StatusCode
    details: str
    after_chunks: int
    method: str
    times: int


@dataclass
class _Script:
    text: str
    status: str
    chunks: int | None
    times: int


@dataclass
class _Reply:
    """A computed answer: the text, its final status and its usage."""

    text: str
    status: int
    input_tokens: int
    model_version: str
    chunks: int | None = None


class _Gone(Exception):
    """The client went away while the call waited out ``delay``."""


class _Abort(Exception):
    """Raised inside a handler to end the call with a status (recorded as not cancelled)."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(details)
        self.code = code
        self.details = details


class Emulator:
    """A Foundation Models gRPC server on 127.0.0.1, served from this process's threads.

    Use as ``with Emulator(api_key="k") as emu:`` and point the SDK at
    ``emu.address`` with ``verify=False`` (plaintext). Attributes ``delay`` and
    ``chunk_delay`` slow replies down; :meth:`fail` and :meth:`reply_with` queue
    faults and scripted replies for the next calls.
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
        self.requests: list[RecordedRequest] = []
        self.cancelled: int = 0
        self._lock = threading.Lock()
        self._faults: list[_Fault] = []
        self._scripts: list[_Script] = []
        self._operations: dict[str, operation_pb2.Operation] = {}
        self._op_counter = 0
        self._server: grpc.Server | None = None
        self._executor: futures.ThreadPoolExecutor | None = None

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
        server.start()
        self._server = server
        return self

    def stop(self) -> None:
        """Cancel in-flight calls and close the port; safe to call twice."""
        server, self._server = self._server, None
        if server is not None:
            server.stop(grace=0).wait()
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
    ) -> None:
        """Make the next ``times`` calls of ``method`` end with ``code``.

        ``method`` is a RecordedRequest method name ("Completion", "AsyncCompletion",
        "TokenizeCompletion", "Tokenize", "List", "OperationGet", "IamTokenCreate")
        or "*" for any. ``after_chunks=N`` sends N stream chunks first (a mid-stream
        abort; if the reply has fewer chunks, all of them, then the error; for
        AsyncCompletion the operation is created and then fails). The
        literal ``{authorization}`` in ``details`` becomes the credential the client
        sent, to prove clients scrub what servers echo.
        """
        with self._lock:
            self._faults.append(_Fault(code, details, after_chunks, method, times))

    def reply_with(
        self,
        text: str,
        *,
        status: str = "FINAL",
        chunks: int | None = None,
        times: int = 1,
    ) -> None:
        """Answer the next ``times`` completions with ``text`` instead of reply_for()."""
        if status not in _STATUSES:
            raise ValueError(f"status must be one of {sorted(_STATUSES)}, not {status!r}")
        if chunks is not None and chunks < 1:
            raise ValueError("chunks must be at least 1")
        with self._lock:
            self._scripts.append(_Script(text, status, chunks, times))

    def reset(self) -> None:
        """Forget recordings, queued faults and replies, and delays."""
        with self._lock:
            self.requests.clear()
            self._faults.clear()
            self._scripts.clear()
            self.cancelled = 0
            self.delay = 0.0
            self.chunk_delay = 0.0

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

    def _take_script(self) -> _Script | None:
        with self._lock:
            if not self._scripts:
                return None
            script = self._scripts[0]
            script.times -= 1
            if script.times <= 0:
                self._scripts.pop(0)
            return script

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

    def _compute_reply(
        self, request: tg.CompletionRequest, messages: list[tuple[str, str]]
    ) -> _Reply:
        script = self._take_script()
        if script is None:
            text, status, chunks = reply_for(request.model_uri, messages), "FINAL", None
        else:
            text, status, chunks = script.text, script.status, script.chunks
        options = request.completion_options
        if options.HasField("max_tokens") and options.max_tokens.value > 0:
            tokens = tokenize_text(text)
            if len(tokens) > options.max_tokens.value:
                text = "".join(tokens[: options.max_tokens.value])
                if status == "FINAL":
                    status = "TRUNCATED_FINAL"
        version = request.model_uri.rstrip("/").rsplit("/", 1)[-1]
        return _Reply(
            text=text,
            status=_STATUSES[status],
            input_tokens=count_tokens(messages),
            model_version=f"emulator ({version})",
            chunks=chunks,
        )


def _metadata(context: grpc.ServicerContext) -> dict[str, str]:
    return {
        key.lower(): value for key, value in context.invocation_metadata() if isinstance(value, str)
    }


def _messages(request: tg.CompletionRequest) -> list[tuple[str, str]]:
    return [(m.role, m.text) for m in request.messages]


def _options(request: tg.CompletionRequest) -> dict[str, Any]:
    o = request.completion_options
    reasoning = None
    if o.HasField("reasoning_options"):
        reasoning = common.ReasoningOptions.ReasoningMode.Name(o.reasoning_options.mode)
    return {
        "stream": o.stream,
        "temperature": o.temperature.value if o.HasField("temperature") else None,
        "max_tokens": o.max_tokens.value if o.HasField("max_tokens") else None,
        "reasoning_mode": reasoning,
    }


def _usage(input_tokens: int, completion_tokens: int) -> common.ContentUsage:
    return common.ContentUsage(
        input_text_tokens=input_tokens,
        completion_tokens=completion_tokens,
        total_tokens=input_tokens + completion_tokens,
        completion_tokens_details=common.ContentUsage.CompletionTokensDetails(reasoning_tokens=0),
    )


def _response(reply: _Reply, text: str, status: int) -> tg.CompletionResponse:
    return tg.CompletionResponse(
        alternatives=[
            common.Alternative(message=common.Message(role="assistant", text=text), status=status)
        ],
        usage=_usage(reply.input_tokens, len(tokenize_text(text))),
        model_version=reply.model_version,
    )


def _stream_texts(text: str, chunks: int | None) -> list[str]:
    """Cumulative texts of a stream: about one chunk per 4 tokens, at least 2."""
    tokens = tokenize_text(text)
    count = chunks if chunks is not None else max(2, -(-len(tokens) // 4))
    return ["".join(tokens[: round(i * len(tokens) / count)]) for i in range(1, count + 1)]


_MODEL_URI_RE = re.compile(r"^[a-z]+://[^/\s]+/\S+$")


class _Call:
    """Per-RPC helper: notices a client that went away while we wait."""

    def __init__(self, context: grpc.ServicerContext) -> None:
        self.context = context
        self._done = threading.Event()
        if not context.add_callback(self._done.set):
            self._done.set()  # already over: never sleep for a client that has gone

    def wait(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; False as soon as the client has gone."""
        if seconds > 0:
            self._done.wait(seconds)
        return self.context.is_active()


class _Servicers:
    """The gRPC servicer objects, all delegating to one Emulator."""

    def __init__(self, emu: Emulator) -> None:
        self.emu = emu
        self.text_generation = _make(
            tg_grpc.TextGenerationServiceServicer, Completion=self.completion
        )
        self.text_async = _make(
            tg_grpc.TextGenerationAsyncServiceServicer, Completion=self.async_completion
        )
        self.tokenizer = _make(
            tg_grpc.TokenizerServiceServicer,
            TokenizeCompletion=self.tokenize_completion,
            Tokenize=self.tokenize,
        )
        self.endpoints = _make(endpoint_grpc.ApiEndpointServiceServicer, List=self.list_endpoints)
        self.operations = _make(
            operation_service_pb2_grpc.OperationServiceServicer,
            Get=self.get_operation,
            Cancel=self.cancel_operation,
        )
        self.iam = _make(iam_token_service_pb2_grpc.IamTokenServiceServicer, Create=self.iam_create)

    # -- shared steps ----------------------------------------------------------

    def _begin(
        self,
        method: str,
        call: _Call,
        request: tg.CompletionRequest | None = None,
        *,
        auth: bool = True,
        delayed: bool = True,
        options: dict[str, Any] | None = None,
    ) -> tuple[dict[str, str], _Fault | None]:
        """Record the call, wait out ``delay``, check auth and arguments, pick up a fault."""
        metadata = _metadata(call.context)
        recorded = RecordedRequest(method=method, metadata=metadata, options=options or {})
        if request is not None:
            recorded.model_uri = request.model_uri
            recorded.messages = _messages(request)
            recorded.options = _options(request)
        self.emu._record(recorded)
        if delayed and not call.wait(self.emu.delay):
            raise _Gone
        if auth:
            self.emu._check_auth(metadata)
        fault = self.emu._take_fault(method)
        if fault is not None and fault.after_chunks <= 0:
            raise self._abort_for(fault, metadata)
        if request is not None:
            self._validate(request, recorded.messages)
        return metadata, fault

    def _validate(self, request: tg.CompletionRequest, messages: list[tuple[str, str]]) -> None:
        if not _MODEL_URI_RE.match(request.model_uri):
            raise _Abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"Invalid model URI {request.model_uri!r}: expected gpt://FOLDER/MODEL/VERSION",
            )
        if not messages:
            raise _Abort(grpc.StatusCode.INVALID_ARGUMENT, "messages must not be empty")
        tokens = count_tokens(messages)
        if tokens > self.emu.context_window:
            raise _Abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"The number of input tokens must be no more than {self.emu.context_window}, "
                f"got {tokens}",
            )

    @staticmethod
    def _abort_for(fault: _Fault, metadata: dict[str, str]) -> _Abort:
        details = fault.details.replace("{authorization}", metadata.get("authorization", ""))
        return _Abort(fault.code, details)

    # -- handlers --------------------------------------------------------------

    def completion(
        self, request: tg.CompletionRequest, context: grpc.ServicerContext
    ) -> Iterator[tg.CompletionResponse]:
        call = _Call(context)
        finished = False
        try:
            try:
                metadata, fault = self._begin("Completion", call, request)
            except _Gone:
                return
            reply = self.emu._compute_reply(request, _messages(request))
            if request.completion_options.stream:
                texts = _stream_texts(reply.text, reply.chunks)
            else:
                texts = [reply.text]
            for i, text in enumerate(texts):
                if fault is not None and i == fault.after_chunks:
                    raise self._abort_for(fault, metadata)
                if i and not call.wait(self.emu.chunk_delay):
                    return
                last = i == len(texts) - 1
                yield _response(reply, text, reply.status if last else _PARTIAL)
            if fault is not None:
                raise self._abort_for(fault, metadata)
            finished = True
        except _Abort as abort:
            finished = True
            context.abort(abort.code, abort.details)
        finally:
            # A generator abandoned by gRPC (client cancelled) lands here unfinished.
            if not finished:
                self.emu._count_cancelled()

    def async_completion(
        self, request: tg.CompletionRequest, context: grpc.ServicerContext
    ) -> operation_pb2.Operation:
        return self._unary(context, lambda call: self._async_completion(request, call))

    def _async_completion(
        self, request: tg.CompletionRequest, call: _Call
    ) -> operation_pb2.Operation:
        metadata, fault = self._begin("AsyncCompletion", call, request)
        reply = self.emu._compute_reply(request, _messages(request))
        op_id = self.emu._next_operation_id()
        now = timestamp_pb2.Timestamp()
        now.GetCurrentTime()
        created = operation_pb2.Operation(
            id=op_id,
            description="Async GPT Completion (offline emulator)",
            created_at=now,
            modified_at=now,
            created_by="yagpt-magic-emulator",
            done=False,
        )
        finished = operation_pb2.Operation()
        finished.CopyFrom(created)
        finished.done = True
        if fault is not None:
            abort = self._abort_for(fault, metadata)
            error = status_pb2.Status(code=abort.code.value[0], message=abort.details)
            finished.error.CopyFrom(error)
        else:
            packed = any_pb2.Any()
            packed.Pack(_response(reply, reply.text, reply.status))
            finished.response.CopyFrom(packed)
        with self.emu._lock:
            self.emu._operations[op_id] = finished
        return created

    def get_operation(self, request: Any, context: grpc.ServicerContext) -> operation_pb2.Operation:
        return self._operation("OperationGet", request, context)

    def cancel_operation(
        self, request: Any, context: grpc.ServicerContext
    ) -> operation_pb2.Operation:
        """The emulator's operations finish at once, so cancelling just reports them."""
        return self._operation("OperationCancel", request, context)

    def _operation(
        self, method: str, request: Any, context: grpc.ServicerContext
    ) -> operation_pb2.Operation:
        def handle(call: _Call) -> operation_pb2.Operation:
            self._begin(method, call, options={"operation_id": request.operation_id})
            with self.emu._lock:
                op = self.emu._operations.get(request.operation_id)
            if op is None:
                raise _Abort(
                    grpc.StatusCode.NOT_FOUND, f"Operation {request.operation_id} not found"
                )
            return op

        return self._unary(context, handle)

    def tokenize_completion(
        self, request: tg.CompletionRequest, context: grpc.ServicerContext
    ) -> tg.TokenizeResponse:
        def handle(call: _Call) -> tg.TokenizeResponse:
            self._begin("TokenizeCompletion", call, request)
            def special(text: str) -> common.Token:
                return common.Token(id=_token_id(text), text=text, special=True)

            tokens = [special(t) for t in _REQUEST_HEAD]
            for role, text in _messages(request):
                for special_text in (f"<|{role}|>", "<|text|>"):
                    tokens.append(special(special_text))
                tokens.extend(
                    common.Token(id=_token_id(p), text=p, special=False)
                    for p in tokenize_text(text)
                )
                tokens += [special("<|end|>"), special("[NL]")]
            tokens += [special(t) for t in _REQUEST_TAIL]
            version = request.model_uri.rstrip("/").rsplit("/", 1)[-1]
            return tg.TokenizeResponse(tokens=tokens, model_version=f"emulator ({version})")

        return self._unary(context, handle)

    def tokenize(self, request: Any, context: grpc.ServicerContext) -> tg.TokenizeResponse:
        def handle(call: _Call) -> tg.TokenizeResponse:
            self._begin("Tokenize", call)
            return tg.TokenizeResponse(
                tokens=[
                    common.Token(id=_token_id(p), text=p, special=False)
                    for p in tokenize_text(request.text)
                ],
                model_version="emulator",
            )

        return self._unary(context, handle)

    def list_endpoints(
        self, request: Any, context: grpc.ServicerContext
    ) -> api_endpoint_service_pb2.ListApiEndpointsResponse:
        def handle(call: _Call) -> api_endpoint_service_pb2.ListApiEndpointsResponse:
            # Discovery is plumbing, not the model: no auth, no delay.
            self._begin("List", call, auth=False, delayed=False)
            return api_endpoint_service_pb2.ListApiEndpointsResponse(
                endpoints=[
                    api_endpoint_pb2.ApiEndpoint(id=sid, address=self.emu.address)
                    for sid in _SERVICE_IDS
                ]
            )

        return self._unary(context, handle)

    def iam_create(
        self, request: Any, context: grpc.ServicerContext
    ) -> iam_token_service_pb2.CreateIamTokenResponse:
        """Exchange any OAuth token or JWT for the configured IAM token."""

        def handle(call: _Call) -> iam_token_service_pb2.CreateIamTokenResponse:
            self._begin("IamTokenCreate", call, auth=False, delayed=False)
            if self.emu.iam_token is None:
                raise _Abort(
                    grpc.StatusCode.UNAUTHENTICATED,
                    "The emulator was started without an IAM token to hand out",
                )
            expires = timestamp_pb2.Timestamp()
            expires.FromSeconds(int(time.time()) + 12 * 3600)
            return iam_token_service_pb2.CreateIamTokenResponse(
                iam_token=self.emu.iam_token, expires_at=expires
            )

        return self._unary(context, handle)

    def _unary(self, context: grpc.ServicerContext, handle: Callable[[_Call], Any]) -> Any:
        """Run a unary handler, turning _Abort into a status and _Gone into a count."""
        call = _Call(context)
        try:
            return handle(call)
        except _Gone:
            self.emu._count_cancelled()
            context.abort(grpc.StatusCode.CANCELLED, "The client cancelled the call")
        except _Abort as abort:
            context.abort(abort.code, abort.details)


def _make(base: type, **methods: Callable[..., Any]) -> Any:
    """An instance of a generated servicer class with its methods bound to ours."""
    servicer = base()
    for name, fn in methods.items():
        setattr(servicer, name, fn)
    return servicer


def main(argv: Sequence[str] | None = None) -> int:
    """Serve until SIGINT or SIGTERM; prints the address it listens on."""
    parser = argparse.ArgumentParser(
        prog="python -m yagpt_magic.emulator",
        description="Serve an offline Foundation Models (YandexGPT) API for yagpt-magic.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=50051, help="0 picks a free port")
    parser.add_argument("--api-key", help="require this API key (default: accept any)")
    parser.add_argument("--iam-token", help="also accept this IAM token")
    parser.add_argument("--delay", type=float, default=0.0, help="seconds before each reply")
    parser.add_argument("--chunk-delay", type=float, default=0.0, help="seconds between chunks")
    args = parser.parse_args(argv)

    emu = Emulator(api_key=args.api_key, iam_token=args.iam_token, host=args.host, port=args.port)
    emu.delay = args.delay
    emu.chunk_delay = args.chunk_delay
    return serve(emu, "yagpt-magic emulator listening on {address}")


def serve(emu: Emulator, banner: str) -> int:
    """Start ``emu``, print ``banner`` with its address, and serve until SIGINT/SIGTERM."""
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    try:
        emu.start()
    except OSError as err:
        print(f"yagpt-magic emulator: {err}", file=sys.stderr)
        return 1
    print(banner.format(address=emu.address), flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        emu.stop()
    return 0

