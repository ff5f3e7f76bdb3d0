"""Which function tools the emulator calls, with which arguments: a documented rule.

The real service answers a request that offers function tools with status
``TOOL_CALLS`` and a ``toolCallList`` (recorded in test_function_call,
test_parallel_function_call, test_tool_choice); the client runs the calls and sends a
``toolResultList`` back; the model then answers in text. The emulator decides like this:

1. *The request* is the last ``user`` message with text; *results* are the
   ``toolResultList`` entries after it.
2. *Named tools*: a tool is named when its name appears in the request text as a word,
   case-insensitive, ``_``/``-`` matching a space too ("do a SOMETHING and SPOONING"
   names ``something`` and ``spooning``). They are called in the order named.
   *Arithmetic*: a request that writes out a calculation — numbers joined by an
   operator, ``7@8``, ``2 + 3 * 4`` — asks for a calculator: when it names no tool and
   exactly one offered tool presents itself as a calculator (its name or description
   speaks of calculating, arithmetic or math), that tool is called, and its string
   parameters get the expression as written (``{"expression": "7@8"}``, as the real
   models did in the recorded test_stream_function_call). With two calculators on offer
   the rule does not guess and answers in text — the SDK authors saw the real model do
   that (their function_calling/completions/tool_choice example asserts it), while their
   raw_tool_calls_processing example, with one calculator, expects the call.
3. *Rounds*: the word "then" (or "затем"/"потом") splits the request into stages. A round
   calls the named tools of the first stage that still lacks results; the next stage waits
   until those results came back ("call A then B": A, then after A's result, B).
4. ``parallel_tool_calls`` false: one call per round (the first pending one), as the
   recording shows; unset or true: all pending calls of the stage at once.
5. ``tool_choice``: ``NONE`` never calls; ``AUTO`` (or unset) calls pending named tools
   and otherwise answers in text; ``REQUIRED`` always calls (the pending ones, else the
   first offered tool not yet called, else the first offered tool — the real API forces a
   call every time, so a client must bound its rounds); a function name calls that function
   until its result is back, then answers. A function name that is not offered is
   ``INVALID_ARGUMENT``.
6. *Arguments* are built from the function's JSON schema with
   :func:`structured.value_for` over the request text: each *required* parameter gets the
   text's numbers (an ``array`` of numbers takes them all: "5, 4, a, 1" -> ``[5, 4, 1]``),
   quoted strings, a mentioned ``enum`` value, or a deterministic default of its type.
7. With no call to make, the reply is text: when results came back it quotes each
   result (:func:`replies.reply_with_results`), otherwise it is the usual offline reply.

A test can script the next reply's calls exactly (``Emulator.call_tools``), including a
function the request did not offer.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from google.protobuf import json_format
from yandex.cloud.ai.foundation_models.v1 import text_common_pb2 as common
from yandex.cloud.ai.foundation_models.v1.text_generation import (
    text_generation_service_pb2 as tg,
)

from .schema_values import value_for

__all__ = ["Call", "ToolChoiceError", "calls_for", "results_after_request", "tool_texts"]

_STAGE_RE = re.compile(r"\b(?:then|затем|потом)\b", re.IGNORECASE)
_NUMBER = r"\d+(?:[.,]\d+)?"
_EXPRESSION_RE = re.compile(
    rf"(?<![\w.]){_NUMBER}(?:\s*[-+*/×÷^%@]\s*{_NUMBER})+(?![\w.])"
)
_CALCULATOR_RE = re.compile(
    r"calculat|arithmetic|\bmath|калькулятор|арифметик|вычисл", re.IGNORECASE
)


@dataclass(frozen=True)
class Call:
    """One function call the reply asks for."""

    name: str
    arguments: Mapping[str, Any]


class ToolChoiceError(ValueError):
    """``tool_choice`` names a function the request does not offer."""


def tool_texts(request: tg.CompletionRequest) -> list[str]:
    """The offered tools as the tokenizer counts them: their JSON without quotes and braces.

    Raw JSON would cost one token per quote and brace, twice what the real service
    counts (about 70 tokens for the recorded one-parameter tool; this gives 86).
    """
    texts = []
    for tool in request.tools:
        compact = json.dumps(
            json_format.MessageToDict(tool.function), ensure_ascii=False, separators=(",", ":")
        )
        texts.append(compact.translate(_BARE))
    return texts


_BARE = str.maketrans("", "", '"{}')


def _request_index(request: tg.CompletionRequest) -> int:
    for i in range(len(request.messages) - 1, -1, -1):
        message = request.messages[i]
        if message.role == "user" and message.WhichOneof("Content") == "text":
            return i
    return -1


def results_after_request(request: tg.CompletionRequest) -> list[tuple[str, str]]:
    """(name, content) of every function result sent after the request text."""
    found: list[tuple[str, str]] = []
    for message in request.messages[_request_index(request) + 1 :]:
        if message.WhichOneof("Content") == "tool_result_list":
            for result in message.tool_result_list.tool_results:
                found.append((result.function_result.name, result.function_result.content))
    return found


def _calls_after_request(request: tg.CompletionRequest) -> list[str]:
    names: list[str] = []
    for message in request.messages[_request_index(request) + 1 :]:
        if message.WhichOneof("Content") == "tool_call_list":
            names.extend(c.function_call.name for c in message.tool_call_list.tool_calls)
    return names


def _named(text: str, names: Sequence[str]) -> list[str]:
    """Tool names mentioned in ``text``, in order; a longer name wins an overlap."""
    hits: list[tuple[int, int, str]] = []
    for name in names:
        pattern = r"[\s_-]+".join(re.escape(part) for part in re.split(r"[_\-\s]+", name) if part)
        if not pattern:
            continue
        for match in re.finditer(rf"(?<!\w){pattern}(?!\w)", text, re.IGNORECASE):
            hits.append((match.start(), -(match.end() - match.start()), name))
    ordered: list[str] = []
    taken: list[tuple[int, int]] = []
    for start, negative_length, name in sorted(hits):
        end = start - negative_length
        if any(start < t_end and t_start < end for t_start, t_end in taken):
            continue
        taken.append((start, end))
        if name not in ordered:
            ordered.append(name)
    return ordered


def _expression(text: str) -> str | None:
    """The first calculation written out in ``text`` (``7@8``), if any."""
    match = _EXPRESSION_RE.search(text)
    return match.group(0) if match else None


def _is_calculator(tool: common.FunctionTool) -> bool:
    return _CALCULATOR_RE.search(f"{tool.name.replace('_', ' ')} {tool.description}") is not None


def _calculator(text: str, tools: Mapping[str, common.FunctionTool]) -> list[str]:
    """The one calculator an arithmetic request asks for; [] with none or several."""
    if _expression(text) is None:
        return []
    calculators = [name for name, tool in tools.items() if _is_calculator(tool)]
    return calculators if len(calculators) == 1 else []


def _arguments(tool: common.FunctionTool, text: str) -> dict[str, Any]:
    schema = json_format.MessageToDict(tool.parameters) if tool.HasField("parameters") else {}
    expression = _expression(text) if _is_calculator(tool) else None
    strings = [expression] if expression is not None else []
    value = value_for(schema, text, strings=strings) if schema else {}
    if not isinstance(value, dict):
        return {}
    required = schema.get("required")
    if required is None:
        return value
    return {key: val for key, val in value.items() if key in required}


def calls_for(request: tg.CompletionRequest) -> list[Call]:
    """The calls this request's reply makes under the rule above; [] means answer in text."""
    tools = {t.function.name: t.function for t in request.tools if t.HasField("function")}
    if not tools:
        return []
    index = _request_index(request)
    text = request.messages[index].text if index >= 0 else ""
    answered = {name for name, _content in results_after_request(request)}
    choice = request.tool_choice if request.HasField("tool_choice") else None
    kind = choice.WhichOneof("ToolChoice") if choice is not None else None
    if kind == "function_name":
        assert choice is not None
        wanted = choice.function_name
        if wanted not in tools:
            raise ToolChoiceError(f"tool_choice function '{wanted}' is not among the tools")
        return [] if wanted in answered else [Call(wanted, _arguments(tools[wanted], text))]
    mode = choice.mode if kind == "mode" and choice is not None else common.ToolChoice.AUTO
    if mode == common.ToolChoice.NONE:
        return []
    pending: list[str] = []
    named = False
    for stage in _STAGE_RE.split(text):
        stage_names = _named(stage, list(tools))
        named = named or bool(stage_names)
        pending = [name for name in stage_names if name not in answered]
        if pending:
            break
    if not named:
        pending = [name for name in _calculator(text, tools) if name not in answered]
    if not pending and mode == common.ToolChoice.REQUIRED:
        called = set(_calls_after_request(request))
        pending = [next((n for n in tools if n not in called), next(iter(tools)))]
    parallel = (
        request.parallel_tool_calls.value if request.HasField("parallel_tool_calls") else True
    )
    if not parallel:
        pending = pending[:1]
    return [Call(name, _arguments(tools[name], text)) for name in pending]
