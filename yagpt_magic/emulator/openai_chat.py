"""The OpenAI-compatible chat completion: a request body in, the reply's JSON or chunks out.

Both APIs must answer alike, so this module does not decide anything itself: it
translates the HTTP request into the Text Generation API's ``CompletionRequest`` (the
gateway's view of a request: messages, tools, ``response_format``, options), answers it
with :func:`.answers.compose` — the same replies, tool-call rule (:mod:`.tool_rule`), JSON
(:mod:`.schema_values`) and token counts (:mod:`.tokenizer`) as the gRPC API — and renders
that reply in the shape the real recordings show (tests/real_traffic/chat):

- unary: ``{id, object: "chat.completion", created, model, choices[{index, message{role,
  content, tool_calls?}, finish_reason}], usage{prompt_tokens, total_tokens,
  completion_tokens}}``;
- a stream: ``chat.completion.chunk`` objects carrying increments, never the text so
  far. Open models (:class:`.catalogue.ChatModel`): ``delta{role}``, one token a chunk,
  ``delta{}`` with ``finish_reason``, then a usage chunk with ``choices: []``; tool calls
  as a head chunk (``chatcmpl-tool-…`` id, the name) and argument fragments. YandexGPT:
  the role rides with the first piece, pieces of about a dozen tokens, ``finish_reason``
  with the last piece, no usage chunk; tool calls whole in one chunk, the function name
  as id. The server adds ``data: [DONE]``.

What no recording shows is marked where it is decided (an open model's unary tool call,
error bodies). An image part costs ``IMAGE_TOKENS`` input tokens and is accepted only by
a model that reads images. The module is pure: no sockets, no clock but ``created``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from google.protobuf import struct_pb2
from yandex.cloud.ai.foundation_models.v1 import text_common_pb2 as common
from yandex.cloud.ai.foundation_models.v1.text_generation import (
    text_generation_service_pb2 as tg,
)

from . import catalogue
from .answers import (
    STATUSES,
    TOOL_CALLS,
    Reply,
    Script,
    call_tokens,
    compose,
    messages_of,
    stream_texts,
)
from .tokenizer import count_tokens, tokenize_text
from .tool_rule import Call, ToolChoiceError, tool_texts

__all__ = [
    "ChatError",
    "ChatReply",
    "ChatRequest",
    "answer",
    "argument_fragments",
    "chunk_tokens",
    "chunks",
    "completion_body",
    "models_body",
    "parse_body",
    "prepare",
]

_FINISH = {
    STATUSES["FINAL"]: "stop",
    STATUSES["TRUNCATED_FINAL"]: "length",
    STATUSES["CONTENT_FILTER"]: "content_filter",
    TOOL_CALLS: "tool_calls",
}
_ROLES = ("system", "user", "assistant", "tool")
_TOOL_CHOICES = {
    "none": common.ToolChoice.NONE,
    "auto": common.ToolChoice.AUTO,
    "required": common.ToolChoice.REQUIRED,
}
_REASONING = ("low", "medium", "high")
_DATA_URL_RE = re.compile(r"^data:image/(png|jpeg|jpg|webp|gif);base64,(.*)$", re.DOTALL)


class ChatError(Exception):
    """A request the API refuses: an HTTP status and OpenAI's error body.

    No error of the real service is recorded; the body follows the OpenAI convention the
    API is compatible with: ``{"error": {"message", "type", "param", "code"}}``.
    """

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        kind: str = "invalid_request_error",
        param: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.kind = kind
        self.param = param

    def body(self) -> dict[str, Any]:
        """The JSON body of the error response."""
        return {
            "error": {
                "message": self.message,
                "type": self.kind,
                "param": self.param,
                "code": self.code,
            }
        }


def _bad(message: str, param: str | None = None) -> ChatError:
    return ChatError(400, message, param=param)


@dataclass(frozen=True)
class ChatRequest:
    """A validated request: the model, the shared CompletionRequest, the images it carried."""

    uri: str
    folder: str
    model: catalogue.ChatModel
    request: tg.CompletionRequest
    images: tuple[str, ...]
    stream: bool

    @property
    def input_tokens(self) -> int:
        """Framed messages and tools (the model's framing, see :class:`.catalogue.ChatModel`)
        plus each image."""
        model = self.model
        tools = tool_texts(self.request)
        framing: dict[str, int] = {}
        if model.request_framing is not None:
            framing["request_framing"] = model.request_framing
        if model.message_framing is not None:
            framing["message_framing"] = model.message_framing
        tokens = count_tokens(messages_of(self.request), tools, **framing)
        if tools:
            tokens += model.tools_preamble
        return tokens + catalogue.IMAGE_TOKENS * len(self.images)


@dataclass(frozen=True)
class ChatReply:
    """A computed reply with what identifies it on the wire."""

    chat: ChatRequest
    reply: Reply
    id: str
    created: int

    @property
    def model_field(self) -> str:
        """Open models name themselves without the folder; YandexGPT echoes the URI."""
        if self.chat.model.open:
            _folder, name, version = catalogue.parse_chat_uri(self.chat.uri) or ("", "", "")
            return f"gpt://{name}/{version}"
        return self.chat.uri

    @property
    def finish_reason(self) -> str:
        return _FINISH.get(self.reply.status, "stop")

    @property
    def completion_tokens(self) -> int:
        if self.reply.calls:
            return call_tokens(self.reply.calls)
        return len(tokenize_text(self.reply.text))

    def usage(self) -> dict[str, int]:
        """Usage in the recorded key order: prompt, total, completion."""
        prompt = self.reply.input_tokens
        completion = self.completion_tokens
        return {
            "prompt_tokens": prompt,
            "total_tokens": prompt + completion,
            "completion_tokens": completion,
        }


# -- parsing and validation --------------------------------------------------------------


def parse_body(raw: bytes) -> dict[str, Any]:
    """The JSON object of a request body (400 when it is not one)."""
    try:
        payload = json.loads(raw.decode("utf-8") or "null")
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise _bad(f"request body is not valid JSON: {err}") from err
    if not isinstance(payload, dict):
        raise _bad("request body must be a JSON object")
    return payload


def model_of(payload: Mapping[str, Any]) -> tuple[str, catalogue.ChatModel]:
    """The ``model`` URI and the served model: 400 for a malformed URI, 404 for unknown."""
    uri = payload.get("model")
    if not isinstance(uri, str) or not uri:
        raise _bad("model is required", "model")
    if catalogue.parse_chat_uri(uri) is None:
        raise _bad(catalogue.bad_chat_uri(uri), "model")
    model = catalogue.lookup_chat(uri)
    if model is None:
        raise ChatError(
            404, catalogue.chat_model_not_found(uri), code="model_not_found", param="model"
        )
    return uri, model


def prepare(payload: Mapping[str, Any], *, window_cap: int | None = None) -> ChatRequest:
    """Validate a ``/chat/completions`` body and translate it (raises :class:`ChatError`).

    ``window_cap`` lowers every model's context window (a test's small window); the
    default is each model's documented one.
    """
    uri, model = model_of(payload)
    request = tg.CompletionRequest(model_uri=uri)
    images = _messages(payload.get("messages"), model, request)
    _options(payload, request)
    _tools(payload, request)
    _response_format(payload.get("response_format"), request)
    stream = payload.get("stream", False)
    if not isinstance(stream, bool):
        raise _bad("stream must be a boolean", "stream")
    request.completion_options.stream = stream
    chat = ChatRequest(
        uri=uri,
        folder=catalogue.folder_of(uri),
        model=model,
        request=request,
        images=tuple(images),
        stream=stream,
    )
    window = model.window if window_cap is None else min(model.window, window_cap)
    tokens = chat.input_tokens
    if tokens > window:
        raise _bad(catalogue.too_many_tokens(window, tokens), "messages")
    return chat


def _messages(
    messages: Any, model: catalogue.ChatModel, request: tg.CompletionRequest
) -> list[str]:
    """Fill ``request.messages``; returns the SHA-256 of every image part, in order."""
    if not isinstance(messages, list) or not messages:
        raise _bad(catalogue.EMPTY_MESSAGES, "messages")
    images: list[str] = []
    call_names: dict[str, str] = {}
    for message in messages:
        if not isinstance(message, dict):
            raise _bad("every message must be a JSON object", "messages")
        role = message.get("role")
        if role not in _ROLES:
            raise _bad(catalogue.invalid_role(str(role)), "messages")
        if role == "tool":
            _tool_result(message, call_names, request)
            continue
        calls = message.get("tool_calls")
        if role == "assistant" and calls:
            _tool_calls(calls, call_names, request)
            continue
        text, found = _content(message.get("content"), model)
        images.extend(found)
        request.messages.add(role=role, text=text)
    return images


def _content(content: Any, model: catalogue.ChatModel) -> tuple[str, list[str]]:
    """A message's text (parts joined by newlines) and the SHA-256 of its images."""
    if content is None:
        return "", []
    if isinstance(content, str):
        return content, []
    if not isinstance(content, list):
        raise _bad("message content must be a string or a list of parts", "messages")
    texts: list[str] = []
    images: list[str] = []
    for part in content:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text" and isinstance(part.get("text"), str):
            texts.append(part["text"])
        elif kind == "image_url":
            if not model.reads_images:
                raise _bad(catalogue.no_images(model.name), "messages")
            images.append(_image_digest(part.get("image_url")))
        else:
            raise _bad(f"unsupported content part type: {kind!r}", "messages")
    return "\n".join(texts), images


