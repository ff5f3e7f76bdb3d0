"""Replay the recorded OpenAI-compatible traffic (tests/real_traffic/chat) against the emulator.

Every recorded ``POST /v1/chat/completions`` is sent twice:

- *on the wire*: its recorded body, byte for byte, with raw httpx (nothing between the
  emulator and the assertions), the answer compared with the recorded one field by field:
  status and content type; the object's keys in order, ``object`` types, the ``model``
  field (open models name themselves without the folder, YandexGPT echoes the URI), the
  id's format (``chatcmpl-<uuid>`` or a bare UUID), ``finish_reason``; the tool calls'
  names, arguments (as the same JSON text), id formats (``chatcmpl-tool-<32 hex>`` or the
  function name) and ``type``; a stream's order of chunk kinds (role, content, tool-call
  head and fragments, the finishing ``delta{}``, the usage chunk with ``choices: []``,
  ``[DONE]``), its increments (deltas, not the text so far), one id, ``created`` and
  model across its chunks; usage keys in order, ``total = prompt + completion``;
- *through the SDK's chat domain* (``AIStudio(service_map={"http_completions": url})``),
  the request rebuilt from the recorded body with the SDK's own configure(): what a
  client sees must be what it saw of the real answer — the finish reason, the usage
  (present, or absent for a YandexGPT stream), the tool calls, the deltas adding up to
  the text.

Close, not equal: ``prompt_tokens`` — the emulator's tokenizer is not the real
vocabulary; its counts must err high by at most 25% (measured: 0-25%). Shape only:
generated text (a JSON reply for ``json_schema`` must be the same JSON; a ``json_object``
reply an object; the answer after tool results must quote them).

One recorded model is no longer served: ``llama`` (September 2025) is missing from the
service's November 2025 model list (test_completion_uri_parser.yaml), so the emulator
refuses it with 404, and its requests replay on ``yandexgpt/rc`` — the recording shows
the same shape as YandexGPT's (whole tool calls, the name as id, no usage chunk).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from yagpt_magic.emulator import Emulator

from .conftest import TEST_API_KEY

RECORDINGS = Path(__file__).parent / "real_traffic" / "chat"
FILES = sorted(p.name for p in RECORDINGS.glob("test_*.yaml"))
RETIRED = {"llama": "yandexgpt"}  # recorded model -> the model its requests replay on

# (file, interaction index): what the real model did that the emulator's rule does not.
_KNOWN_DIFFERENCES = {
    # Offered `something` and `something_else` for "do a SOMETHING and SPOONING ...", the
    # real model called both; the rule calls the tool the request names (`something`),
    # the first of the real calls, with the same arguments.
    ("test_tool_choice.yaml", 0): "calls the named tool only",
}

_UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
_ID_FORMATS = (rf"chatcmpl-{_UUID}", _UUID)
_TOOL_ID = re.compile(r"chatcmpl-tool-[0-9a-f]{32}")


def _interactions(name: str) -> list[dict[str, Any]]:
    return list(yaml.safe_load((RECORDINGS / name).read_text(encoding="utf-8"))["interactions"])


def _cases(stream: bool) -> Iterator[Any]:
    for name in FILES:
        for index, interaction in enumerate(_interactions(name)):
            request = interaction["request"]
            if request["method"] != "POST" or not request["uri"].endswith("/chat/completions"):
                continue
            if bool(json.loads(request["body"]).get("stream")) == stream:
                yield pytest.param(name, index, id=f"{name.removesuffix('.yaml')}[{index}]")


# -- fixtures ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[Emulator, str]]:
    with Emulator(api_key=TEST_API_KEY) as emu:
        yield emu, emu.chat_url


@pytest.fixture(scope="module")
def client(server: tuple[Emulator, str]) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Api-Key {TEST_API_KEY}"}
    with httpx.Client(base_url=server[1], headers=headers, timeout=30) as c:
        yield c


@pytest.fixture(scope="module")
def sdk(server: tuple[Emulator, str]) -> Any:
    from yandex_ai_studio_sdk import AIStudio
    from yandex_ai_studio_sdk.retry import RetryPolicy

    emu, url = server
    return AIStudio(
        folder_id="b1ghsjum2v37c2un8h64",
        auth=TEST_API_KEY,
        endpoint=emu.address,
        verify=False,
        service_map={"http_completions": url},
        retry_policy=RetryPolicy(max_attempts=1),
    )


# -- helpers ------------------------------------------------------------------------------


def _replayed(body: str) -> tuple[str, dict[str, Any]]:
    """The recorded body with a retired model swapped for its replacement."""
    payload = json.loads(body)
    for old, new in RETIRED.items():
        payload["model"] = payload["model"].replace(f"/{old}/", f"/{new}/")
    text = body if payload == json.loads(body) else json.dumps(payload)
    return text, payload


def _expected_model_field(recorded: str) -> str:
    for old, new in RETIRED.items():
        recorded = recorded.replace(f"/{old}/", f"/{new}/")
    return recorded


def _id_format(value: str) -> str:
    return next(f for f in _ID_FORMATS if re.fullmatch(f, value))


def _events(text: str) -> list[str]:
    """The ``data:`` payloads of a server-sent-event body, in order."""
    blocks = [b for b in text.replace("\r\n", "\n").split("\n\n") if b.strip()]
    assert all(b.startswith("data: ") for b in blocks), blocks[:3]
    return [b[len("data: ") :] for b in blocks]


def _prompt_close(ours: dict[str, int], real: dict[str, int]) -> None:
    assert list(ours) == list(real), "usage keys in the recorded order"
    assert ours["total_tokens"] == ours["prompt_tokens"] + ours["completion_tokens"]
    got, want = ours["prompt_tokens"], real["prompt_tokens"]
    assert want <= got <= want * 1.25, (got, want)


def _same_calls(ours: list[dict[str, Any]], real: list[dict[str, Any]], known: bool) -> None:
    names = [c["function"]["name"] for c in ours]
    real_names = [c["function"]["name"] for c in real]
    if known:  # the rule's calls are the first of the real ones
        assert names and names == real_names[: len(names)]
    else:
        assert names == real_names
    for mine, theirs in zip(ours, real):
        assert list(mine) == list(theirs), "tool call keys in the recorded order"
        assert mine["type"] == theirs["type"]
        assert mine["function"]["arguments"] == theirs["function"]["arguments"]
        if _TOOL_ID.fullmatch(theirs["id"]):
            assert _TOOL_ID.fullmatch(mine["id"]), mine["id"]
        else:
            assert theirs["id"] == theirs["function"]["name"]
            assert mine["id"] == mine["function"]["name"]


def _tool_results(payload: dict[str, Any]) -> list[str]:
    return [m["content"] for m in payload["messages"] if m.get("role") == "tool"]


def _check_text(ours: str, real: str, payload: dict[str, Any]) -> None:
    assert isinstance(ours, str) and ours
    fmt = (payload.get("response_format") or {}).get("type")
    if fmt == "json_schema":
        assert json.loads(ours) == json.loads(real)
    elif fmt == "json_object":
        assert isinstance(json.loads(ours), dict)
    for result in _tool_results(payload):
        assert f"`{result}`" in ours, "the answer after tool results quotes them"


# -- the model list -----------------------------------------------------------------------


def test_models_list_like_the_recording(client: httpx.Client) -> None:
    interaction = _interactions("test_completion_uri_parser.yaml")[0]
    folder = interaction["request"]["headers"]["openai-project"][0]
    real = json.loads(interaction["response"]["body"]["string"])
    response = client.get("models", headers={"OpenAI-Project": folder})
    assert response.status_code == 200
    ours = response.json()
    assert list(ours) == list(real) and ours["object"] == "list"
    text_models = [m for m in real["data"] if m["id"].startswith("gpt://")]
    assert ours["data"] == text_models, "the recorded text models, in order, nothing else"


def test_a_retired_model_is_not_found(client: httpx.Client) -> None:
    body = _interactions("test_stream_function_call[llama].yaml")[0]["request"]["body"]
    response = client.post("chat/completions", content=body)
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["code"] == "model_not_found"
    assert "gpt://b1ghsjum2v37c2un8h64/llama/rc" in error["message"]


# -- unary, on the wire --------------------------------------------------------------------


@pytest.mark.parametrize(("name", "index"), list(_cases(stream=False)))
def test_unary_replays_like_the_recording(client: httpx.Client, name: str, index: int) -> None:
    interaction = _interactions(name)[index]
    body, payload = _replayed(interaction["request"]["body"])
    real = json.loads(interaction["response"]["body"]["string"])
    response = client.post("chat/completions", content=body)

    assert response.status_code == interaction["response"]["status"]["code"] == 200
    assert response.headers["content-type"] == "application/json"
    ours = response.json()
    assert list(ours) == list(real)
    assert ours["object"] == real["object"] == "chat.completion"
    assert ours["model"] == _expected_model_field(real["model"])
    assert _id_format(ours["id"]) == _id_format(real["id"])
    assert isinstance(ours["created"], int)
    assert len(ours["choices"]) == len(real["choices"]) == 1
    mine, theirs = ours["choices"][0], real["choices"][0]
    assert list(mine) == list(theirs) and mine["index"] == 0
    assert mine["finish_reason"] == theirs["finish_reason"]
    assert list(mine["message"]) == list(theirs["message"])
    assert mine["message"]["role"] == "assistant"
    if "tool_calls" in theirs["message"]:
        assert mine["message"]["content"] == theirs["message"]["content"] == ""
        _same_calls(
            mine["message"]["tool_calls"],
            theirs["message"]["tool_calls"],
            (name, index) in _KNOWN_DIFFERENCES,
        )
    else:
        _check_text(mine["message"]["content"], theirs["message"]["content"], payload)
    _prompt_close(ours["usage"], real["usage"])


# -- streams, on the wire ------------------------------------------------------------------


def _kind(chunk: dict[str, Any]) -> str:
    """What a chunk carries: role, content, tool head/fragment, finish, usage."""
    if not chunk["choices"]:
        return "usage" if "usage" in chunk else "empty"
    choice = chunk["choices"][0]
    delta = choice["delta"]
    parts = []
    if "role" in delta:
        parts.append("role")
    if "content" in delta:
        parts.append("content")
    for call in delta.get("tool_calls", ()):
        parts.append("tool-head" if call.get("id") else "tool-fragment")
    if choice.get("finish_reason"):
        parts.append(f"finish:{choice['finish_reason']}")
    return "+".join(parts) or "empty"


def _skeleton(kinds: list[str]) -> list[str]:
    """The kinds without plain content, fragments and empty deltas: their number varies
    with the text (an empty delta stands before an emoji, see test_emulator_http)."""
    return [k for k in kinds if k not in ("content", "tool-fragment", "empty")]


def _calls_of(chunks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Tool calls put back together from their deltas, as a client would."""
    calls: dict[int, dict[str, Any]] = {}
    for chunk in chunks:
        for choice in chunk["choices"]:
            for delta in choice["delta"].get("tool_calls", ()):
                call = calls.setdefault(
                    delta["index"], {"id": "", "type": "", "name": "", "arguments": ""}
                )
                call["id"] = call["id"] or delta.get("id", "")
                call["type"] = call["type"] or delta.get("type", "")
                call["name"] += delta["function"].get("name", "")
                call["arguments"] += delta["function"].get("arguments", "")
    return [calls[i] for i in sorted(calls)]


