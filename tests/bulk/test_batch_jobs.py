"""``%%chat --map --batch`` and ``%chat batch``: the service's batch processing, end to end.

Against the emulator's datasets, storage and batch services through the unmodified
SDK; the pick-up after a restart runs in a real kernel that is restarted.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest

from yagpt_magic.bulk import batch_jobs as batch
from yagpt_magic.core.errors import ServiceError
from yagpt_magic.emulator import Emulator

from ..conftest import emulator_env, fails, magics_of
from ..kernel import Kernel

pytest.importorskip("pyarrow")  # the SDK reads result datasets as Parquet
pd = pytest.importorskip("pandas")

FAST = 0.01


@pytest.fixture
def session(shell: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setattr(batch, "POLL_INTERVAL", FAST)
    shell.run_cell(f"%config ChatMagics.cache_dir = {str(tmp_path / 'rows')!r}").raise_error()
    return magics_of(shell).session


def _task_id(text: str) -> str:
    found = re.search(r"Batch task (\S+) started", text)
    assert found, text
    return found.group(1)


def test_batch_returns_the_interactive_answers_in_row_order(
    shell: Any, session: Any, emulator: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    items = [f"review {i}" for i in range(7)]
    shell.user_ns["items"] = items
    shell.run_cell("%%chat --map items --batch -o batched\nClassify: {item}").raise_error()
    out = capsys.readouterr().out
    task_id = _task_id(out)
    assert f"%chat batch fetch {task_id}" in out and "7 of 7 rows answered" in out
    assert not emulator.completions or all(
        r.method == "Completion" for r in emulator.completions)

    shell.run_cell("%%chat --map items -o interactive\nClassify: {item}").raise_error()
    assert shell.user_ns["batched"] == shell.user_ns["interactive"]
    assert [f"“Classify: review {i}”" in t for i, t in enumerate(shell.user_ns["batched"])] \
        == [True] * 7
    methods = {r.method for r in emulator.requests}
    assert {"BatchCompletion", "DatasetCreate"} <= methods


def test_a_dataframe_gets_its_column_and_a_long_row_holds_its_error(
    shell: Any, session: Any, emulator: Emulator
) -> None:
    emulator.context_window = 60
    frame = pd.DataFrame({"text": ["fine", "word " * 200, "great"]})
    shell.user_ns["df"] = frame
    shell.run_cell("%%chat --map df --batch -o label\nSay: {text}").raise_error()
    assert "“Say: fine”" in frame["label"][0] and "“Say: great”" in frame["label"][2]
    error = frame["label"][1]
    assert isinstance(error, ServiceError) and "input tokens must be no more than 60" in str(error)


def test_fetch_status_and_wait_by_id(
    shell: Any, session: Any, emulator: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    shell.user_ns["items"] = ["a", "b", "c"]
    shell.run_cell("%%chat --map items --batch -o first\n{item}?").raise_error()
    task_id = _task_id(capsys.readouterr().out)

    status = shell.run_cell(f"%chat batch status {task_id}").result
    assert "COMPLETED" in repr(status)
    assert task_id in repr(shell.run_cell("%chat batch status").result)
    fetched = shell.run_cell(f"%chat batch fetch {task_id} --poll 0.01").result
    assert fetched == shell.user_ns["first"]

    assert "No batch task 'nosuchtask'" in fails(shell, "%chat batch fetch nosuchtask")
    assert "needs the task's ID" in fails(shell, "%chat batch wait")


def test_a_new_kernel_picks_the_task_up_after_an_interrupt_and_a_restart(
    emulator: Emulator,
) -> None:
    env = emulator_env(emulator)
    with Kernel(env) as kernel:
        setup = (
            "%load_ext yagpt_magic\n"
            "import yagpt_magic.bulk.batch_jobs, tempfile\n"
            "yagpt_magic.bulk.batch_jobs.POLL_INTERVAL = {poll}\n"
            "%config ChatMagics.cache_dir = tempfile.mkdtemp()\n"
        )
        assert kernel.run(setup.format(poll=30)).ok  # a slow poll: still waiting below
        kernel.run("rows = ['one', 'two', 'three']")
        msg_id = kernel.send("%%chat --map rows --batch -o out\nEcho {item}")
        # The user sees the task's id printed, then presses Interrupt while it waits.
        printed = ""
        while "started" not in printed:
            msg = kernel.client.get_iopub_msg(timeout=30)
            if msg["parent_header"].get("msg_id") == msg_id and msg["msg_type"] == "stream":
                printed += msg["content"]["text"]
        task_id = _task_id(printed)
        deadline = time.monotonic() + 30
        while not any(r.method == "BatchDescribe" for r in emulator.requests):
            assert time.monotonic() < deadline
            time.sleep(0.02)
        kernel.manager.interrupt_kernel()
        stopped = kernel.collect(msg_id)
        assert not stopped.ok
        assert (f"batch task {task_id} keeps running on the service; "
                f"%chat batch wait {task_id} picks it up") in stopped.text

        kernel.restart()
        assert kernel.run(setup.format(poll=FAST)).ok
        fetched = kernel.run(f"after = %chat batch fetch {task_id} --poll 0.01\nafter")
        assert fetched.ok, fetched.error
        assert "3 of 3 rows answered" in fetched.text
        assert "“Echo one”" in fetched.text and "“Echo three”" in fetched.text
