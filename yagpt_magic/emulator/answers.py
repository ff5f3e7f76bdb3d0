"""What a completion answers: text, tool calls or JSON, with the usage the service reports.

The shapes follow the recordings (tests/real_traffic): the unary call answers in one
message; a stream sends the cumulative text with usage in *every* chunk
(``inputTextTokens`` constant, ``completionTokens`` the tokens so far), all chunks
``PARTIAL`` but the last; a tool-call reply is one message, status ``TOOL_CALLS``, no
text; ``model_version`` is the catalogue's date, and ``completion_tokens_details`` is
present (empty) only for the 2025 models that report it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from google.protobuf import json_format, struct_pb2
from yandex.cloud.ai.foundation_models.v1 import text_common_pb2 as common
from yandex.cloud.ai.foundation_models.v1.text_generation import (
    text_generation_service_pb2 as tg,
)

from . import catalogue
from .replies import digest_of, reply_for, reply_with_results
from .schema_values import object_reply, value_for
from .tokenizer import count_tokens, tokenize_text
from .tool_rule import Call, calls_for, results_after_request, tool_texts

STATUSES: dict[str, common.Alternative.AlternativeStatus.ValueType] = {
    "FINAL": common.Alternative.ALTERNATIVE_STATUS_FINAL,
    "TRUNCATED_FINAL": common.Alternative.ALTERNATIVE_STATUS_TRUNCATED_FINAL,
    "CONTENT_FILTER": common.Alternative.ALTERNATIVE_STATUS_CONTENT_FILTER,
}
PARTIAL = common.Alternative.ALTERNATIVE_STATUS_PARTIAL
TOOL_CALLS = common.Alternative.ALTERNATIVE_STATUS_TOOL_CALLS

# The recorded stream sends a chunk every 11-16 completion tokens.
_TOKENS_PER_CHUNK = 12


@dataclass
class Script:
    """A reply queued by a test: a text (``reply_with``) or tool calls (``call_tools``)."""

    text: str
    status: str
    chunks: int | None
    times: int
    calls: list[Call] | None = None


@dataclass
class Reply:
    """A computed answer: the text or calls, the final status and the usage."""

    text: str
    status: common.Alternative.AlternativeStatus.ValueType
    input_tokens: int
    model_version: str
    usage_details: bool
    chunks: int | None = None
    calls: list[Call] | None = None


def messages_of(request: tg.CompletionRequest) -> list[tuple[str, str]]:
    """(role, text) pairs; tool calls read ``name({"arg":1})``, results ``name: content``.

    That is also what they cost: close to the real counts (the recorded call and result
    messages cost 30 tokens together; these 33).
    """
    pairs = []
    for m in request.messages:
        kind = m.WhichOneof("Content")
        if kind == "tool_call_list":
            text = "; ".join(
                f"{c.function_call.name}("
                f"{_compact(_plain(json_format.MessageToDict(c.function_call.arguments)))})"
                for c in m.tool_call_list.tool_calls
            )
        elif kind == "tool_result_list":
            text = "; ".join(
                f"{r.function_result.name}: {r.function_result.content}"
                for r in m.tool_result_list.tool_results
            )
        else:
            text = m.text
        pairs.append((m.role, text))
    return pairs


def _plain(value: Any) -> Any:
    """Struct numbers are doubles: show 5.0 as 5 again."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def options_of(request: tg.CompletionRequest) -> dict[str, Any]:
    """The completion options a test asserts on."""
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


def input_tokens_of(request: tg.CompletionRequest) -> int:
    """What the request costs: its framed messages and its offered tools."""
    return count_tokens(messages_of(request), tool_texts(request))


