"""``bulk/progress.py``: the bar of ``--map`` and ``--batch`` as a terminal shows it: rows
done of all rows (the cached ones counted from the start), tokens, errors, refusals."""

from __future__ import annotations

import pytest

from yagpt_magic.bulk.mapping import Outcome
from yagpt_magic.bulk.progress import Bar


def last_line(captured: str) -> str:
    """What the terminal shows last: tqdm redraws its line after each carriage return."""
    return [part for part in captured.replace("\n", "\r").split("\r") if part.strip()][-1]


def test_rows_count_from_the_cached_ones_and_the_end_shows_every_figure(
    capsys: pytest.CaptureFixture[str],
) -> None:
    outcome = Outcome(rows=5, cached=2)
    bar = Bar("rows")
    bar.start(outcome)
    assert "2/5" in last_line(capsys.readouterr().err)
    outcome.tokens, outcome.failed, outcome.rejected = 120, 1, 3
    bar.update(outcome, "rejected")  # a refusal is sent again: no row is done by it
    bar.update(outcome, "row")
    bar.close(outcome)
    shown = last_line(capsys.readouterr().err)
    assert "3/5" in shown and "rows" in shown
    assert "tokens=120" in shown and "errors=1" in shown and "rejected=3" in shown
    bar.update(outcome, "row")  # after close: nothing, no error
    bar.close()
    assert capsys.readouterr().err == ""


def test_a_batch_shows_the_progress_and_status_the_service_reports(
    capsys: pytest.CaptureFixture[str],
) -> None:
    bar = Bar("batch")
    bar.set(0, 0, "PENDING")
    bar.set(40, 100, "IN_PROGRESS")
    assert "40/100" in last_line(capsys.readouterr().err)
    bar.set(100, 100, "COMPLETED")
    bar.close()
    shown = last_line(capsys.readouterr().err)
    assert "100/100" in shown and "COMPLETED" in shown
