"""The OpenAI-compatible API (HTTP, the SDK's ``chat`` domain) behind the ``Backend`` seam.

AI Studio serves Qwen3, gpt-oss and Gemma only here (``core.models``). A thread's
neutral messages become the API's own (``content``, an assistant message's
``tool_calls`` with ids, one ``tool`` message per result with its ``tool_call_id``), the
request options become the chat model's ``configure`` arguments (``reasoning_effort``,
``response_format`` with a schema name), and the SDK's results become one ``Reply``.

The SDK turns the API's increments into a growing prefix (``result.text``), so the
display gets the whole text so far, as on the Text Generation API. The API has no
tokenizer call: ``count`` says None, and fitting works from usage and byte bounds.
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from ..core.backend import Reply, ReplyStatus, Request, RequestOptions, ToolDefinition
from ..core.conversation import Message, Usage, message_images
from ..core.errors import ConfigProblem, ServiceError, scrubbed_cause
from ..core.images import message_content
from ..core.models import OPENAI_COMPATIBLE, name_and_version, parse_model, reasoning_value
from .connection import Connection
from .failures import failure
from .sdk_loop import STREAM_DEADLINE, SDKLoop

API = OPENAI_COMPATIBLE

#: The SDK's ``AlternativeStatus`` names of a finished choice (PARTIAL and USAGE are not).
_ENDINGS: dict[str, ReplyStatus] = {
    "FINAL": "final", "TRUNCATED_FINAL": "truncated", "CONTENT_FILTER": "filtered",
    "TOOL_CALLS": "tool_calls",
}
#: What the API takes as a ``json_schema`` name.
_SCHEMA_NAME = re.compile(r"[^A-Za-z0-9_-]+")


def call_ids(calls: Sequence[dict[str, Any]]) -> list[str]:
    """The ids of one assistant message's calls: as recorded, else made up, all distinct.

    A call made on the Text Generation API has no id; YandexGPT's own ids on this API
    are the function's name, so a missing id is the name (``name_2`` for a repeat).
    """
    ids: list[str] = []
    for call in calls:
        given = str(call.get("id") or "")
        base = given or str(call.get("name") or "call")
        made, n = base, 1
        while made in ids:
            n += 1
            made = f"{base}_{n}"
        ids.append(made)
    return ids


def chat_messages(messages: Sequence[Message]) -> list[dict[str, Any]]:
    """A thread's messages as the chat API takes them (the SDK passes these dicts on as is).

    A tool round is an assistant message whose ``tool_calls`` carry ids and JSON-text
    arguments, then one ``tool`` message per result naming the call it answers. Results
    are matched to calls by position, as the round stored them.
    """
    out: list[dict[str, Any]] = []
    ids: list[str] = []
    for message in messages:
        if "tool_calls" in message:
            calls = list(message["tool_calls"])
            ids = call_ids(calls)
            out.append({"role": "assistant", "tool_calls": [
                {"id": call_id, "type": "function",
                 "function": {"name": call["name"],
                              "arguments": json.dumps(call["arguments"], ensure_ascii=False)}}
                for call_id, call in zip(ids, calls)]})
        elif "tool_results" in message:
            results = list(message["tool_results"])
            given = call_ids(results) if any(r.get("id") for r in results) else ids
            for n, result in enumerate(results):
                call_id = given[n] if n < len(given) else call_ids(results)[n]
                out.append({"role": "tool", "tool_call_id": call_id,
                            "content": str(result["content"])})
        else:
            out.append({"role": message["role"], "content": content(message)})
    return out


def content(message: Message) -> Any:
    """A message's ``content``: its text, or a list of parts where text alone will not do.

    A user message's images go as data-URL parts after its text (``core.images``). An
    empty text goes as one empty text part: the SDK refuses a message dict whose text
    is empty (it cannot tell it from a malformed one).
    """
    text = str(message.get("text", ""))
    found = message_content(text, message_images(message))
    return found if found else [{"type": "text", "text": ""}]


def schema_format(value: str | None) -> Any:
    """``RequestOptions.response_format`` as the chat model's ``response_format``.

    The chat domain requires a schema name; a schema's ``title`` (pydantic sets it)
    gives one, else ``reply``.
    """
    if not value:
        return None
    if value == "json":
        return "json"
    schema = json.loads(value)
    title = schema.get("title") if isinstance(schema, dict) else None
    name = _SCHEMA_NAME.sub("_", str(title or "reply"))[:64] or "reply"
    return {"name": name, "json_schema": schema, "strict": True}


def chat_config(options: RequestOptions, tool: Any) -> dict[str, Any]:
    """The ``configure`` arguments for ``options``; ``tool`` builds the SDK's function tool."""
    config: dict[str, Any] = {}
    if options.temperature is not None:
        config["temperature"] = options.temperature
    if options.max_tokens is not None:
        config["max_tokens"] = options.max_tokens
    effort = reasoning_value(options.model, options.reasoning_mode)
    if effort:
        config["reasoning_mode"] = effort
    if options.tools:
        config["tools"] = [tool(definition) for definition in options.tools]
    if options.tool_choice:
        config["tool_choice"] = options.tool_choice
    formatted = schema_format(options.response_format)
    if formatted is not None:
        config["response_format"] = formatted
    return config