def _image_digest(image_url: Any) -> str:
    """The SHA-256 of a base64 data-URL image (the form the recordings send)."""
    url = image_url.get("url") if isinstance(image_url, dict) else image_url
    match = _DATA_URL_RE.match(url) if isinstance(url, str) else None
    if match is None:
        raise _bad("image_url must be a data:image/...;base64 URL", "messages")
    try:
        data = base64.b64decode(match.group(2), validate=True)
    except (binascii.Error, ValueError) as err:
        raise _bad(f"image_url is not valid base64: {err}", "messages") from err
    if not data:
        raise _bad("image_url holds an empty image", "messages")
    return hashlib.sha256(data).hexdigest()


def _tool_calls(calls: Any, names: dict[str, str], request: tg.CompletionRequest) -> None:
    """An assistant message with ``tool_calls`` -> a ``tool_call_list`` message."""
    if not isinstance(calls, list):
        raise _bad("tool_calls must be a list", "messages")
    message = request.messages.add(role="assistant")
    message.tool_call_list.SetInParent()
    for call in calls:
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise _bad("every tool call needs a function with a name", "messages")
        arguments = _arguments_of(function.get("arguments"))
        struct = struct_pb2.Struct()
        struct.update(arguments)
        message.tool_call_list.tool_calls.add(
            function_call=common.FunctionCall(name=function["name"], arguments=struct)
        )
        call_id = call.get("id")
        names[call_id if isinstance(call_id, str) and call_id else function["name"]] = function[
            "name"
        ]


