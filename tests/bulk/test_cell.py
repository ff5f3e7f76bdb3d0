"""``bulk/cell.py``: a ``%%chat --map`` cell as a bulk job. What does not go with ``--map``
is refused in one line before any row is sent; ``-s`` applies to every row and no
thread gains a turn."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from yagpt_magic.emulator import Emulator

from ..conftest import fails


@pytest.fixture
def rows(shell: Any, tmp_path: Path) -> Any:
    shell.run_cell(f"%config ChatMagics.cache_dir = {str(tmp_path / 'rows')!r}").raise_error()
    shell.user_ns["items"] = ["alpha", "beta"]
    return shell


@pytest.mark.parametrize(("line", "says"), [
    ("--batch", "go with --map DATA"),
    ("--fresh", "go with --map DATA"),
    ("--map items --batch --deferred", "two ways to run the rows; pick one"),
    ("--map items --vars", "--vars does not go with --map"),
    ("--map items --tools f", "--tools does not go with --map"),
    ("--map missing", "'missing' is not defined; nothing was sent"),
])
def test_what_does_not_go_with_map_is_one_line_and_nothing_is_sent(
    rows: Any, emulator: Emulator, line: str, says: str,
) -> None:
    assert says in fails(rows, f"%%chat {line}\nSay {{item}}")
    assert emulator.completions == []


def test_system_applies_to_every_row_and_no_thread_gains_a_turn(
    rows: Any, emulator: Emulator,
) -> None:
    rows.run_cell("%%chat --map items -t notes -s 'Answer in one word.' -o out\n"
                  "Say {item}").raise_error()
    sent = sorted(list(r.messages) for r in emulator.completions)
    assert sent == [[("system", "Answer in one word."), ("user", "Say alpha")],
                    [("system", "Answer in one word."), ("user", "Say beta")]]
    assert len(rows.user_ns["out"]) == 2
    session = rows.magics_manager.registry["ChatMagics"].session
    assert session.thread("notes").turns == []
    assert session.thread("notes").system_prompt == "Answer in one word."
