"""The steps every call to the emulator goes through before its service answers.

:meth:`Gateway.begin` does them in the real service's order: record the call, check
the credential, spend the folder's quotas (the optional ``quota_rps`` and the documented
rate limits of :mod:`.limits`), take a generation slot (at most ``concurrent_generations``
synchronous generations per model), wait out ``delay``, take a queued fault, validate
the request with the service's wording. A refused request costs no service time.
Servicers call it first, and :meth:`Gateway.unary` to run a unary handler with
statuses and cancellations accounted for.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import ExitStack
from typing import Any, TypeVar

import grpc
from yandex.cloud.ai.foundation_models.v1.text_generation import (
    text_generation_service_pb2 as tg,
)

from . import catalogue
from .answers import Reply, compute, input_tokens_of, messages_of, options_of
from .limits import SECONDS_PER_HOUR
from .rpc import Abort, Call, Gone, check_auth, run_unary
from .state import Fault, RecordedRequest, ServiceState
from .tool_rule import ToolChoiceError

__all__ = ["METERED", "Gateway"]

T = TypeVar("T")

#: Methods the per-folder quota (``quota_rps``) meters.
METERED = ("Completion", "AsyncCompletion")

#: The documented rate limits (fields of .limits.Limits) each method spends.
RATED = {
    "AsyncCompletion": ("async_submit_rps", "async_submit_per_hour"),
    "OperationGet": ("operation_poll_rps",),
    "TokenizeCompletion": ("tokenizer_rps",),
    "Tokenize": ("tokenizer_rps",),
}


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
        folder: str | None = None,
        held: ExitStack | None = None,
    ) -> tuple[dict[str, str], Fault | None]:
        """Record, check auth, spend quotas, hold a slot, wait out ``delay``, pick a fault,
        validate. Returns the call's metadata and the fault to raise later (mid-stream).

        ``folder`` is whose quotas a call without a CompletionRequest spends; with
        ``held``, a generation takes one of its model's concurrent slots until ``held``
        closes (the caller's ``with ExitStack()`` spans the whole generation).
        """
        state = self.state
        metadata = call.metadata
        recorded = RecordedRequest(method=method, metadata=metadata, options=dict(options or {}))
        if request is not None:
            recorded.model_uri = request.model_uri
            recorded.messages = messages_of(request)
            recorded.options = options_of(request)
            folder = catalogue.folder_of(request.model_uri)
        state.record(recorded)
        if auth:
            check_auth(metadata, state.api_key, state.iam_token)
        self._charge(method, folder or "", recorded.options)
        if held is not None and request is not None:
            self._hold_generation(request, held)
        if delayed and not call.wait(state.delay):
            raise Gone
        fault = state.take_fault(method)
        if fault is not None and fault.after_chunks <= 0:
            raise self.abort_for(fault, metadata, request)
        if request is not None:
            self.validate(request, metadata)
        return metadata, fault

    def _charge(self, method: str, folder: str, options: dict[str, object]) -> None:
        """Spend the folder's quotas for ``method``; RESOURCE_EXHAUSTED when one is out."""
        state = self.state
        if method in METERED and not state.spend_quota(folder):
            raise Abort(
                grpc.StatusCode.RESOURCE_EXHAUSTED, catalogue.quota_exceeded(state.quota_rps or 0)
            )
        if method == "OperationGet":
            # The poll quota is the async mode's: Gets of deferred completions only.
            owner = state.deferred_folder(str(options.get("operation_id", "")))
            if owner is None:
                return
            folder = owner
        for name in RATED.get(method, ()):
            allowed = getattr(state.limits, name)
            if allowed is None:
                continue
            if name == "async_submit_per_hour":
                ok = state.limiter.take(name, folder, allowed / SECONDS_PER_HOUR, allowed)
            else:
                ok = state.limiter.take(name, folder, allowed)
            if not ok:
                raise Abort(
                    grpc.StatusCode.RESOURCE_EXHAUSTED, catalogue.limit_exceeded(name, allowed)
                )

    def _hold_generation(self, request: tg.CompletionRequest, held: ExitStack) -> None:
        """Take one of the model's concurrent-generation slots until ``held`` closes."""
        limit = self.state.limits.concurrent_generations
        model = catalogue.lookup(request.model_uri)
        if limit is None or model is None:  # an unknown model is refused by validate()
            return
        limiter = self.state.limiter
        scope = f"{model.folder}/{model.name}"
        if not limiter.enter("concurrent_generations", scope, limit):
            raise Abort(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                catalogue.limit_exceeded("concurrent_generations", limit),
            )
        held.callback(limiter.leave, scope)

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