def _arguments_of(arguments: Any) -> dict[str, Any]:
    if arguments is None or arguments == "":
        return {}
    if isinstance(arguments, dict):
        return arguments
    try:
        parsed = json.loads(arguments) if isinstance(arguments, str) else None
    except json.JSONDecodeError as err:
        raise _bad(f"tool call arguments are not valid JSON: {err}", "messages") from err
    if not isinstance(parsed, dict):
        raise _bad("tool call arguments must be a JSON object", "messages")
    return parsed


def _tool_result(
    message: Mapping[str, Any], names: Mapping[str, str], request: tg.CompletionRequest
) -> None:
    """A ``tool`` message -> a result in a ``tool_result_list`` (consecutive ones merge).

    The gRPC API sends results as one user message listing them; so does this, so a
    conversation costs the same tokens on both APIs.
    """
    call_id = message.get("tool_call_id")
    if not isinstance(call_id, str) or call_id not in names:
        raise _bad(
            "messages with role 'tool' must be a response to a preceding message with "
            f"'tool_calls' (unknown tool_call_id {call_id!r})",
            "messages",
        )
    content = message.get("content")
    if isinstance(content, list):
        content = "\n".join(p.get("text", "") for p in content if isinstance(p, dict))
    if not isinstance(content, str):
        raise _bad("a tool message needs a string content", "messages")
    last = request.messages[-1] if request.messages else None
    if last is None or last.WhichOneof("Content") != "tool_result_list":
        last = request.messages.add(role="user")
        last.tool_result_list.SetInParent()
    last.tool_result_list.tool_results.add(
        function_result=common.FunctionResult(name=names[call_id], content=content)
    )


