"""The model's own services: TextGenerationService (streamed and not), its deferred twin
TextGenerationAsyncService, and TokenizerService.

Each handler passes the :class:`~.gateway.Gateway` first (a synchronous generation
holds one of its model's concurrent slots until its last chunk); what a completion
answers is computed in :mod:`.answers`, its tokens framed by :mod:`.tokenizer`, and how
long it takes drawn from the service-time model (:mod:`.service_time`) when one is set.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from contextlib import ExitStack
from typing import Any

import grpc
from google.rpc import status_pb2
from yandex.cloud.ai.foundation_models.v1 import text_common_pb2 as common
from yandex.cloud.ai.foundation_models.v1.text_generation import (
    text_generation_service_pb2 as tg,
)
from yandex.cloud.ai.foundation_models.v1.text_generation import (
    text_generation_service_pb2_grpc as tg_grpc,
)
from yandex.cloud.operation import operation_pb2

from . import catalogue
from .answers import PARTIAL, messages_of, response, stream_texts
from .gateway import Gateway
from .rpc import Abort, Call, Gone, make_servicer, pack, timestamp_now
from .state import Fault
from .tokenizer import frame, text_pieces
from .tool_rule import tool_texts

__all__ = ["CompletionServices"]


class CompletionServices:
    """Completion (sync and deferred) and tokenization, over one gateway."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.state = gateway.state

    def add_to_server(self, server: grpc.Server) -> None:
        tg_grpc.add_TextGenerationServiceServicer_to_server(
            make_servicer(tg_grpc.TextGenerationServiceServicer, Completion=self.completion),
            server,
        )
        tg_grpc.add_TextGenerationAsyncServiceServicer_to_server(
            make_servicer(
                tg_grpc.TextGenerationAsyncServiceServicer, Completion=self.async_completion
            ),
            server,
        )
        tg_grpc.add_TokenizerServiceServicer_to_server(
            make_servicer(
                tg_grpc.TokenizerServiceServicer,
                TokenizeCompletion=self.tokenize_completion,
                Tokenize=self.tokenize,
            ),
            server,
        )

    # -- TextGenerationService -------------------------------------------------------

    def completion(
        self, request: tg.CompletionRequest, context: grpc.ServicerContext
    ) -> Iterator[tg.CompletionResponse]:
        call = Call(context)
        finished = False
        try:
            with ExitStack() as held:  # the generation slot, until the last chunk
                try:
                    metadata, fault = self.gateway.begin("Completion", call, request, held=held)
                except Gone:
                    return
                finished = yield from self._generate(request, call, metadata, fault)
        except Abort as abort:
            finished = True
            context.abort(abort.code, abort.details)
        finally:
            # A generator abandoned by gRPC (client cancelled) lands here unfinished.
            if not finished:
                self.state.count_cancelled()

    def _generate(
        self,
        request: tg.CompletionRequest,
        call: Call,
        metadata: dict[str, str],
        fault: Fault | None,
    ) -> Generator[tg.CompletionResponse, None, bool]:
        """The reply's chunks, paced by ``chunk_delay`` and the service-time model.

        Returns whether it got to the end: False when the client went away first.
        """
        reply = self.gateway.reply(request, metadata)
        stream = request.completion_options.stream and not reply.calls
        texts = stream_texts(reply.text, reply.chunks) if stream else [reply.text]
        pace = self.state.draw_pace()
        sent_tokens = 0
        for i, text in enumerate(texts):
            if fault is not None and i == fault.after_chunks:
                raise self.gateway.abort_for(fault, metadata, request)
            last = i == len(texts) - 1
            chunk = response(reply, text, reply.status if last else PARTIAL)
            wait = self.state.chunk_delay if i else 0.0
            if pace is not None:
                tokens = chunk.usage.completion_tokens
                wait += (0.0 if i else pace.first_token) + (tokens - sent_tokens) * pace.per_token
                sent_tokens = tokens
            if wait and not call.wait(wait):
                return False
            yield chunk
        if fault is not None:
            raise self.gateway.abort_for(fault, metadata, request)
        return True

    # -- TextGenerationAsyncService --------------------------------------------------

    def async_completion(
        self, request: tg.CompletionRequest, context: grpc.ServicerContext
    ) -> operation_pb2.Operation:
        return self.gateway.unary(context, lambda call: self._defer(request, call))

    def _defer(self, request: tg.CompletionRequest, call: Call) -> operation_pb2.Operation:
        """Answer now, store the result as an operation that finishes after some polls."""
        metadata, fault = self.gateway.begin("AsyncCompletion", call, request)
        reply = self.gateway.reply(request, metadata)
        now = timestamp_now()
        created = operation_pb2.Operation(
            id=self.state.next_operation_id(),
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
            abort = self.gateway.abort_for(fault, metadata, request)
            error = status_pb2.Status(code=abort.code.value[0], message=abort.details)
            finished.error.CopyFrom(error)
            seconds = 0.0
        else:
            result = response(reply, reply.text, reply.status)
            finished.response.CopyFrom(pack(result))
            pace = self.state.draw_pace()
            seconds = pace.total(result.usage.completion_tokens) if pace is not None else 0.0
        folder = catalogue.folder_of(request.model_uri)
        self.state.add_deferred(created, finished, folder=folder, seconds=seconds)
        return created

    # -- TokenizerService ------------------------------------------------------------

    def tokenize_completion(
        self, request: tg.CompletionRequest, context: grpc.ServicerContext
    ) -> tg.TokenizeResponse:
        def handle(call: Call) -> tg.TokenizeResponse:
            self.gateway.begin("TokenizeCompletion", call, request)
            model = catalogue.lookup(request.model_uri)
            assert model is not None, "validated in begin"
            pieces = frame(messages_of(request), tool_texts(request))
            return tg.TokenizeResponse(
                tokens=[common.Token(id=i, text=t, special=sp) for t, sp, i in pieces],
                model_version=model.model_version,
            )

        return self.gateway.unary(context, handle)

    def tokenize(self, request: Any, context: grpc.ServicerContext) -> tg.TokenizeResponse:
        """A bare text's own tokens: no request or message framing."""

        def handle(call: Call) -> tg.TokenizeResponse:
            self.gateway.begin("Tokenize", call, folder=catalogue.folder_of(request.model_uri))
            model = catalogue.lookup(request.model_uri)
            if model is None:
                raise Abort(grpc.StatusCode.INVALID_ARGUMENT, catalogue.INVALID_MODEL_URI)
            return tg.TokenizeResponse(
                tokens=[
                    common.Token(id=i, text=t, special=sp) for t, sp, i in text_pieces(request.text)
                ],
                model_version=model.model_version,
            )

        return self.gateway.unary(context, handle)
