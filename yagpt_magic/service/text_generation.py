"""The Text Generation API over gRPC: a ``Backend`` (``core/backend.py``) through the SDK.

The only module that imports the SDK, and only when the first request is made.

The backend runs the SDK's async API on an event loop thread of its own. Callers in
any thread (the kernel's main thread, a widget worker) wait on a queue in short
slices, so a KeyboardInterrupt or a Stop button cancels the RPC at once; the SDK's
sync wrappers block in a way that leaves the RPC running after an interrupt.
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import threading
import time
import warnings
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import asyncio

from ..core.backend import Reply, ReplyStatus, Request, RequestOptions, ToolDefinition
from ..core.conversation import Message, Usage
from ..core.errors import ChatError, Interrupted, ServiceError, scrubbed_cause
from ..core.images import Image
from ..core.models import name_and_version
from .connection import Connection
from .failures import failure, status_error

#: The name this API goes by in ``Backend.api``, the model table and a turn's metadata.
API = "text-generation"

_SDK_LOGGERS = ("yandex_cloud_ml_sdk", "yandex_ai_studio_sdk")
_POLL = 0.05
#: How long a stream may run in all; ``timeout`` bounds only the wait for its start.
_STREAM_DEADLINE = 600.0

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


def import_sdk() -> Any:
    """Import the SDK quietly: no deprecation warning, no TRACE logging."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import yandex_cloud_ml_sdk
    for name in _SDK_LOGGERS:
        logger = logging.getLogger(name)
        logger.setLevel(logging.WARNING)
        logger.propagate = False
    return yandex_cloud_ml_sdk