def function_tool(sdk: Any, definition: ToolDefinition) -> Any:
    """The SDK's function tool for a ``ToolDefinition`` (its schema is JSON text)."""
    kwargs: dict[str, Any] = {"name": definition.name}
    if definition.description:
        kwargs["description"] = definition.description
    return sdk.tools.function(json.loads(definition.parameters), **kwargs)


def reply_status(results: Sequence[Any], usage: Usage, max_tokens: int | None) -> ReplyStatus:
    """How the reply ended, from the last choice that says so.

    The SDK yields no chunk for an ending that brings no text (``delta: {}`` with
    ``finish_reason: length``): a stream that never said ``stop`` yet used every token
    it was allowed was cut.
    """
    for result in reversed(results):
        ended = _ENDINGS.get(result.status.name)
        if ended is not None:
            return ended
    if max_tokens and usage.completion_tokens >= max_tokens:
        return "truncated"
    return "final"


def reply_usage(results: Sequence[Any], text: str) -> Usage:
    """The usage the API reported (the last chunk that has one), as the thread keeps it.

    The API reports reasoning and answer tokens together as ``completion_tokens``. A
    reply that reasoned counts them all as reasoning: the answer's own tokens are then
    unknown (``Turn.reply_tokens`` is 0), so fitting bounds the reply by its bytes and
    never takes reasoning it did not send back for part of the context.
    """
    raw = next((r.usage for r in reversed(results) if r.usage is not None), None)
    if raw is None:
        return Usage()
    reasoned = any(getattr(r, "reasoning_text", None) for r in results)
    completion = raw.completion_tokens
    return Usage(raw.input_text_tokens, completion, completion if reasoned else 0,
                 raw.total_tokens)


def reply_calls(result: Any) -> tuple[tuple[tuple[str, dict[str, Any]], ...], tuple[str, ...]]:
    """(name, arguments) of each call a result asks for, and each call's id, in order."""
    calls: list[tuple[str, dict[str, Any]]] = []
    ids: list[str] = []
    for call in result.tool_calls or ():
        if call.function is None:
            continue
        arguments = call.function.arguments
        calls.append((call.function.name,
                      dict(arguments) if isinstance(arguments, dict) else {"value": arguments}))
        ids.append(call.id or "")
    return tuple(calls), tuple(ids)


def chat_reply(results: Sequence[Any], model_uri: str, options: RequestOptions) -> Reply:
    """One ``Reply`` from the SDK's results of a request (one, or a stream's chunks)."""
    last = results[-1]
    with_calls = next((r for r in reversed(results) if r.tool_calls), last)
    text = next((r.text for r in reversed(results) if r.text), "")
    usage = reply_usage(results, text)
    calls, ids = reply_calls(with_calls)
    # The API names the model it ran (``gpt://NAME/VERSION``).
    version = parse_model(str(getattr(last, "model", "") or "")).version or options.model_version
    return Reply(
        text=text,
        status=reply_status(results, usage, options.max_tokens),
        usage=usage,
        model_uri=model_uri,
        model_version=version,
        tool_calls=calls,
        call_ids=ids,
        api=API,
    )


#: Refusals whose cause is in the body (a stream's refusal comes with none: see complete).
_CAUSE_IN_BODY = (400, 404, 413, 422)


