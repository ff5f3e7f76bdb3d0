"""The SDK's own usage patterns against the emulator: tools, tool_choice, response_format.

Function calling and structured output go through the unmodified SDK exactly as its
documentation shows (``sdk.tools.function``, ``configure(tools=..., tool_choice=...)``,
results sent back as ``{"tool_results": [...]}``; ``configure(response_format=...)``), so a
product test built on these patterns meets what the real service would send.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import grpc
import jsonschema
import pytest

from yagpt_magic.emulator import Emulator

SdkFor = Callable[..., Any]

WEATHER = {
    "type": "object",
    "properties": {
        "city": {"type": "string", "description": "City name"},
        "days": {"type": "integer", "minimum": 1},
        "units": {"type": "string", "enum": ["metric", "imperial"]},
        "verbose": {"type": "boolean"},
    },
    "required": ["city", "days", "units"],
}
NUMBERS = {
    "title": "Numbers",
    "type": "object",
    "properties": {"numbers": {"title": "Numbers", "type": "array", "items": {"type": "integer"}}},
    "required": ["numbers"],
}

# What pydantic v2 emits for a model with a nested model, an enum, a list and an Optional.
PYDANTIC_LIKE = {
    "$defs": {
        "Color": {"enum": ["red", "green", "blue"], "title": "Color", "type": "string"},
        "Point": {
            "properties": {"x": {"title": "X", "type": "number"},
                           "y": {"title": "Y", "type": "number"}},
            "required": ["x", "y"],
            "title": "Point",
            "type": "object",
        },
    },
    "properties": {
        "name": {"title": "Name", "type": "string"},
        "color": {"$ref": "#/$defs/Color"},
        "points": {"items": {"$ref": "#/$defs/Point"}, "title": "Points", "type": "array"},
        "note": {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None},
        "count": {"type": "integer", "minimum": 1, "maximum": 10},
        "tags": {"type": "array", "items": {"type": "string"}, "minItems": 2},
    },
    "required": ["name", "color", "points", "count", "tags"],
    "title": "Shape",
    "type": "object",
}


def _tools(sdk: Any, *names: str, schema: dict[str, Any] | None = None) -> list[Any]:
    return [
        sdk.tools.function(schema or NUMBERS, name=name, description=f"Tool {name}")
        for name in names
    ]


def _model(sdk: Any, **config: Any) -> Any:
    return sdk.models.completions("yandexgpt", model_version="rc").configure(**config)


def _calls(result: Any) -> list[tuple[str, dict[str, Any]]]:
    assert result.status.name == "TOOL_CALLS"
    assert result.text in ("", None)
    return [(c.function.name, dict(c.function.arguments)) for c in result.tool_calls]


# -- 6. tools ------------------------------------------------------------------------------


def test_one_call_with_arguments_from_the_text(emulator: Emulator, sdk_for: SdkFor) -> None:
    sdk = sdk_for(emulator)
    model = _model(sdk, tools=_tools(sdk, "weather", schema=WEATHER))
    result = model.run('Use weather for "Paris" over 3 days, imperial units please')
    assert _calls(result) == [
        ("weather", {"city": "Paris", "days": 3, "units": "imperial"})
    ]


def test_parallel_calls_in_the_order_named(emulator: Emulator, sdk_for: SdkFor) -> None:
    sdk = sdk_for(emulator)
    model = _model(sdk, tools=_tools(sdk, "alpha", "beta", "gamma"))
    result = model.run("call GAMMA and alpha on 1, 2, 3")
    assert _calls(result) == [("gamma", {"numbers": [1, 2, 3]}), ("alpha", {"numbers": [1, 2, 3]})]


def test_rounds_then_an_answer_that_uses_the_results(emulator: Emulator, sdk_for: SdkFor) -> None:
    sdk = sdk_for(emulator)
    model = _model(sdk, tools=_tools(sdk, "fetch", "summarize"))
    messages: list[Any] = [{"role": "user", "text": "fetch 7, then summarize it"}]

    first = model.run(messages)
    assert _calls(first) == [("fetch", {"numbers": [7]})]
    messages += [first, {"tool_results": [{"name": "fetch", "content": "FETCHED-42"}]}]

    second = model.run(messages)
    assert [name for name, _ in _calls(second)] == ["summarize"]
    messages += [second, {"tool_results": [{"name": "summarize", "content": "SHORT"}]}]

    final = model.run(messages)
    assert final.status.name == "FINAL"
    assert "FETCHED-42" in final.text and "SHORT" in final.text
    assert "offline emulator" in final.text
    recorded = emulator.completions[-1].messages
    assert recorded[1] == ("assistant", 'fetch({"numbers":[7]})')
    assert recorded[2] == ("user", "fetch: FETCHED-42")


def test_parallel_tool_calls_false_calls_one_at_a_time(
    emulator: Emulator, sdk_for: SdkFor
) -> None:
    sdk = sdk_for(emulator)
    model = _model(sdk, tools=_tools(sdk, "alpha", "beta"), parallel_tool_calls=False)
    messages: list[Any] = [{"role": "user", "text": "alpha and beta please"}]
    first = model.run(messages)
    assert [n for n, _ in _calls(first)] == ["alpha"]
    messages += [first, {"tool_results": [{"name": "alpha", "content": "A"}]}]
    assert [n for n, _ in _calls(model.run(messages))] == ["beta"]


@pytest.mark.parametrize(("choice", "named", "expected"), [
    ("none", "use alpha", None),
    ("auto", "use alpha", ["alpha"]),
    ("auto", "no tool is named here", None),
    ("required", "no tool is named here", ["alpha"]),
    ("required", "use beta", ["beta"]),
    ({"type": "function", "function": {"name": "beta"}}, "use alpha", ["beta"]),
])
def test_tool_choice_is_honoured(
    emulator: Emulator, sdk_for: SdkFor, choice: Any, named: str, expected: list[str] | None
) -> None:
    sdk = sdk_for(emulator)
    model = _model(sdk, tools=_tools(sdk, "alpha", "beta"), tool_choice=choice)
    result = model.run(named)
    if expected is None:
        assert result.status.name == "FINAL" and result.tool_calls is None
        assert "offline emulator" in result.text
    else:
        assert [n for n, _ in _calls(result)] == expected


def test_tool_choice_of_a_function_not_offered_is_invalid(
    emulator: Emulator, sdk_for: SdkFor
) -> None:
    sdk = sdk_for(emulator)
    model = _model(sdk, tools=_tools(sdk, "alpha"),
                   tool_choice={"type": "function", "function": {"name": "zeta"}})
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        model.run("hi")
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (caught.value.details() or "").endswith(
        ": tool_choice function 'zeta' is not among the tools"
    )


def test_a_test_can_script_any_call(emulator: Emulator, sdk_for: SdkFor) -> None:
    sdk = sdk_for(emulator)
    model = _model(sdk, tools=_tools(sdk, "alpha"))
    emulator.call_tools([("rm_rf", {"path": "/"}), {"name": "alpha", "arguments": {"n": 1}}])
    assert _calls(model.run("anything")) == [("rm_rf", {"path": "/"}), ("alpha", {"n": 1})]
    assert model.run("anything").status.name == "FINAL", "scripted once"


def test_tool_calls_stream_as_one_chunk(emulator: Emulator, sdk_for: SdkFor) -> None:
    sdk = sdk_for(emulator)
    parts = list(_model(sdk, tools=_tools(sdk, "alpha")).run_stream("alpha on 5"))
    assert len(parts) == 1
    assert parts[0].status.name == "TOOL_CALLS"
    assert parts[0].usage.completion_tokens > 0


# -- 7. response_format ----------------------------------------------------------------------


def test_json_schema_reply_validates(emulator: Emulator, sdk_for: SdkFor) -> None:
    model = _model(sdk_for(emulator), response_format={"json_schema": PYDANTIC_LIKE})
    result = model.run('Describe "Triangle" in green with 3 corners')
    value = json.loads(result.text)
    jsonschema.validate(value, PYDANTIC_LIKE)
    assert value["name"] == "Triangle" and value["color"] == "green" and value["count"] == 3
    assert result.text == model.run('Describe "Triangle" in green with 3 corners').text


def test_json_schema_as_the_recording(emulator: Emulator, sdk_for: SdkFor) -> None:
    model = _model(sdk_for(emulator), response_format={"json_schema": NUMBERS})
    assert json.loads(model.run("collect all numbers from: 5, 4, a, 1").text) == {
        "numbers": [5, 4, 1]
    }


def test_json_object_reply_is_an_object(emulator: Emulator, sdk_for: SdkFor) -> None:
    result = _model(sdk_for(emulator), response_format="json").run("numbers: 5, 4, a, 1")
    value = json.loads(result.text)
    assert isinstance(value, dict)
    assert value["source"] == "offline emulator" and value["numbers"] == [5, 4, 1]


def test_scripted_invalid_json_goes_through_a_structured_request(
    emulator: Emulator, sdk_for: SdkFor
) -> None:
    emulator.reply_with('{"name": "Triangle", ')
    model = _model(sdk_for(emulator), response_format={"json_schema": PYDANTIC_LIKE})
    text = model.run("Describe a triangle").text
    assert text == '{"name": "Triangle", '
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)


def test_pydantic_model_response_format(emulator: Emulator, sdk_for: SdkFor) -> None:
    import pydantic  # in the test extra: the SDK's own structured-output pattern needs it

    class Numbers(pydantic.BaseModel):
        numbers: list[int]
        label: str | None = None

    model = _model(sdk_for(emulator), response_format=Numbers)
    parsed = Numbers.model_validate_json(model.run("collect 5, 4, a, 1").text)
    assert parsed.numbers == [5, 4, 1]