def _contents(chunks: list[dict[str, Any]]) -> list[str]:
    return [
        c["choices"][0]["delta"]["content"]
        for c in chunks
        if c["choices"] and "content" in c["choices"][0]["delta"]
    ]


@pytest.mark.parametrize(("name", "index"), list(_cases(stream=True)))
def test_stream_replays_like_the_recording(client: httpx.Client, name: str, index: int) -> None:
    interaction = _interactions(name)[index]
    body, payload = _replayed(interaction["request"]["body"])
    real_events = _events(interaction["response"]["body"]["string"])
    response = client.post("chat/completions", content=body)

    assert response.status_code == 200
    assert response.headers["content-type"] == "text/event-stream"
    events = _events(response.text)
    assert events[-1] == real_events[-1] == "[DONE]"
    assert "[DONE]" not in events[:-1]
    ours = [json.loads(e) for e in events[:-1]]
    real = [json.loads(e) for e in real_events[:-1]]

    for chunk in ours:
        assert chunk["object"] == "chat.completion.chunk"
        assert list(chunk) == list(real[0]) + (["usage"] if "usage" in chunk else [])
    assert len({(c["id"], c["created"], c["model"]) for c in ours}) == 1, "one id per stream"
    assert ours[0]["model"] == _expected_model_field(real[0]["model"])
    assert _id_format(ours[0]["id"]) == _id_format(real[0]["id"])

    kinds, real_kinds = [_kind(c) for c in ours], [_kind(c) for c in real]
    assert _skeleton(kinds) == _skeleton(real_kinds), (kinds, real_kinds)
    assert ("content" in "".join(kinds)) == ("content" in "".join(real_kinds))

    pieces = _contents(ours)
    if len(_contents(real)) > 1:
        assert len(pieces) > 1
        text = "".join(pieces)
        assert pieces[-1] != text and not all(
            later.startswith(earlier) for earlier, later in zip(pieces, pieces[1:])
        ), "increments, not the text so far"
        _check_text(text, "".join(_contents(real)), payload)

    real_calls, our_calls = _calls_of(real), _calls_of(ours)
    assert [c["name"] for c in our_calls] == [c["name"] for c in real_calls]
    for mine, theirs in zip(our_calls, real_calls):
        assert mine["arguments"] == theirs["arguments"], "the same JSON text, fragment by fragment"
        if _TOOL_ID.fullmatch(theirs["id"]):
            assert _TOOL_ID.fullmatch(mine["id"])
        else:
            assert mine["id"] == mine["name"] and theirs["id"] == theirs["name"]
    heads = [d for c in ours for ch in c["choices"] for d in ch["delta"].get("tool_calls", ())]
    real_heads = [d for c in real for ch in c["choices"] for d in ch["delta"].get("tool_calls", ())]
    if real_heads:
        assert heads[0]["type"] == real_heads[0]["type"]
        assert bool(heads[0]["function"]["arguments"]) == bool(
            real_heads[0]["function"]["arguments"]
        ), "whether the head carries the first fragment"
        assert all(d["id"] == "" and d["type"] == "" for d in heads[1:])

    if real[-1].get("usage"):
        assert ours[-1]["choices"] == [] and "usage" in ours[-1]
        _prompt_close(ours[-1]["usage"], real[-1]["usage"])
    else:
        assert all("usage" not in c for c in ours)


