"""core/storable.py: what no transcript can hold is named, at any depth, without recursion."""

from __future__ import annotations

import json
from typing import Any

import pytest

from yagpt_magic.core.conversation import ToolCall, ToolRound, Turn
from yagpt_magic.core.storable import MAX_DEPTH, problem, turn_problem


def deep(levels: int) -> Any:
    value: Any = 1
    for _ in range(levels):
        value = [value]
    return value


@pytest.mark.parametrize(("value", "found"), [
    (float("nan"), "NaN"),
    ({"a": [1.0, float("-inf")]}, "Infinity"),
    ("ok \ud800", "unpaired surrogate ('\\ud800' at character 3)"),
    ({"key \udcff": 1}, "unpaired surrogate"),
    pytest.param(10**5000, "more than 4,300 digits", id="5001 digits"),
    (deep(MAX_DEPTH + 1), f"nested more than {MAX_DEPTH} levels deep"),
    (deep(100_000), "nested more than"),
])
def test_what_no_file_can_hold_is_named(value: Any, found: str) -> None:
    assert found in (problem(value) or "")


@pytest.mark.parametrize("value", [
    None, True, pytest.param(10**4299, id="4300 digits"), pytest.param(-(10**4299), id="-"),
    1.5, "ordinary text, Юникод 🙂", deep(MAX_DEPTH),
    {"a": {"b": [1, "x", None, False]}},
])
def test_what_json_keeps_exactly_passes(value: Any) -> None:
    assert problem(value) is None
    assert json.loads(json.dumps(value, allow_nan=False)) == value


def test_a_turn_names_the_part_that_cannot_be_kept() -> None:
    turn = Turn("q", "fine", tool_rounds=(ToolRound((ToolCall("f", {"a": deep(200)}, "r"),)),))
    assert turn_problem(turn) == ("the arguments of its call of 'f': it is nested more than "
                                  f"{MAX_DEPTH} levels deep")
    assert turn_problem(Turn("q", "bad \udc80")) is not None
    assert turn_problem(Turn("q", "fine", value={"x": 1})) is None