def _options(payload: Mapping[str, Any], request: tg.CompletionRequest) -> None:
    """temperature, max_tokens and reasoning_effort; other keys (top_k, …) pass silently,
    as the SDK's extra_query example shows the service accepts them."""
    options = request.completion_options
    temperature = payload.get("temperature")
    if temperature is not None:
        if isinstance(temperature, bool) or not isinstance(temperature, (int, float)):
            raise _bad("temperature must be a number", "temperature")
        options.temperature.value = float(temperature)
    max_tokens = payload.get("max_tokens", payload.get("max_completion_tokens"))
    if max_tokens is not None:
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
            raise _bad("max_tokens must be a positive integer", "max_tokens")
        options.max_tokens.value = max_tokens
    effort = payload.get("reasoning_effort")
    if effort is not None and effort not in _REASONING:
        raise _bad(f"reasoning_effort must be one of {', '.join(_REASONING)}", "reasoning_effort")


def _tools(payload: Mapping[str, Any], request: tg.CompletionRequest) -> None:
    """tools and tool_choice -> their CompletionRequest fields; parallel_tool_calls checked."""
    tools = payload.get("tools")
    if tools is not None:
        if not isinstance(tools, list):
            raise _bad("tools must be a list", "tools")
        for tool in tools:
            function = tool.get("function") if isinstance(tool, dict) else None
            if not isinstance(function, dict) or tool.get("type", "function") != "function":
                raise _bad("only function tools are supported", "tools")
            if not isinstance(function.get("name"), str) or not function["name"]:
                raise _bad("every function tool needs a name", "tools")
            parameters = function.get("parameters")
            added = request.tools.add().function
            added.name = function["name"]
            added.description = str(function.get("description") or "")
            if isinstance(parameters, dict):
                added.parameters.update(parameters)
            if isinstance(function.get("strict"), bool):
                added.strict = function["strict"]
    # Accepted, and ignored as the real API ignores it: with ``parallel_tool_calls: false``
    # YandexGPT still called both tools here (test_parallel_function_call[2],
    # test_tool_choice), where the gRPC API, asked the same, calls one. The open models'
    # behaviour is not recorded; they are treated alike.
    parallel = payload.get("parallel_tool_calls")
    if parallel is not None and not isinstance(parallel, bool):
        raise _bad("parallel_tool_calls must be a boolean", "parallel_tool_calls")
    _tool_choice(payload.get("tool_choice"), request)


def _tool_choice(choice: Any, request: tg.CompletionRequest) -> None:
    if choice is None:
        return
    if isinstance(choice, str) and choice.lower() in _TOOL_CHOICES:
        request.tool_choice.mode = _TOOL_CHOICES[choice.lower()]
        return
    function = choice.get("function") if isinstance(choice, dict) else None
    if isinstance(function, dict) and isinstance(function.get("name"), str):
        request.tool_choice.function_name = function["name"]
        return
    raise _bad(
        "tool_choice must be 'none', 'auto', 'required' or "
        "{'type': 'function', 'function': {'name': ...}}",
        "tool_choice",
    )


def _response_format(fmt: Any, request: tg.CompletionRequest) -> None:
    if fmt is None:
        return
    kind = fmt.get("type") if isinstance(fmt, dict) else None
    if kind == "text":
        return
    if kind == "json_object":
        request.json_object = True
        return
    if kind == "json_schema":
        spec = fmt.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, dict) else None
        if not isinstance(schema, dict):
            raise _bad("response_format json_schema needs a 'schema' object", "response_format")
        request.json_schema.schema.update(schema)
        return
    raise _bad(
        "response_format type must be 'text', 'json_object' or 'json_schema'", "response_format"
    )


# -- answering and rendering -------------------------------------------------------------