def _compact(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _request_text(request: tg.CompletionRequest) -> str:
    for m in reversed(request.messages):
        if m.role == "user" and m.WhichOneof("Content") == "text":
            return m.text
    return ""


def _text_for(request: tg.CompletionRequest, messages: list[tuple[str, str]]) -> str:
    """The emulator's own text: JSON for response_format, results, or the offline reply."""
    fmt = request.WhichOneof("ResponseFormat")
    if fmt == "json_schema":
        schema = json_format.MessageToDict(request.json_schema.schema)
        return json.dumps(value_for(schema, _request_text(request)), ensure_ascii=False)
    if fmt == "json_object" and request.json_object:
        reply = reply_for(request.model_uri, messages).split("\n", 1)[0]
        return object_reply(
            _request_text(request), reply, len(messages), digest_of(request.model_uri, messages)
        )
    results = results_after_request(request)
    if results:
        return reply_with_results(request.model_uri, messages, results)
    return reply_for(request.model_uri, messages)


def compute(
    request: tg.CompletionRequest, script: Script | None, model: catalogue.Model | None = None
) -> Reply:
    """The reply to a validated request (raises ToolChoiceError for a bad tool_choice).

    ``model`` is the request's model when the caller looked it up in another catalogue
    (the batch service's); by default the interactive one.
    """
    model = model if model is not None else catalogue.lookup(request.model_uri)
    assert model is not None, "validated before"
    return compose(
        request,
        script,
        model_version=model.model_version,
        usage_details=model.reports_usage_details,
    )


def compose(
    request: tg.CompletionRequest,
    script: Script | None,
    *,
    model_version: str = "",
    usage_details: bool = False,
) -> Reply:
    """The reply to a request of any model: what both APIs answer alike.

    The gRPC API passes its catalogue's ``model_version``; the OpenAI-compatible API,
    which serves models the gRPC catalogue does not know, translates its request into
    this one and renders the same reply in its own shape (see :mod:`.openai_chat`).
    """
    messages = messages_of(request)
    reply = Reply(
        text="",
        status=STATUSES["FINAL"],
        input_tokens=count_tokens(messages, tool_texts(request)),
        model_version=model_version,
        usage_details=usage_details,
    )
    if script is not None and script.calls is not None:
        reply.calls = script.calls
    elif script is not None:
        reply.text, reply.status, reply.chunks = script.text, STATUSES[script.status], script.chunks
    else:
        reply.calls = calls_for(request) or None
        if reply.calls is None:
            reply.text = _text_for(request, messages)
    if reply.calls:
        reply.status = TOOL_CALLS
        reply.chunks = 1
        return reply
    options = request.completion_options
    if options.HasField("max_tokens") and options.max_tokens.value > 0:
        tokens = tokenize_text(reply.text)
        if len(tokens) > options.max_tokens.value:
            reply.text = "".join(tokens[: options.max_tokens.value])
            if reply.status == STATUSES["FINAL"]:
                reply.status = STATUSES["TRUNCATED_FINAL"]
    return reply


def _usage(reply: Reply, completion_tokens: int) -> common.ContentUsage:
    usage = common.ContentUsage(
        input_text_tokens=reply.input_tokens,
        completion_tokens=completion_tokens,
        total_tokens=reply.input_tokens + completion_tokens,
    )
    if reply.usage_details:
        usage.completion_tokens_details.SetInParent()
    return usage


def call_tokens(calls: Sequence[Call]) -> int:
    """Completion tokens of a tool-call reply: each call's name and compact arguments."""
    return sum(len(tokenize_text(c.name + _compact(_plain(dict(c.arguments))))) for c in calls)


def response(
    reply: Reply, text: str, status: common.Alternative.AlternativeStatus.ValueType
) -> tg.CompletionResponse:
    """One CompletionResponse: the (cumulative) text so far, or the tool calls."""
    if reply.calls:
        calls = []
        for call in reply.calls:
            arguments = struct_pb2.Struct()
            arguments.update(dict(call.arguments))
            calls.append(
                common.ToolCall(
                    function_call=common.FunctionCall(name=call.name, arguments=arguments)
                )
            )
        message = common.Message(
            role="assistant", tool_call_list=common.ToolCallList(tool_calls=calls)
        )
        completion = call_tokens(reply.calls)
    else:
        message = common.Message(role="assistant", text=text)
        completion = len(tokenize_text(text))
    return tg.CompletionResponse(
        alternatives=[common.Alternative(message=message, status=status)],
        usage=_usage(reply, completion),
        model_version=reply.model_version,
    )


def stream_texts(text: str, chunks: int | None) -> list[str]:
    """Cumulative texts of a stream: about one chunk per 12 tokens, at least 2."""
    tokens = tokenize_text(text)
    count = chunks if chunks is not None else max(2, -(-len(tokens) // _TOKENS_PER_CHUNK))
    return ["".join(tokens[: round(i * len(tokens) / count)]) for i in range(1, count + 1)]
