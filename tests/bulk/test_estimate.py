"""``%%chat --map DATA --estimate``: rows, tokens, time and billing, with nothing generated."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from yagpt_magic.bulk import estimate
from yagpt_magic.emulator import Emulator, count_tokens

from ..conftest import fails, magics_of


@pytest.fixture
def session(shell: Any, tmp_path: Path) -> Any:
    shell.run_cell(f"%config ChatMagics.cache_dir = {str(tmp_path / 'rows')!r}").raise_error()
    return magics_of(shell).session


def _number(label: str, text: str) -> int:
    found = re.search(rf"{label}: (?:≈ |at most )?([\d,]+)", text)
    assert found, text
    return int(found.group(1).replace(",", ""))


def test_a_small_job_is_counted_exactly_and_nothing_is_generated(
    shell: Any, session: Any, emulator: Emulator, capsys: Any
) -> None:
    texts = [f"review {i}: " + "word " * (i % 7) for i in range(20)]
    shell.user_ns["items"] = texts
    shell.run_cell("%%chat --map items --estimate --max-tokens 300\nClassify: {item}") \
        .raise_error()
    out = capsys.readouterr().out
    assert emulator.completions == []  # nothing that generates
    assert emulator.tokenize_calls == 20
    expected = sum(count_tokens([("user", f"Classify: {t}")]) for t in texts)
    assert _number("input tokens", out) == expected and "every row counted" in out
    assert _number("reply tokens", out) == 300 * 20
    assert "20 rows" in out and "20 to send" in out
    assert "10 requests in flight" in out  # the documented limit, not the cap of 32
    assert "billed" not in out


def test_a_big_job_is_estimated_from_a_sample_and_says_so(
    shell: Any, session: Any, emulator: Emulator, capsys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(estimate, "SAMPLE", 25)
    shell.user_ns["items"] = ["the same length row"] * 300
    shell.run_cell("%%chat --map items --estimate\n{item}").raise_error()
    out = capsys.readouterr().out
    assert emulator.tokenize_calls == 25 and emulator.completions == []
    assert "counted 25 of 300 rows" in out and "input tokens: ≈" in out
    assert _number("input tokens", out) == 300 * count_tokens([("user", "the same length row")])


def test_batch_says_the_minimum_billed_size_and_deferred_its_quota(
    shell: Any, session: Any, emulator: Emulator, capsys: Any
) -> None:
    shell.user_ns["items"] = ["a", "b", "c"]
    shell.run_cell("%%chat --map items --estimate --batch\n{item}").raise_error()
    out = capsys.readouterr().out
    assert "at least 200,000 tokens per batch run" in out and "pricing policy" in out
    assert "so the minimum applies" in out
    shell.run_cell("%%chat --map items --estimate --deferred\n{item}").raise_error()
    out = capsys.readouterr().out
    assert "10 a second and 5,000 an hour" in out
    assert emulator.completions == []


def test_rows_already_answered_are_not_counted(
    shell: Any, session: Any, emulator: Emulator, capsys: Any
) -> None:
    shell.user_ns["items"] = ["one", "two", "three"]
    shell.user_ns["more"] = ["one", "two", "three", "four"]
    shell.run_cell("%%chat --map items -o out\n{item}").raise_error()
    emulator.reset()
    shell.run_cell("%%chat --map more --estimate\n{item}").raise_error()
    out = capsys.readouterr().out
    assert "3 already answered" in out and "1 to send" in out
    assert emulator.tokenize_calls == 1 and emulator.completions == []


def test_an_undefined_variable_is_one_line(
    shell: Any, session: Any, emulator: Emulator
) -> None:
    message = fails(shell, "%%chat --map nowhere --estimate\n{item}")
    assert message.startswith("--map: 'nowhere' is not defined") and "\n" not in message
    assert "go with --map DATA" in fails(shell, "%%chat --estimate\nHi")
    assert emulator.requests == []