def answer(chat: ChatRequest, script: Script | None) -> ChatReply:
    """The reply both APIs give, with this request's image tokens counted."""
    try:
        reply = compose(chat.request, script)
    except ToolChoiceError as err:
        raise _bad(str(err), "tool_choice") from err
    reply.input_tokens = chat.input_tokens
    if chat.images and script is None and not reply.calls and _free_text(chat.request):
        reply.text += _images_line(chat.images)
    prefix = "chatcmpl-" if chat.model.open else ""
    return ChatReply(chat, reply, f"{prefix}{uuid.uuid4()}", int(time.time()))


def _free_text(request: tg.CompletionRequest) -> bool:
    return request.WhichOneof("ResponseFormat") is None


def _images_line(images: Sequence[str]) -> str:
    """What the offline reply says about the images it received (it cannot see them)."""
    count = len(images)
    digests = ", ".join(digest[:8] for digest in images)
    plural = "" if count == 1 else "s"
    return f"\n\nIt also received {count} image{plural} (SHA-256 {digests}) it cannot look at."


def _call_id(reply: ChatReply, call: Call) -> str:
    """``chatcmpl-tool-<32 hex>`` for open models; the function name for YandexGPT."""
    return f"chatcmpl-tool-{uuid.uuid4().hex}" if reply.chat.model.open else call.name


def _arguments_text(reply: ChatReply, call: Call) -> str:
    """Open models write ``{"a": 1}``, YandexGPT ``{"a":1}`` (both recorded)."""
    if reply.chat.model.open:
        return json.dumps(dict(call.arguments), ensure_ascii=False)
    return json.dumps(dict(call.arguments), ensure_ascii=False, separators=(",", ":"))


def _whole_calls(reply: ChatReply) -> list[dict[str, Any]]:
    return [
        {
            "index": index,
            "id": _call_id(reply, call),
            "type": "function",
            "function": {"name": call.name, "arguments": _arguments_text(reply, call)},
        }
        for index, call in enumerate(reply.reply.calls or ())
    ]


def completion_body(reply: ChatReply) -> dict[str, Any]:
    """The unary ``chat.completion`` object.

    A tool-call reply has ``content: ""`` beside ``tool_calls``, as YandexGPT's recorded
    ones do; an open model's unary tool call is not recorded and gets the same shape
    with its own id format.
    """
    message: dict[str, Any] = {"role": "assistant", "content": reply.reply.text}
    if reply.reply.calls:
        message["content"] = ""
        message["tool_calls"] = _whole_calls(reply)
    return {
        "id": reply.id,
        "object": "chat.completion",
        "created": reply.created,
        "model": reply.model_field,
        "choices": [{"index": 0, "message": message, "finish_reason": reply.finish_reason}],
        "usage": reply.usage(),
    }


