"""``core/template.py``: where code is in a message, so ``--vars`` and ``--map`` fill
``{name}`` only outside it and code, JSON and f-strings reach the model as typed."""

from __future__ import annotations

import pytest

from yagpt_magic.core.template import split_code


@pytest.mark.parametrize("text", [
    "",
    "no code at all {name}",
    "inline `f'{x}'` and {name}",
    "```python\nprint(f'{x}')\n```\nthen {name}",
    "~~~\n{\"a\": 1}\n~~~",
    "``a ` b`` and `c`",
    "an unclosed ``` fence {name}",
])
def test_the_pieces_join_back_into_the_text_exactly(text: str) -> None:
    assert "".join(piece for _, piece in split_code(text)) == text


def test_braces_inside_fences_and_spans_are_code_and_outside_are_not() -> None:
    text = 'Rate {review}.\n```json\n{"stars": 5}\n```\nUse `{x}` for {y}.'
    pieces = split_code(text)
    code = [piece for is_code, piece in pieces if is_code]
    prose = "".join(piece for is_code, piece in pieces if not is_code)
    assert code == ['```json\n{"stars": 5}\n```', "`{x}`"]
    assert "{review}" in prose and "{y}" in prose
    assert '"stars"' not in prose and "{x}" not in prose


def test_a_fence_closes_only_on_its_own_mark_at_the_start_of_a_line() -> None:
    text = "````\n```\n{inner}\n```\n````\n{outer}"
    code = [piece for is_code, piece in split_code(text) if is_code]
    assert code == ["````\n```\n{inner}\n```\n````"]


def test_a_lone_backtick_is_not_code() -> None:
    assert split_code("it's 5` tall, {name}") == [(False, "it's 5` tall, {name}")]
