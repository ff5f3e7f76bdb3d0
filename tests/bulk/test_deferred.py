"""``%%chat --map DATA --deferred``: the asynchronous mode, end to end through the real SDK."""

from __future__ import annotations

import _thread
import re
import threading
import time
from pathlib import Path
from typing import Any

import grpc
import pytest

from yagpt_magic.bulk import deferred
from yagpt_magic.core.errors import ServiceError, UsageProblem
from yagpt_magic.emulator import Emulator

from ..conftest import fails, magics_of

pd = pytest.importorskip("pandas")

FAST = 0.01


@pytest.fixture
def session(shell: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setattr(deferred, "POLL_INTERVAL", FAST)
    shell.run_cell(f"%config ChatMagics.cache_dir = {str(tmp_path / 'rows')!r}").raise_error()
    return magics_of(shell).session


def _submits(emulator: Emulator) -> list[str]:
    return [r.messages[-1][1] for r in emulator.completions if r.method == "AsyncCompletion"]


def _job(text: str) -> str:
    found = re.search(r"Deferred job (def-\w+)", text)
    assert found, text
    return found.group(1)


def test_rows_come_back_in_order_with_failures_in_place(
    shell: Any, session: Any, emulator: Emulator, capsys: Any
) -> None:
    frame = pd.DataFrame({"text": [f"review {i}" for i in range(12)]})
    shell.user_ns["df"] = frame
    emulator.fail(grpc.StatusCode.INVALID_ARGUMENT, "bad row", method="AsyncCompletion")
    shell.run_cell("%%chat --map df -o label --deferred\nClassify: {text}").raise_error()
    out = capsys.readouterr().out
    assert _job(out).startswith("def-") and "11 of 12 rows answered" in out
    labels = list(frame["label"])
    failed = [i for i, label in enumerate(labels) if isinstance(label, ServiceError)]
    assert len(failed) == 1 and "bad row" in str(labels[failed[0]])
    for i, label in enumerate(labels):
        if i not in failed:
            assert f"“Classify: review {i}”" in label
    assert len(_submits(emulator)) == 12
    # All answered rows are kept: the same job again sends only the failed row.
    emulator.reset()
    shell.run_cell("%%chat --map df -o label --deferred\nClassify: {text}").raise_error()
    assert _submits(emulator) == [f"Classify: review {failed[0]}"]
    assert all(isinstance(label, str) for label in frame["label"])


def test_an_interrupt_then_a_rerun_pays_only_the_missing_rows(
    shell: Any, session: Any, emulator: Emulator, capsys: Any
) -> None:
    emulator.pending_polls = 3
    shell.user_ns["items"] = [f"row {i}" for i in range(60)]
    cell = "%%chat --map items -o out --deferred\n{item}"

    def interrupt_when_some_are_submitted() -> None:
        while len(_submits(emulator)) < 20:
            time.sleep(0.005)
        _thread.interrupt_main()

    threading.Thread(target=interrupt_when_some_are_submitted, daemon=True).start()
    message = fails(shell, cell)
    assert message.startswith("Interrupted:") and "keep running on the service" in message
    first = len(_submits(emulator))
    assert 20 <= first < 60

    shell.run_cell(cell).raise_error()
    out = shell.user_ns["out"]
    assert [f"“row {i}”" in text for i, text in enumerate(out)] == [True] * 60
    # Each row submitted once across both runs, but for the submits on the wire at the
    # interrupt (answered by the service, their ids never received): sent again.
    assert 60 <= len(_submits(emulator)) <= 60 + deferred.WORKERS
    assert len(set(_submits(emulator))) == 60
    assert "60 of 60 rows answered" in capsys.readouterr().out


def test_a_restarted_kernel_picks_the_job_up_by_its_id(
    shell: Any, session: Any, emulator: Emulator, tmp_path: Path, capsys: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(deferred, "POLL_INTERVAL", 30.0)  # no poll before the interrupt
    emulator.pending_polls = 3
    shell.user_ns["items"] = [f"row {i}" for i in range(8)]

    def interrupt_when_all_are_submitted() -> None:
        while len(_submits(emulator)) < 8:
            time.sleep(0.005)
        time.sleep(0.1)
        _thread.interrupt_main()

    threading.Thread(target=interrupt_when_all_are_submitted, daemon=True).start()
    fails(shell, "%%chat --map items -o out --deferred\n{item}")
    job = _job(capsys.readouterr().out)

    # A new session (what a kernel restart leaves): only the id and the cache folder.
    shell.run_line_magic("unload_ext", "yagpt_magic")
    shell.__dict__.pop("_yagpt_magic_threads", None)
    shell.run_line_magic("load_ext", "yagpt_magic")
    shell.run_cell(f"%config ChatMagics.cache_dir = {str(tmp_path / 'rows')!r}").raise_error()
    table = shell.run_line_magic("chat", f"batch status {job}")
    assert table.rows[0][:3] == (job, "RUNNING", "0/8 rows")
    listed = shell.run_line_magic("chat", "batch status")
    assert job in [row[0] for row in listed.rows]

    results = shell.run_line_magic("chat", f"batch fetch {job} --poll 0.01")
    assert [f"“row {i}”" in text for i, text in enumerate(results)] == [True] * 8
    assert "8 of 8 rows answered" in capsys.readouterr().out
    assert len(_submits(emulator)) == 8  # nothing submitted again
    # And the cell run again takes every row from the cache.
    shell.run_cell("%%chat --map items -o out --deferred\n{item}").raise_error()
    assert len(_submits(emulator)) == 8


def test_deferred_with_batch_or_alone_is_one_line(
    shell: Any, session: Any, emulator: Emulator
) -> None:
    shell.user_ns["items"] = ["a", "b"]
    message = fails(shell, "%%chat --map items --deferred --batch\n{item}")
    assert "--batch and --deferred" in message and "Nothing was sent" in message
    assert "go with --map DATA" in fails(shell, "%%chat --deferred\nHi")
    message = fails(shell, "%chat batch fetch def-000000000000")
    assert "No deferred job 'def-000000000000'" in message
    assert emulator.completions == []


def test_a_job_from_another_service_is_not_picked_up(
    shell: Any, session: Any, emulator: Emulator, clean_env: pytest.MonkeyPatch, capsys: Any
) -> None:
    shell.user_ns["items"] = ["a"]
    shell.run_cell("%%chat --map items -o out --deferred\n{item}").raise_error()
    job = _job(capsys.readouterr().out)
    with Emulator(api_key=emulator.api_key) as other:
        clean_env.setenv("YC_API_ENDPOINT", other.address)
        with pytest.raises(UsageProblem, match="ran on another service"):
            deferred.pick_up(session, job, wait=False, fetch=True)
