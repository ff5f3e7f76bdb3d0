"""The OpenAI-compatible backend (SPEC 15): a thread's messages in the API's own shape,
and the backend through the unmodified SDK against the emulator's HTTP API."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import grpc
import pytest

from yagpt_magic.core.backend import Request, RequestOptions, ToolDefinition
from yagpt_magic.core.conversation import ToolCall, ToolRound
from yagpt_magic.core.errors import Interrupted, ServiceError
from yagpt_magic.emulator import Emulator
from yagpt_magic.service.connection import Connection, Credential
from yagpt_magic.service.openai_compatible import (
    OpenAICompatibleBackend,
    call_ids,
    chat_config,
    chat_messages,
    schema_format,
)

from ..conftest import TEST_API_KEY

QWEN = RequestOptions(model="qwen3-235b-a22b-fp8")
CALCULATOR = ToolDefinition(
    "calculator", "A simple calculator; call it on ANY arithmetic question",
    json.dumps({"type": "object", "properties": {"expression": {"type": "string"}},
                "required": ["expression"]}))


def test_a_tool_round_goes_as_calls_with_ids_and_one_tool_message_per_result() -> None:
    rounds = ToolRound((ToolCall("f", {"x": 1}, "2", id="chatcmpl-tool-1"),
                        ToolCall("g", {}, "ok", id="chatcmpl-tool-2")))
    sent = chat_messages([{"role": "system", "text": "Be brief."},
                          {"role": "user", "text": "go"}, *rounds.messages(),
                          {"role": "assistant", "text": ""}])
    assert sent[0] == {"role": "system", "content": "Be brief."}
    assert sent[2] == {"role": "assistant", "tool_calls": [
        {"id": "chatcmpl-tool-1", "type": "function",
         "function": {"name": "f", "arguments": '{"x": 1}'}},
        {"id": "chatcmpl-tool-2", "type": "function", "function": {"name": "g", "arguments": "{}"}},
    ]}
    assert sent[3:5] == [{"role": "tool", "tool_call_id": "chatcmpl-tool-1", "content": "2"},
                         {"role": "tool", "tool_call_id": "chatcmpl-tool-2", "content": "ok"}]
    assert sent[5] == {"role": "assistant", "content": [{"type": "text", "text": ""}]}


def test_calls_recorded_on_grpc_get_ids_their_results_name() -> None:
    """A thread may switch API: a round made on gRPC has no ids, so it gets distinct ones."""
    old = ToolRound((ToolCall("f", {"x": 1}, "a"), ToolCall("f", {"x": 2}, "b")))
    sent = chat_messages(old.messages())
    ids = [call["id"] for call in sent[0]["tool_calls"]]
    assert ids == ["f", "f_2"] == [m["tool_call_id"] for m in sent[1:]]
    assert call_ids([{"name": "f", "id": "x"}, {"name": "f", "id": "x"}]) == ["x", "x_2"]


def test_options_become_the_chat_models_configuration() -> None:
    schema = json.dumps({"title": "My Fact!", "type": "object"})
    config = chat_config(RequestOptions(model="gpt-oss-20b", temperature=0.2, max_tokens=50,
                                        reasoning_mode="enabled_hidden", tool_choice="none",
                                        response_format=schema), tool=lambda d: d.name)
    assert config == {"temperature": 0.2, "max_tokens": 50, "reasoning_mode": "medium",
                      "tool_choice": "none",
                      "response_format": {"name": "My_Fact_", "json_schema": {
                          "title": "My Fact!", "type": "object"}, "strict": True}}
    assert "reasoning_mode" not in chat_config(
        RequestOptions(model="gemma-3-27b-it", reasoning_mode="high"), tool=str)
    assert schema_format("json") == "json" and schema_format(None) is None
    assert schema_format(json.dumps({"type": "object"}))["name"] == "reply"


# -- through the SDK, against the emulator's HTTP API ---------------------------------------


@pytest.fixture
def backend(emulator: Emulator) -> Iterator[OpenAICompatibleBackend]:
    connection = Connection(Credential("api_key", TEST_API_KEY), "b1gtest", emulator.address,
                            insecure=True, chat_endpoint=emulator.chat_url)
    found = OpenAICompatibleBackend(connection)
    try:
        yield found
    finally:
        found.close()


def _ask(text: str) -> tuple[dict[str, Any], ...]:
    return ({"role": "user", "text": text},)


def test_a_streamed_reply_grows_in_place_and_ends_with_exact_usage(
    backend: OpenAICompatibleBackend, emulator: Emulator
) -> None:
    shown: list[str] = []
    reply = backend.complete(Request(_ask("hello"), QWEN), on_text=shown.append)
    assert len(shown) > 3 and shown[-1] == reply.text
    assert all(b.startswith(a) for a, b in zip(shown, shown[1:]))  # cumulative, not increments
    assert reply.status == "final" and reply.api == "openai-compatible"
    assert reply.usage.input_tokens > 0 and reply.usage.completion_tokens > 0
    assert reply.model_uri == "gpt://b1gtest/qwen3-235b-a22b-fp8/latest"
    assert backend.count(list(_ask("hello")), QWEN) is None  # no tokenizer on this API
    unary = backend.complete(Request(_ask("hello"), RequestOptions(
        model="qwen3-235b-a22b-fp8", stream=False)))
    assert unary.text == reply.text and unary.usage == reply.usage


def test_tool_calls_carry_ids_that_the_results_answer(backend: OpenAICompatibleBackend) -> None:
    options = RequestOptions(model="qwen3-235b-a22b-fp8", tools=(CALCULATOR,))
    asked = backend.complete(Request(_ask("How much it would be 7@8?"), options))
    assert asked.status == "tool_calls"
    assert asked.tool_calls == (("calculator", {"expression": "7@8"}),)
    assert asked.call_ids[0].startswith("chatcmpl-tool-")
    done = ToolRound((ToolCall("calculator", {"expression": "7@8"}, "-5",
                               id=asked.call_ids[0]),))
    answer = backend.complete(Request((*_ask("How much it would be 7@8?"), *done.messages()),
                                      options))
    assert answer.status == "final" and "-5" in answer.text


def test_a_max_tokens_cut_is_truncated(backend: OpenAICompatibleBackend) -> None:
    reply = backend.complete(Request(_ask("tell me a long story"), RequestOptions(
        model="qwen3-235b-a22b-fp8", max_tokens=5)))
    assert reply.status == "truncated" and reply.usage.completion_tokens == 5


def test_errors_read_like_grpc_ones_with_the_cause_and_no_credential(
    backend: OpenAICompatibleBackend, emulator: Emulator
) -> None:
    emulator.fail(grpc.StatusCode.INVALID_ARGUMENT, "number of input tokens must be no more "
                  "than 8192, got 9000 ({authorization})", method="ChatCompletion", times=2,
                  prefixed=True)
    with pytest.raises(ServiceError) as err:
        backend.complete(Request(_ask("hello"), QWEN))
    message = str(err.value)
    assert "too long for the model's context window" in message and "got 9000" in message
    assert TEST_API_KEY not in message and "session" not in message
    assert TEST_API_KEY not in str(err.value.__cause__)
    for code, words in [(grpc.StatusCode.UNAUTHENTICATED, "Authentication failed"),
                        (grpc.StatusCode.RESOURCE_EXHAUSTED, "Quota or rate limit"),
                        (grpc.StatusCode.PERMISSION_DENIED, "Permission denied")]:
        emulator.fail(code, "because {authorization}", method="ChatCompletion")
        with pytest.raises(ServiceError) as err:
            backend.complete(Request(_ask("hello"), QWEN))
        assert words in str(err.value) and TEST_API_KEY not in str(err.value)
    emulator.fail(grpc.StatusCode.UNAVAILABLE, "gone {authorization}", after_chunks=3,
                  method="ChatCompletion")
    with pytest.raises(ServiceError) as err:  # an error event in the middle of the stream
        backend.complete(Request(_ask("hello"), QWEN))
    assert "unreachable" in str(err.value) and TEST_API_KEY not in str(err.value)


def test_a_slow_first_answer_times_out_and_stop_cancels_at_once(
    backend: OpenAICompatibleBackend, emulator: Emulator
) -> None:
    slow = Connection(backend.connection.credential, "b1gtest", emulator.address, insecure=True,
                      chat_endpoint=emulator.chat_url, timeout=0.5)
    impatient = OpenAICompatibleBackend(slow)
    emulator.delay = 3.0
    try:
        started = time.monotonic()
        with pytest.raises(ServiceError) as err:
            impatient.complete(Request(_ask("hello"), QWEN))
        assert "within 0.5 s" in str(err.value) and time.monotonic() - started < 2.5
        cancel = threading.Event()
        threading.Timer(0.3, cancel.set).start()
        started = time.monotonic()
        with pytest.raises(Interrupted):
            backend.complete(Request(_ask("hello"), QWEN), cancel=cancel)
        assert time.monotonic() - started < 1.5
    finally:
        emulator.delay = 0.0
        impatient.close()