# -- through the SDK ------------------------------------------------------------------------


def _sdk_model(sdk: Any, payload: dict[str, Any]) -> Any:
    """The SDK's chat model configured as the recorded request was."""
    model = sdk.chat.completions(payload["model"])
    config: dict[str, Any] = {}
    known = {"model", "messages", "stream", "temperature", "tools", "parallel_tool_calls",
             "response_format", "tool_choice"}
    if "temperature" in payload:
        config["temperature"] = payload["temperature"]
    if "tools" in payload:
        config["tools"] = [
            sdk.tools.function(
                name=t["function"]["name"],
                description=t["function"].get("description"),
                parameters=t["function"]["parameters"],
                strict=t["function"].get("strict"),
            )
            for t in payload["tools"]
        ]
    if "parallel_tool_calls" in payload:
        config["parallel_tool_calls"] = payload["parallel_tool_calls"]
    fmt = payload.get("response_format")
    if fmt and fmt["type"] == "json_object":
        config["response_format"] = "json"
    elif fmt:
        spec = fmt["json_schema"]
        config["response_format"] = {
            "name": spec["name"],
            "json_schema": spec["schema"],
            **({"strict": spec["strict"]} if "strict" in spec else {}),
        }
    extra = {k: v for k, v in payload.items() if k not in known}
    if extra:
        config["extra_query"] = extra
    return model.configure(**config)