def unread_refusal(err: BaseException) -> bool:
    """A refused stream whose body the SDK never read (``raise_for_status`` inside
    ``client.stream``): the status is known, the cause the service gave is not."""
    response = getattr(err, "response", None)
    status = getattr(response, "status_code", 0)
    if status not in _CAUSE_IN_BODY:
        return False
    try:
        body = response.content  # type: ignore[union-attr]
    except Exception:  # noqa: BLE001 - httpx.ResponseNotRead: it never was read
        return True
    return not body


#: How failures name the API's address when the SDK picks it.
SDK_DEFAULT = "llm.api.cloud.yandex.net/v1 (SDK default)"


def no_address(err: BaseException, connection: Connection) -> ConfigProblem | None:
    """The SDK knows this API's address only for Yandex Cloud's own endpoints: with a
    custom ``endpoint`` and no ``chat_endpoint`` it raises a RuntimeError, which reads
    better as what to set."""
    if not isinstance(err, RuntimeError) or "endpoints discovery" not in str(err):
        return None
    return ConfigProblem(
        f"The OpenAI-compatible API's address is not known for the endpoint "
        f"{connection.shown_endpoint}: set %config ChatMagics.chat_endpoint (or env "
        "YAGPT_CHAT_ENDPOINT) to its base URL, e.g. https://HOST/v1/."
    )


class OpenAICompatibleBackend(SDKLoop):
    """The OpenAI-compatible API for one ``Connection``: a ``core.backend.Backend``."""

    api: str = API

    def __init__(self, connection: Connection) -> None:
        super().__init__(connection)
        self._models: dict[RequestOptions, Any] = {}
        self.reported = replace(connection, endpoint=connection.chat_endpoint or SDK_DEFAULT)

    def _model(self, options: RequestOptions) -> Any:
        """The configured async chat model for ``options`` (built once per options)."""
        key = replace(options, stream=False)
        model = self._models.get(key)
        if model is None:
            sdk = self.sdk()
            name, version = name_and_version(options.model, options.model_version)
            base = sdk.chat.completions(name, model_version=version)
            model = base.configure(**chat_config(options, lambda d: function_tool(sdk, d)))
            self._models[key] = model
        return model

    def count(self, messages: Sequence[Message], options: RequestOptions) -> int | None:
        """None: the API has no tokenizer call (fitting works from usage and bounds)."""
        return None

    def complete(
        self,
        request: Request,
        *,
        on_text: Callable[[str], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> Reply:
        """One completion, streamed when ``options.stream``. Raises ``ChatError``s.

        The SDK reads no body of a refused stream, so the service's cause of a 4xx
        (``number of input tokens must be no more than…``) would be lost; the same
        request is then sent once unstreamed, which the service refuses the same way
        and with its cause (a refusal generates nothing). Should it answer instead, that
        answer is the reply.
        """
        options = request.options
        sent = chat_messages(request.messages)
        results: list[Any] = []
        timeout = self.connection.timeout
        started = time.monotonic()

        async def produce(put: Callable[[Any], None]) -> None:
            model = self._model(options)
            streamed = False
            try:
                if not options.stream:
                    put(await model.run(sent, timeout=timeout))
                    return
                async for result in model.run_stream(sent, timeout=STREAM_DEADLINE):
                    streamed = True
                    put(result)
            except Exception as err:
                unknown = no_address(err, self.connection)
                if unknown is not None:
                    raise unknown from None
                if streamed or not options.stream or not unread_refusal(err):
                    raise
                put(await model.run(sent, timeout=timeout))

        # closing(): an interrupt inside on_text must cancel the request now, not when
        # the traceback that holds this generator is finally collected.
        stream = self.run(produce, cancel=cancel, first_timeout=timeout, started=started)
        with contextlib.closing(stream):
            for result in stream:
                results.append(result)
                if on_text is not None and options.stream and result.text:
                    on_text(result.text)
        if not results:
            raise ServiceError("The service sent no answer. Run the cell again.", code="EMPTY")
        return chat_reply(results, self._model(options).uri, options)

    async def complete_async(self, messages: Sequence[Message], options: RequestOptions) -> Reply:
        """One unstreamed completion, awaited on the loop (inside ``drive``)."""
        try:
            model = self._model(options)
            result = await model.run(chat_messages(messages), timeout=self.connection.timeout)
        except Exception as err:  # noqa: BLE001 - every failure leaves as a ChatError
            raise failure(no_address(err, self.connection) or err, self.reported) from \
                scrubbed_cause(err, self.connection.secrets)
        return chat_reply([result], model.uri, options)
