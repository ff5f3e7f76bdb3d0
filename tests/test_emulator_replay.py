"""Replay the recorded real traffic (tests/real_traffic) against the emulator, field by field.

Every recorded request is parsed from its protobuf JSON, sent over real gRPC to the
emulator with the generated stubs (no SDK in between, so nothing smooths the answer),
and the answer is compared with the recorded one:

- equal: the RPC shape (one message for an unary completion, several for a stream),
  statuses (per chunk and final), ``modelVersion``, presence of ``usage`` in every chunk
  and of ``completionTokensDetails``, ``total = input + completion``, the tool calls
  (names, order and arguments) for every recorded tool request but one (see
  ``_KNOWN_DIFFERENCES``), the JSON of a ``jsonSchema`` reply, the 15 tokens of "ping",
  the deferred operation's description and its one not-done poll;
- close: ``inputTextTokens`` — the framing is the real one but the text tokenizer is
  not the real vocabulary (it is not public), so counts of arbitrary text can only be
  near: within 25% high for text, 35% with tools (measured: 3-20% on text);
- shape only: generated text (type, non-empty, cumulative in a stream), a ``jsonObject``
  reply (a JSON object, not the same keys), and the text after tool results (it must
  quote the results, which is what the recorded answer used).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import json_format
from yandex.cloud.ai.foundation_models.v1.text_generation import (
    text_generation_service_pb2 as tg,
)
from yandex.cloud.ai.foundation_models.v1.text_generation import (
    text_generation_service_pb2_grpc as tg_grpc,
)
from yandex.cloud.operation import operation_service_pb2, operation_service_pb2_grpc

from yagpt_magic.emulator import Emulator

from .conftest import TEST_API_KEY

RECORDINGS = Path(__file__).parent / "real_traffic"
FILES = sorted(p.name for p in RECORDINGS.glob("*.gprc.json"))

# (file, interaction index): what the real model did that the emulator's rule does not.
_KNOWN_DIFFERENCES = {
    # After both tools' results came back the real model called `something` a second
    # time (with tool_choice unset); the emulator answers in text once every named tool
    # has its result, which is what a client should expect and handle.
    ("test_parallel_function_call.gprc.json", 5): "answers in text",
}


def _interactions(name: str) -> list[dict[str, Any]]:
    data = json.loads((RECORDINGS / name).read_text(encoding="utf-8"))
    return list(data["interactions"])


def _completion_cases() -> Iterator[Any]:
    for name in FILES:
        for index, interaction in enumerate(_interactions(name)):
            if interaction["request"]["cls"] != "CompletionRequest":
                continue
            if "response_stream" in interaction:
                yield pytest.param(name, index, id=f"{name.split('.')[0]}[{index}]")


@pytest.fixture(scope="module")
def server() -> Iterator[Emulator]:
    with Emulator(api_key=TEST_API_KEY) as emu:
        yield emu


@pytest.fixture(scope="module")
def channel(server: Emulator) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(server.address) as ch:
        yield ch


AUTH = (("authorization", f"Api-Key {TEST_API_KEY}"),)


def _as_dict(message: Any) -> dict[str, Any]:
    return json_format.MessageToDict(message)


def _usage_close(ours: dict[str, Any], real: dict[str, Any], tools: bool) -> None:
    got, want = int(ours["inputTextTokens"]), int(real["inputTextTokens"])
    assert want <= got <= want * (1.35 if tools else 1.25), (got, want)
    assert int(ours["totalTokens"]) == got + int(ours["completionTokens"])


@pytest.mark.parametrize(("name", "index"), list(_completion_cases()))
def test_completion_replays_like_the_recording(
    channel: grpc.Channel, name: str, index: int
) -> None:
    interaction = _interactions(name)[index]
    request = json_format.ParseDict(interaction["request"]["message"], tg.CompletionRequest())
    recorded = [m["message"] for m in interaction["response_stream"]]
    stub = tg_grpc.TextGenerationServiceStub(channel)
    ours = [_as_dict(m) for m in stub.Completion(request, metadata=AUTH)]

    # One message for an unary call; a stream has several, as recorded.
    assert (len(ours) == 1) == (len(recorded) == 1)
    for chunk in ours:
        assert "usage" in chunk, "usage is in every chunk"
        assert chunk["modelVersion"] == recorded[-1]["modelVersion"]
        assert ("completionTokensDetails" in chunk["usage"]) == (
            "completionTokensDetails" in recorded[-1]["usage"]
        )
    # Every chunk but the last is PARTIAL, in the recording and here.
    for chunks in (ours, recorded):
        statuses = [c["alternatives"][0]["status"] for c in chunks]
        assert all(s == "ALTERNATIVE_STATUS_PARTIAL" for s in statuses[:-1])
    inputs = {c["usage"]["inputTextTokens"] for c in ours}
    assert len(inputs) == 1, "the input count is the same in every chunk"
    completions = [int(c["usage"]["completionTokens"]) for c in ours]
    assert completions == sorted(completions), "completion tokens grow chunk by chunk"
    _usage_close(ours[-1]["usage"], recorded[-1]["usage"], tools=bool(request.tools))

    real_final, our_final = recorded[-1]["alternatives"][0], ours[-1]["alternatives"][0]
    if (name, index) in _KNOWN_DIFFERENCES:
        assert our_final["status"] == "ALTERNATIVE_STATUS_FINAL"
        return
    assert our_final["status"] == real_final["status"]
    assert our_final["message"]["role"] == "assistant"
    if real_final["status"] == "ALTERNATIVE_STATUS_TOOL_CALLS":
        assert "text" not in our_final["message"]
        assert our_final["message"]["toolCallList"] == real_final["message"]["toolCallList"]
        return
    text = our_final["message"]["text"]
    assert isinstance(text, str) and text
    texts = [c["alternatives"][0]["message"]["text"] for c in ours]
    assert all(b.startswith(a) for a, b in zip(texts, texts[1:])), "chunks are cumulative"
    real_text = real_final["message"]["text"]
    if request.HasField("json_schema"):
        assert json.loads(text) == json.loads(real_text)
    elif request.json_object:
        assert isinstance(json.loads(text), dict) and isinstance(json.loads(real_text), dict)
    results = [
        r["functionResult"]["content"]
        for m in interaction["request"]["message"]["messages"]
        for r in m.get("toolResultList", {}).get("toolResults", [])
    ]
    for content in results:
        assert content in real_text and content in text, "the answer uses the tool results"


def test_tokenize_ping_is_the_recorded_fifteen_tokens(channel: grpc.Channel) -> None:
    [_discovery, interaction] = _interactions("test_tokenize.gprc.json")
    request = json_format.ParseDict(interaction["request"]["message"], tg.CompletionRequest())
    ours = _as_dict(
        tg_grpc.TokenizerServiceStub(channel).TokenizeCompletion(request, metadata=AUTH)
    )
    real = interaction["response"]["message"]
    assert ours == real, "texts, ids, special flags and modelVersion all equal"


def test_deferred_run_is_done_after_the_recorded_polls(channel: grpc.Channel) -> None:
    [_discovery, start, first_poll, second_poll] = _interactions("test_run_deferred.gprc.json")
    request = json_format.ParseDict(start["request"]["message"], tg.CompletionRequest())
    created = _as_dict(
        tg_grpc.TextGenerationAsyncServiceStub(channel).Completion(request, metadata=AUTH)
    )
    real_created = start["response"]["message"]
    assert created["description"] == real_created["description"]
    assert {"id", "createdAt", "createdBy", "modifiedAt"} <= created.keys()
    assert "done" not in created and "done" not in real_created

    operations = operation_service_pb2_grpc.OperationServiceStub(channel)
    get = operation_service_pb2.GetOperationRequest(operation_id=created["id"])
    polls = [_as_dict(operations.Get(get, metadata=AUTH)) for _ in range(2)]
    real_polls = [first_poll["response"]["message"], second_poll["response"]["message"]]
    assert [p.get("done", False) for p in polls] == [p.get("done", False) for p in real_polls]
    ours, real = polls[1]["response"], real_polls[1]["response"]
    assert ours["@type"] == real["@type"]
    assert ours["modelVersion"] == real["modelVersion"]
    assert ours["alternatives"][0]["status"] == real["alternatives"][0]["status"]
    assert set(ours["usage"]) == set(real["usage"])