def _sdk_calls(result: Any) -> list[tuple[str, dict[str, Any], str]]:
    return [(c.function.name, dict(c.function.arguments), c.id) for c in result.tool_calls or ()]


def _real_calls(message_calls: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    return [(c["name"], json.loads(c["arguments"])) for c in message_calls]


@pytest.mark.parametrize(("name", "index"), list(_cases(stream=False)))
def test_the_sdk_reads_an_unary_reply_as_the_recorded_one(
    sdk: Any, name: str, index: int
) -> None:
    interaction = _interactions(name)[index]
    _body, payload = _replayed(interaction["request"]["body"])
    real = json.loads(interaction["response"]["body"]["string"])["choices"][0]
    result = _sdk_model(sdk, payload).run(payload["messages"])

    assert result.finish_reason.value == real["finish_reason"]
    assert result.usage is not None and result.usage.input_text_tokens > 0
    real_calls = [
        {"name": c["function"]["name"], "arguments": c["function"]["arguments"]}
        for c in real["message"].get("tool_calls", ())
    ]
    calls = [(n, a) for n, a, _id in _sdk_calls(result)]
    expected = _real_calls(real_calls)
    if (name, index) in _KNOWN_DIFFERENCES:
        expected = expected[: len(calls)]
    assert calls == expected
    if not real_calls:
        _check_text(result.text, real["message"]["content"], payload)


@pytest.mark.parametrize(("name", "index"), list(_cases(stream=True)))
def test_the_sdk_reads_a_stream_as_the_recorded_one(sdk: Any, name: str, index: int) -> None:
    interaction = _interactions(name)[index]
    _body, payload = _replayed(interaction["request"]["body"])
    real = [json.loads(e) for e in _events(interaction["response"]["body"]["string"])[:-1]]
    results = list(_sdk_model(sdk, payload).run_stream(payload["messages"]))

    real_finish = next(
        c["choices"][0]["finish_reason"]
        for c in real
        if c["choices"] and c["choices"][0].get("finish_reason")
    )
    with_calls = [r for r in results if r.tool_calls]
    if real_finish == "tool_calls":
        assert len(with_calls) == 1 and with_calls[0].finish_reason.value == "tool_calls"
        real_calls = [
            {"name": c["name"], "arguments": c["arguments"]} for c in _calls_of(real)
        ]
        assert [(n, a) for n, a, _id in _sdk_calls(with_calls[0])] == _real_calls(real_calls)
    else:
        assert not with_calls
        final = next(r for r in results if r.finish_reason.value == real_finish)
        assert "".join(r[0].delta for r in results) == final.text, "deltas add up to the text"
        _check_text(final.text, "".join(_contents(real)), payload)
    if real[-1].get("usage"):  # open models end with a usage chunk
        assert results[-1].finish_reason.value == "usage" and results[-1].usage is not None
    else:
        assert all(r.usage is None for r in results)
