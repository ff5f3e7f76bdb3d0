"""The gRPC handlers of the emulator: one servicer object per service, one Emulator behind.

Every handler goes through the same steps (:meth:`_Servicers._begin`): record the call,
check the credential and the folder's quota, wait out the service time, take a queued
fault, validate the request the way the real service does. :meth:`_Servicers._unary`
turns ``_Abort`` into a gRPC status for unary methods. What a completion answers is
computed in :mod:`.answers`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

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

from . import catalogue
from .answers import (
    PARTIAL,
    Reply,
    compute,
    input_tokens_of,
    messages_of,
    options_of,
    response,
    stream_texts,
)
from .tokenizer import frame, text_pieces
from .tools import ToolChoiceError, tool_texts

if TYPE_CHECKING:
    from .server import Emulator

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
    prefixed: bool = False


class _Gone(Exception):
    """The client went away while the call waited out ``delay``."""


class _Abort(Exception):
    """Raised inside a handler to end the call with a status (recorded as not cancelled)."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(details)
        self.code = code
        self.details = details


# Methods the per-folder quota meters.
_METERED = ("Completion", "AsyncCompletion")


def _prefix(folder: str, metadata: dict[str, str]) -> str:
    return catalogue.session_prefix(folder, metadata.get("x-client-request-id", ""))


def _service_error(
    request: tg.CompletionRequest, metadata: dict[str, str], cause: str
) -> _Abort:
    """INVALID_ARGUMENT as the model session raises it: the cause behind the long prefix."""
    folder = catalogue.folder_of(request.model_uri)
    return _Abort(grpc.StatusCode.INVALID_ARGUMENT, _prefix(folder, metadata) + cause)


def _metadata(context: grpc.ServicerContext) -> dict[str, str]:
    return {
        key.lower(): value for key, value in context.invocation_metadata() if isinstance(value, str)
    }


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
        """Record the call, check auth and quota, wait out ``delay``, validate, pick a fault.

        The order is the service's: the gateway authenticates and spends quota before
        the model's service time (a refused request costs no ``delay``).
        """
        metadata = _metadata(call.context)
        recorded = RecordedRequest(method=method, metadata=metadata, options=options or {})
        if request is not None:
            recorded.model_uri = request.model_uri
            recorded.messages = messages_of(request)
            recorded.options = options_of(request)
        self.emu._record(recorded)
        if auth:
            self.emu._check_auth(metadata)
        if method in _METERED and not self.emu._spend_quota(
            catalogue.folder_of(request.model_uri if request is not None else "")
        ):
            raise _Abort(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                catalogue.quota_exceeded(self.emu.quota_rps or 0),
            )
        if delayed and not call.wait(self.emu.delay):
            raise _Gone
        fault = self.emu._take_fault(method)
        if fault is not None and fault.after_chunks <= 0:
            raise self._abort_for(fault, metadata, request)
        if request is not None:
            self._validate(request, metadata)
        return metadata, fault

    def _validate(self, request: tg.CompletionRequest, metadata: dict[str, str]) -> None:
        """Refuse what the real service refuses, with its wording (see .catalogue)."""
        if catalogue.lookup(request.model_uri) is None:
            raise _Abort(grpc.StatusCode.INVALID_ARGUMENT, catalogue.INVALID_MODEL_URI)
        if not request.messages:
            raise _service_error(request, metadata, catalogue.EMPTY_MESSAGES)
        for message in request.messages:
            if message.role not in catalogue.ROLES:
                raise _service_error(request, metadata, catalogue.invalid_role(message.role))
        tokens = input_tokens_of(request)
        if tokens > self.emu.context_window:
            raise _service_error(
                request, metadata, catalogue.too_many_tokens(self.emu.context_window, tokens)
            )

    @staticmethod
    def _abort_for(
        fault: _Fault, metadata: dict[str, str], request: tg.CompletionRequest | None = None
    ) -> _Abort:
        details = fault.details.replace("{authorization}", metadata.get("authorization", ""))
        if fault.prefixed:
            folder = catalogue.folder_of(request.model_uri) if request is not None else ""
            details = _prefix(folder, metadata) + details
        return _Abort(fault.code, details)

    def _reply(
        self, request: tg.CompletionRequest, metadata: dict[str, str]
    ) -> Reply:
        try:
            return compute(request, self.emu._take_script())
        except ToolChoiceError as err:
            raise _service_error(request, metadata, str(err)) from err

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
            reply = self._reply(request, metadata)
            if request.completion_options.stream and not reply.calls:
                texts = stream_texts(reply.text, reply.chunks)
            else:
                texts = [reply.text]
            for i, text in enumerate(texts):
                if fault is not None and i == fault.after_chunks:
                    raise self._abort_for(fault, metadata, request)
                if i and not call.wait(self.emu.chunk_delay):
                    return
                last = i == len(texts) - 1
                yield response(reply, text, reply.status if last else PARTIAL)
            if fault is not None:
                raise self._abort_for(fault, metadata, request)
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
        reply = self._reply(request, metadata)
        op_id = self.emu._next_operation_id()
        now = timestamp_pb2.Timestamp()
        now.GetCurrentTime()
        created = operation_pb2.Operation(
            id=op_id,
            description="Async GPT Completion",
            created_at=now,
            modified_at=now,
            created_by="yagpt-magic-emulator",
            done=False,
        )
        finished = operation_pb2.Operation()
        finished.CopyFrom(created)
        finished.done = True
        if fault is not None:
            abort = self._abort_for(fault, metadata, request)
            error = status_pb2.Status(code=abort.code.value[0], message=abort.details)
            finished.error.CopyFrom(error)
        else:
            packed = any_pb2.Any()
            packed.Pack(response(reply, reply.text, reply.status))
            finished.response.CopyFrom(packed)
        self.emu._add_operation(created, finished)
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
            op = self.emu._poll_operation(request.operation_id)
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
            model = catalogue.lookup(request.model_uri)
            assert model is not None, "validated in _begin"
            pieces = frame(messages_of(request), tool_texts(request))
            return tg.TokenizeResponse(
                tokens=[common.Token(id=i, text=t, special=sp) for t, sp, i in pieces],
                model_version=model.model_version,
            )

        return self._unary(context, handle)

    def tokenize(self, request: Any, context: grpc.ServicerContext) -> tg.TokenizeResponse:
        """A bare text's own tokens: no request or message framing."""

        def handle(call: _Call) -> tg.TokenizeResponse:
            self._begin("Tokenize", call)
            model = catalogue.lookup(request.model_uri)
            if model is None:
                raise _Abort(grpc.StatusCode.INVALID_ARGUMENT, catalogue.INVALID_MODEL_URI)
            return tg.TokenizeResponse(
                tokens=[
                    common.Token(id=i, text=t, special=sp)
                    for t, sp, i in text_pieces(request.text)
                ],
                model_version=model.model_version,
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
