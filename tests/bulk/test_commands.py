"""``bulk/commands/``: ``%chat cache`` says where ``--map`` keeps answered rows, how many
and how big, and ``clear`` forgets them so the next run asks again. (``%chat batch`` is
exercised with the batch jobs it follows, in ``test_batch_jobs.py``.)"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from yagpt_magic.emulator import Emulator


def test_cache_shows_the_kept_rows_and_clear_makes_the_next_run_ask_again(
    shell: Any, emulator: Emulator, tmp_path: Path, capsys: Any,
) -> None:
    rows = tmp_path / "rows"
    shell.run_cell(f"%config ChatMagics.cache_dir = {str(rows)!r}").raise_error()
    empty = repr(shell.run_cell("%chat cache").result)
    assert str(rows) in empty and "%chat cache clear" in empty

    shell.user_ns["items"] = ["one", "two", "three"]
    shell.run_cell("%%chat --map items -o replies\nSay {item}").raise_error()
    assert len(emulator.completions) == 3
    shown = repr(shell.run_cell("%chat cache").result)
    assert str(rows) in shown
    assert any(line.split()[:2] == ["rows", "3"] for line in shown.splitlines()), shown

    shell.run_cell("%%chat --map items -o again\nSay {item}").raise_error()
    assert len(emulator.completions) == 3  # answered from the cache: nothing sent
    capsys.readouterr()
    shell.run_cell("%chat cache clear").raise_error()
    assert "3 rows forgotten" in capsys.readouterr().out
    shell.run_cell("%%chat --map items -o fresh\nSay {item}").raise_error()
    assert len(emulator.completions) == 6
    assert shell.user_ns["fresh"] == shell.user_ns["replies"]