def _chunk(reply: ChatReply, choices: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {
        "id": reply.id,
        "object": "chat.completion.chunk",
        "created": reply.created,
        "model": reply.model_field,
        "choices": choices,
        **extra,
    }


def chunks(reply: ChatReply) -> list[dict[str, Any]]:
    """The stream's chunks in order (the server frames them and adds ``[DONE]``)."""
    if reply.chat.model.open:
        return _open_chunks(reply)
    return _yandex_chunks(reply)


def _pieces(reply: ChatReply, *, per_token: bool) -> list[str]:
    """Increments of the text: one token each, or the gRPC stream's cumulative cuts.

    One token a chunk, a character beyond the Basic Multilingual Plane (an emoji: four
    UTF-8 bytes, several byte tokens) arrives after two empty deltas, the incomplete
    bytes that decode to nothing yet — the recorded Qwen3 stream does that before " 🦆".
    """
    text = reply.reply.text
    if per_token and reply.reply.chunks is None:
        pieces: list[str] = []
        for token in tokenize_text(text):
            if any(ord(ch) > 0xFFFF for ch in token):
                pieces += ["", ""]
            pieces.append(token)
        return pieces or [""]
    cumulative = stream_texts(text, reply.reply.chunks)
    return [b[len(a) :] for a, b in zip(["", *cumulative], cumulative)]


def _open_chunks(reply: ChatReply) -> list[dict[str, Any]]:
    out = [_chunk(reply, [{"index": 0, "delta": {"role": "assistant"}}])]
    if reply.reply.calls:
        for index, call in enumerate(reply.reply.calls):
            for delta in _call_deltas(reply, index, call):
                out.append(_chunk(reply, [{"index": 0, "delta": {"tool_calls": [delta]}}]))
    else:
        for piece in _pieces(reply, per_token=True):
            out.append(_chunk(reply, [{"index": 0, "delta": {"content": piece}}]))
    out.append(_chunk(reply, [{"index": 0, "delta": {}, "finish_reason": reply.finish_reason}]))
    out.append(_chunk(reply, [], usage=reply.usage()))
    return out


def argument_fragments(arguments: Mapping[str, Any]) -> list[str]:
    """An open model's streamed arguments: keys with their punctuation in one fragment,
    values token by token — ``{"expression": "``, ``7``, ``@``, ``8``, ``"}`` as recorded.

    The fragments join to ``json.dumps(arguments)``.
    """
    fragments: list[str] = []
    pending = "{"
    for i, (key, value) in enumerate(arguments.items()):
        pending += (", " if i else "") + json.dumps(key, ensure_ascii=False) + ": "
        if isinstance(value, str):
            pieces = tokenize_text(json.dumps(value, ensure_ascii=False)[1:-1])
            closing = '"'
            pending += '"'
        else:
            pieces = tokenize_text(json.dumps(value, ensure_ascii=False))
            closing = ""
        if pieces:
            fragments += [pending, *pieces]
            pending = closing
        else:
            pending += closing
    fragments.append(pending + "}")
    return fragments


def _call_deltas(reply: ChatReply, index: int, call: Call) -> list[dict[str, Any]]:
    """A head delta (id, name) then argument fragments, as the open models stream them."""
    fragments = argument_fragments(call.arguments)
    gemma = reply.chat.model.tool_head == "gemma"
    first = fragments.pop(0) if gemma and fragments else ""
    head = {
        "index": index,
        "id": _call_id(reply, call),
        "type": "" if gemma else "function",
        "function": {"name": call.name, "arguments": first},
    }
    tail = [
        {"index": index, "id": "", "type": "", "function": {"name": "", "arguments": piece}}
        for piece in fragments
    ]
    return [head, *tail]


def _yandex_chunks(reply: ChatReply) -> list[dict[str, Any]]:
    finish = reply.finish_reason
    if reply.reply.calls:
        delta = {"role": "assistant", "tool_calls": _whole_calls(reply)}
        return [_chunk(reply, [{"index": 0, "delta": delta, "finish_reason": finish}])]
    pieces = _pieces(reply, per_token=False)
    out = []
    for i, piece in enumerate(pieces):
        delta = {"role": "assistant", "content": piece} if i == 0 else {"content": piece}
        choice: dict[str, Any] = {"index": 0, "delta": delta}
        if i == len(pieces) - 1:
            choice["finish_reason"] = finish
        out.append(_chunk(reply, [choice]))
    return out


def chunk_tokens(chunk: Mapping[str, Any]) -> int:
    """Completion tokens a chunk carries (its text or argument fragments): what the
    service-time model paces it by."""
    tokens = 0
    for choice in chunk.get("choices", ()):
        delta = choice.get("delta", {})
        tokens += len(tokenize_text(delta.get("content") or ""))
        for call in delta.get("tool_calls", ()):
            tokens += len(tokenize_text(call["function"].get("arguments", "")))
    return tokens


def models_body(folder: str) -> dict[str, Any]:
    """``GET /v1/models``: the text models of the recorded list, in the folder asked for.

    The recorded list also names embedding models (``emb://``); the emulator serves no
    embeddings, so it does not list them.
    """
    owners = {m.name: m.owner for m in catalogue.CHAT_MODELS}
    data = []
    for model_id in catalogue.chat_model_ids(folder):
        parts = catalogue.parse_chat_uri(model_id)
        assert parts is not None
        data.append({"id": model_id, "object": "model", "owned_by": owners[parts[1]], "created": 0})
    return {"object": "list", "data": data}
