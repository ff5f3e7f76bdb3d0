"""The steps every call to the emulator goes through before its service answers.

:meth:`Gateway.begin` does them in the real service's order: record the call, check
the credential, spend the folder's quota, wait out the service time, take a queued
fault, validate the request with the service's wording. A refused request costs no
service time. Servicers call it first, and :meth:`Gateway.unary` to run a unary
handler with statuses and cancellations accounted for.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import grpc
from yandex.cloud.ai.foundation_models.v1.text_generation import (
    text_generation_service_pb2 as tg,
)

from . import catalogue
from .answers import Reply, compute, input_tokens_of, messages_of, options_of
from .rpc import Abort, Call, Gone, check_auth, run_unary
from .state import Fault, RecordedRequest, ServiceState
from .tools import ToolChoiceError

__all__ = ["METERED", "Gateway"]

T = TypeVar("T")

#: Methods the per-folder quota meters.
METERED = ("Completion", "AsyncCompletion")


def _prefix(folder: str, metadata: dict[str, str]) -> str:
    return catalogue.session_prefix(folder, metadata.get("x-client-request-id", ""))


def service_error(request: tg.CompletionRequest, metadata: dict[str, str], cause: str) -> Abort:
    """INVALID_ARGUMENT as the model session raises it: the cause behind the long prefix."""
    folder = catalogue.folder_of(request.model_uri)
    return Abort(grpc.StatusCode.INVALID_ARGUMENT, _prefix(folder, metadata) + cause)


class Gateway:
    """Recording, auth, quota, service time, faults and validation over one state."""

    def __init__(self, state: ServiceState) -> None:
        self.state = state

    def begin(
        self,
        method: str,
        call: Call,
        request: tg.CompletionRequest | None = None,
        *,
        auth: bool = True,
        delayed: bool = True,
        options: dict[str, object] | None = None,
    ) -> tuple[dict[str, str], Fault | None]:
        """Record, check auth and quota, wait out ``delay``, pick a fault, validate.

        Returns the call's metadata and the fault to raise later (a mid-stream one).
        """
        state = self.state
        metadata = call.metadata
        recorded = RecordedRequest(method=method, metadata=metadata, options=dict(options or {}))
        if request is not None:
            recorded.model_uri = request.model_uri
            recorded.messages = messages_of(request)
            recorded.options = options_of(request)
        state.record(recorded)
        if auth:
            check_auth(metadata, state.api_key, state.iam_token)
        if method in METERED and not state.spend_quota(
            catalogue.folder_of(request.model_uri if request is not None else "")
        ):
            raise Abort(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                catalogue.quota_exceeded(state.quota_rps or 0),
            )
        if delayed and not call.wait(state.delay):
            raise Gone
        fault = state.take_fault(method)
        if fault is not None and fault.after_chunks <= 0:
            raise self.abort_for(fault, metadata, request)
        if request is not None:
            self.validate(request, metadata)
        return metadata, fault

    def validate(self, request: tg.CompletionRequest, metadata: dict[str, str]) -> None:
        """Refuse what the real service refuses, with its wording (see .catalogue)."""
        if catalogue.lookup(request.model_uri) is None:
            raise Abort(grpc.StatusCode.INVALID_ARGUMENT, catalogue.INVALID_MODEL_URI)
        if not request.messages:
            raise service_error(request, metadata, catalogue.EMPTY_MESSAGES)
        for message in request.messages:
            if message.role not in catalogue.ROLES:
                raise service_error(request, metadata, catalogue.invalid_role(message.role))
        tokens = input_tokens_of(request)
        window = self.state.context_window
        if tokens > window:
            raise service_error(request, metadata, catalogue.too_many_tokens(window, tokens))

    @staticmethod
    def abort_for(
        fault: Fault, metadata: dict[str, str], request: tg.CompletionRequest | None = None
    ) -> Abort:
        """The status a queued fault ends its call with (credential echoed, prefix added)."""
        details = fault.details.replace("{authorization}", metadata.get("authorization", ""))
        if fault.prefixed:
            folder = catalogue.folder_of(request.model_uri) if request is not None else ""
            details = _prefix(folder, metadata) + details
        return Abort(fault.code, details)

    def reply(self, request: tg.CompletionRequest, metadata: dict[str, str]) -> Reply:
        """What the model answers: the next scripted reply, or the emulator's own."""
        try:
            return compute(request, self.state.take_script())
        except ToolChoiceError as err:
            raise service_error(request, metadata, str(err)) from err

    def unary(self, context: grpc.ServicerContext, handle: Callable[[Call], T]) -> T:
        """Run a unary handler; a client gone mid-wait counts as cancelled."""
        return run_unary(context, handle, self.state.count_cancelled)

    def handler(
        self,
        method: str,
        fn: Callable[[Any], T],
        option_names: tuple[str, ...] = (),
    ) -> Callable[[Any, grpc.ServicerContext], T]:
        """A unary gRPC method: record ``method`` (with these request fields), auth, faults.

        The dataset and batch services are plumbing, not the model: no service time.
        """

        def handle(request: Any, context: grpc.ServicerContext) -> T:
            def run(call: Call) -> T:
                options = {
                    name: getattr(request, name) for name in option_names if hasattr(request, name)
                }
                self.begin(method, call, delayed=False, options=options)
                return fn(request)

            return self.unary(context, run)

        return handle
