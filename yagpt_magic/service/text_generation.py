"""The Text Generation API over gRPC: a ``Backend`` (``core/backend.py``) through the SDK.

The SDK client and the loop thread it runs on are ``sdk_loop.SDKLoop``'s; this module
is what the gRPC API adds: its completions model, its tool-call messages, its tokenizer.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ..core.backend import Reply, ReplyStatus, Request, RequestOptions, ToolDefinition
from ..core.conversation import Message, Usage
from ..core.errors import ChatError, ServiceError, scrubbed_cause
from ..core.models import TEXT_GENERATION, name_and_version, reasoning_value
from .connection import Connection
from .failures import failure
from .sdk_loop import STREAM_DEADLINE, SDKLoop, import_sdk

__all__ = ["API", "STATUS_NAMES", "TextGenerationBackend", "import_sdk", "reply_from"]

#: The name this API goes by in ``Backend.api``, the model table and a turn's metadata.
API = TEXT_GENERATION

STATUS_NAMES: dict[str, ReplyStatus] = {
    "FINAL": "final", "TRUNCATED_FINAL": "truncated", "CONTENT_FILTER": "filtered",
    "TOOL_CALLS": "tool_calls",
}


@dataclass(frozen=True)
class _ToolCallsMessage:
    """An assistant message carrying tool calls, in the shape the SDK sends as one.

    The SDK sends a ``toolCallList`` only from a message object with ``tool_calls``
    (a result's alternative); a stored turn has plain data, so this rebuilds one.
    """

    role: str
    text: str
    tool_calls: Any


def reply_from(result: Any, usage: Any, model_uri: str,
               calls: tuple[tuple[str, dict[str, Any]], ...] = ()) -> Reply:
    """A ``Reply`` from the SDK's result (its text, status, version) and the usage to keep."""
    return Reply(
        text=result.text,
        status=STATUS_NAMES.get(result.status.name, "final"),
        usage=Usage(usage.input_text_tokens, usage.completion_tokens,
                    getattr(usage, "reasoning_tokens", 0), usage.total_tokens),
        model_uri=model_uri,
        model_version=result.model_version,
        tool_calls=calls,
        api=API,
    )


class TextGenerationBackend(SDKLoop):
    """The Text Generation API for one ``Connection``: a ``core.backend.Backend``."""

    api: str = API

    def __init__(self, connection: Connection) -> None:
        super().__init__(connection)
        self._models: dict[tuple[Any, ...], Any] = {}

    @staticmethod
    def _key(options: RequestOptions) -> tuple[Any, ...]:
        return (options.model, options.model_version, options.temperature, options.max_tokens,
                options.reasoning_mode, options.tools, options.tool_choice,
                options.response_format)

    def _model(self, options: RequestOptions) -> Any:
        key = self._key(options)
        model = self._models.get(key)
        if model is None:
            name, version = name_and_version(options.model, options.model_version)
            base = self.sdk().models.completions(name, model_version=version)
            config: dict[str, Any] = {}
            if options.temperature is not None:
                config["temperature"] = options.temperature
            if options.max_tokens is not None:
                config["max_tokens"] = options.max_tokens
            reasoning = reasoning_value(options.model, options.reasoning_mode)
            if reasoning:
                config["reasoning_mode"] = reasoning
            if options.tools:
                config["tools"] = [self._function_tool(tool) for tool in options.tools]
            if options.tool_choice:
                config["tool_choice"] = options.tool_choice
            if options.response_format == "json":
                config["response_format"] = "json"
            elif options.response_format:
                config["response_format"] = {"json_schema": json.loads(options.response_format),
                                             "strict": True}
            model = base.configure(**config)
            self._models[key] = model
        return model

    def _function_tool(self, tool: ToolDefinition) -> Any:
        kwargs = {"name": tool.name}
        if tool.description:
            kwargs["description"] = tool.description
        return self.sdk().tools.function(json.loads(tool.parameters), **kwargs)

    def _sdk_messages(self, messages: Sequence[Message]) -> list[Any]:
        """Messages as the SDK takes them: tool calls as a message object, results as dicts."""
        out: list[Any] = []
        for message in messages:
            if "tool_calls" in message:
                out.append(self._calls_message(message))
            elif "tool_results" in message:
                out.append({"role": message["role"],
                            "tool_results": [dict(r) for r in message["tool_results"]]})
            else:
                out.append(message)
        return out

    def _calls_message(self, message: Message) -> _ToolCallsMessage:
        from google.protobuf.struct_pb2 import Struct
        from yandex.cloud.ai.foundation_models.v1 import text_common_pb2 as common
        from yandex_ai_studio_sdk._tools.tool_call_list import ToolCallList

        calls = []
        for call in message["tool_calls"]:
            arguments = Struct()
            arguments.update(call["arguments"])
            calls.append(common.ToolCall(
                function_call=common.FunctionCall(name=call["name"], arguments=arguments)))
        proto = common.ToolCallList(tool_calls=calls)
        # The SDK's own constructor for a result's call list; no public one takes data.
        tool_calls: Any = ToolCallList._from_proto(proto=proto, sdk=self.sdk())
        return _ToolCallsMessage(message["role"], "", tool_calls)

    # -- requests ------------------------------------------------------------------
    def complete(
        self,
        request: Request,
        *,
        on_text: Callable[[str], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> Reply:
        """One completion; streamed when ``options.stream``. Raises ``ChatError``s."""
        messages, options = request.messages, request.options
        results: list[Any] = []
        started = time.monotonic()
        timeout = self.connection.timeout

        async def produce(put: Callable[[Any], None]) -> None:
            model = self._model(options)
            sent = self._sdk_messages(messages)
            if options.stream:
                async for result in model.run_stream(sent, timeout=STREAM_DEADLINE):
                    put(result)
            else:
                put(await model.run(sent, timeout=timeout))

        # closing(): an interrupt inside on_text must cancel the RPC now, not when the
        # traceback that holds this generator is finally collected.
        stream = self.run(produce, cancel=cancel, first_timeout=timeout, started=started)
        with contextlib.closing(stream):
            for result in stream:
                results.append(result)
                if on_text is not None and options.stream:
                    on_text(result.text)
        if not results:
            raise ServiceError("The service sent no answer. Run the cell again.", code="EMPTY")
        last = results[-1]
        usage = next((r.usage for r in reversed(results) if r.usage.total_tokens), last.usage)
        model = self._models[self._key(options)]
        calls = tuple(
            (call.function.name, dict(call.function.arguments))
            for call in (last.tool_calls or ()) if call.function is not None
        )
        return reply_from(last, usage, model.uri, calls)

    def count(self, messages: Sequence[Message], options: RequestOptions) -> int:
        """Tokens of a message list, by the model's own tokenizer."""

        async def produce(put: Callable[[Any], None]) -> None:
            model = self._model(options)
            sent = self._sdk_messages(messages)
            put(await model.tokenize(sent, timeout=self.connection.timeout))

        (tokens,) = self.run(produce, first_timeout=self.connection.timeout)
        return len(tokens)

    # -- many requests (bulk/ runs its own coroutines on the loop) ----------------------
    def model(self, options: RequestOptions) -> Any:
        """The configured async completions model for ``options`` (built once)."""
        return self._model(options)

    async def complete_async(self, messages: Sequence[Message], options: RequestOptions) -> Reply:
        """One non-streamed completion, awaited on the loop (inside ``drive``)."""
        try:
            model = self._model(options)
            result = await model.run(self._sdk_messages(messages),
                                     timeout=self.connection.timeout)
        except Exception as err:  # noqa: BLE001 - every failure leaves as a ChatError
            raise failure(err, self.connection) from scrubbed_cause(err, self.connection.secrets)
        return reply_from(result, result.usage, model.uri)

    def translate(self, err: BaseException) -> ChatError:
        """A raw SDK failure (of an operation ``bulk/`` awaits itself) as a ``ChatError``."""
        return failure(err, self.connection)

    async def batch_progress(self, operation_id: str) -> tuple[int, int] | None:
        """(completed, total) batches of a batch task, from its operation's metadata.

        The SDK's task object reports only the status; the counts are in the
        operation's ``BatchCompletionMetadata``, read through the SDK's operation
        class (not public API: None when it moves, and the bar shows the status only).
        """
        try:
            from yandex.cloud.ai.foundation_models.v1.text_generation import (
                text_generation_service_pb2 as tg,
            )
            from yandex_ai_studio_sdk._types.operation import AsyncOperation

            operation = AsyncOperation(sdk=self.sdk(), id=operation_id, result_type=object,
                                       proto_result_type=None)
            status = await operation.get_status(timeout=self.connection.timeout)
            metadata = tg.BatchCompletionMetadata()
            if status.metadata is None or not status.metadata.Unpack(metadata):
                return None
            return metadata.completed_batches, metadata.total_batches
        except (ImportError, AttributeError, TypeError):
            return None