class TextGenerationBackend:
    """The Text Generation API for one ``Connection``: a ``core.backend.Backend``."""

    api = API

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._sdk: Any = None
        self._models: dict[tuple[Any, ...], Any] = {}
        self._lock = threading.Lock()

    # -- lifecycle -----------------------------------------------------------------
    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        import asyncio  # not at import time: it costs %load_ext ~20 ms outside a kernel

        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(
                    target=loop.run_forever, name="yagpt-magic-backend", daemon=True
                )
                thread.start()
                self._loop, self._thread = loop, thread
            return self._loop

    def close(self) -> None:
        """Stop the loop thread; nothing of the backend stays behind."""
        loop, thread = self._loop, self._thread
        self._loop = self._thread = None
        if loop is None or thread is None:
            return
        import asyncio

        async def shutdown() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        with contextlib.suppress(Exception):  # closing must never fail an unload
            asyncio.run_coroutine_threadsafe(shutdown(), loop).result(timeout=2)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=2)
        loop.close()

    def _make_sdk(self) -> Any:
        sdk_module = import_sdk()
        from yandex_cloud_ml_sdk import auth as sdk_auth
        from yandex_cloud_ml_sdk.retry import RetryPolicy

        cred = self.connection.credential
        auth: Any
        if cred.kind == "api_key":
            auth = sdk_auth.APIKeyAuth(cred.value)
        elif cred.kind == "iam_token":
            auth = sdk_auth.IAMTokenAuth(cred.value)
        elif cred.kind == "oauth_token":
            auth = sdk_auth.OAuthTokenAuth(cred.value)
        else:
            auth = sdk_auth.YandexCloudCLIAuth(yc_profile=cred.value)
        kwargs: dict[str, Any] = {
            "folder_id": self.connection.folder_id,
            "auth": auth,
            "retry_policy": RetryPolicy(max_attempts=1),
            "enable_server_data_logging": self.connection.data_logging,
        }
        if self.connection.endpoint:
            kwargs["endpoint"] = self.connection.endpoint
        if self.connection.insecure:
            kwargs["verify"] = False
        return sdk_module.AsyncYCloudML(**kwargs)

    @staticmethod
    def _key(options: RequestOptions) -> tuple[Any, ...]:
        return (options.model, options.model_version, options.temperature, options.max_tokens,
                options.reasoning_mode, options.tools, options.tool_choice,
                options.response_format)

    def _model(self, options: RequestOptions) -> Any:
        key = self._key(options)
        model = self._models.get(key)
        if model is None:
            if self._sdk is None:
                self._sdk = self._make_sdk()
            name, version = name_and_version(options.model, options.model_version)
            base = self._sdk.models.completions(name, model_version=version)
            config: dict[str, Any] = {}
            if options.temperature is not None:
                config["temperature"] = options.temperature
            if options.max_tokens is not None:
                config["max_tokens"] = options.max_tokens
            if options.reasoning_mode:
                config["reasoning_mode"] = options.reasoning_mode
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
        return self._sdk.tools.function(json.loads(tool.parameters), **kwargs)

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
        tool_calls: Any = ToolCallList._from_proto(proto=proto, sdk=self._sdk)
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
                async for result in model.run_stream(sent, timeout=_STREAM_DEADLINE):
                    put(result)
            else:
                put(await model.run(sent, timeout=timeout))

        # closing(): an interrupt inside on_text must cancel the RPC now, not when the
        # traceback that holds this generator is finally collected.
        stream = self._drive(produce, cancel=cancel, first_timeout=timeout, started=started)
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

        (tokens,) = self._drive(produce, first_timeout=self.connection.timeout)
        return len(tokens)

    # -- many requests (bulk/ runs its own coroutines on the loop) ----------------------
    def sdk(self) -> Any:
        """The ``AsyncYCloudML`` client; use it only from coroutines run by ``drive``."""
        if self._sdk is None:
            self._sdk = self._make_sdk()
        return self._sdk

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

    def context_start(self, thread: str, index: int) -> int | None:
        """A live request's context is fitted afresh: no recorded start."""
        return None

    def recorded_images(self, thread: str, index: int) -> tuple[Image, ...]:
        """A live request sends the images it is given: none recorded."""
        return ()

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

    def drive(
        self,
        produce: Callable[[Callable[[Any], None]], Any],
        *,
        cancel: threading.Event | None = None,
    ) -> Generator[Any, None, None]:
        """Run ``produce(put)`` on the loop and yield what it puts, interruptibly.

        A KeyboardInterrupt (or ``cancel``) in the caller's thread cancels the coroutine
        and everything it awaits; ``produce`` must send its first item at once.
        """
        return self._drive(produce, cancel=cancel, first_timeout=float("inf"))

    def _drive(
        self,
        produce: Callable[[Callable[[Any], None]], Any],
        *,
        cancel: threading.Event | None = None,
        first_timeout: float,
        started: float | None = None,
    ) -> Any:
        """Run ``produce`` on the loop; yield what it puts, interruptibly, in this thread."""
        import asyncio

        loop = self._ensure_loop()
        items: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()
        finished = threading.Event()
        done = object()

        async def runner() -> None:
            try:
                await produce(lambda item: items.put(("item", item)))
                items.put(("done", done))
            except asyncio.CancelledError:
                raise
            except BaseException as err:  # noqa: BLE001 - handed to the caller's thread
                items.put(("error", err))
            finally:
                finished.set()

        future = asyncio.run_coroutine_threadsafe(runner(), loop)
        started = time.monotonic() if started is None else started
        got_any = False
        try:
            while True:
                try:
                    kind, value = items.get(timeout=_POLL)
                except queue.Empty:
                    if cancel is not None and cancel.is_set():
                        raise Interrupted("stopped") from None
                    if not got_any and time.monotonic() - started > first_timeout:
                        raise status_error("DEADLINE_EXCEEDED", "", replace(
                            self.connection, timeout=first_timeout)) from None
                    continue
                if kind == "item":
                    got_any = True
                    yield value
                elif kind == "error":
                    raise failure(value, self.connection) from scrubbed_cause(
                        value, self.connection.secrets)
                else:
                    return
        finally:
            if not finished.is_set():
                future.cancel()
                finished.wait(timeout=1.0)
