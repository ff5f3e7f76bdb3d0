"""``%%chat --map DATA --batch`` and ``%chat batch``: jobs run by the service's batch processing.

For jobs too big or too cheap to run interactively, the rows go to the service as a
dataset (JSON Lines of ``TextToTextGenerationRequest``: ``{"request": [messages]}``),
uploaded with the SDK's ``datasets.draft_from_path(...).upload()``, and the model's
``batch_jobs.run_deferred(dataset)`` runs them on the service's side. The task outlives
the kernel: its id is printed at once, and ``%chat batch status|wait|fetch ID`` picks
it up later from the id alone (the source dataset holds the requests in row order).

The service leaves failed rows out of the result dataset and lists them in
``line_errors`` (line numbers from 1), and result order is not a promise, so results
are matched to rows by their request; a row without a result holds its error.
Batch processing is a service of the Text Generation API: everything runs on its
backend's loop thread through ``drive``, so an interrupt stops the waiting at once (the
task itself keeps running on the service).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import tempfile
import threading
from collections import defaultdict, deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.conversation import Message
from ..core.errors import Interrupted, ServiceError, UsageProblem
from .mapping import Parse, interrupt_as, prepare, text_generation, values

if TYPE_CHECKING:
    from ..core.backend import RequestOptions
    from ..core.session import ChatSession
    from ..service.text_generation import TextGenerationBackend

REQUEST_TASK = "TextToTextGenerationRequest"
#: Seconds between status polls of a task (tests and the emulator use far less).
POLL_INTERVAL = 5.0
_FINISHED = {"COMPLETED", "FAILED", "CANCELED"}


@dataclass
class Task:
    """What the service says of a batch task, and its results in row order once done."""

    task_id: str
    status: str = ""
    completed: int = 0
    total: int = 0
    rows: int = 0
    failed: int = 0
    results: list[Any] = field(default_factory=list, repr=False)

    def summary(self) -> str:
        if self.status != "COMPLETED":
            progress = f", {self.completed} of {self.total} batches" if self.total else ""
            return f"Batch task {self.task_id}: {self.status}{progress}."
        failed = f"; {self.failed:,} failed (their errors are in their places)" \
            if self.failed else ""
        return (f"Batch task {self.task_id}: {self.rows - self.failed:,} of {self.rows:,} "
                f"rows answered{failed}.")


def _key(messages: Sequence[Any]) -> str:
    return json.dumps([[m["role"], m["text"]] for m in messages], ensure_ascii=False)


def match(requests: Sequence[Sequence[Message]], records: Sequence[dict[str, Any]],
          line_errors: Sequence[Any]) -> list[Any]:
    """Each row's reply text, matched by its request; a row without one holds its error."""
    answers: dict[str, deque[str]] = defaultdict(deque)
    for record in records:
        answers[_key(record["request"])].append(str(record["response"]))
    errors = {int(e.line_number): str(e.message) for e in line_errors}
    out: list[Any] = []
    for number, request in enumerate(requests, start=1):
        found = answers.get(_key(request))
        if found:
            out.append(found.popleft())
        else:
            why = errors.get(number, "the service returned no result for it")
            out.append(ServiceError(f"Row {number - 1} failed in the batch: {why}.",
                                    code="BATCH_LINE"))
    return out


def _write(requests: Sequence[Sequence[Message]], directory: str) -> Path:
    path = Path(directory) / "requests.jsonl"
    with path.open("w", encoding="utf-8") as out:
        for request in requests:
            out.write(json.dumps({"request": list(request)}, ensure_ascii=False) + "\n")
    return path


async def _follow(backend: TextGenerationBackend, operation: Any, task: Task,
                  put: Callable[[Any], None], poll: float, *, wait: bool = True) -> Any:
    """Poll the task until it finishes (or once, when not ``wait``); returns its info."""
    while True:
        info = await operation.get_task_info()
        task.status = info.status.name
        progress = await backend.batch_progress(info.operation_id)
        if progress is not None:
            task.completed, task.total = progress
        put(("progress", None))
        if task.status in _FINISHED or not wait:
            return info
        await asyncio.sleep(poll)


async def _results(backend: TextGenerationBackend, info: Any, task: Task,
                   requests: Sequence[Sequence[Message]] | None) -> None:
    """Read the result dataset (and, picking up by id, the requests) into ``task``."""
    sdk = backend.sdk()
    if requests is None:
        source = await sdk.datasets.get(info.source_dataset_id)
        requests = [record["request"] async for record in source.read()]
    records: list[dict[str, Any]] = []
    if info.result_dataset_id:
        result = await sdk.datasets.get(info.result_dataset_id)
        records = [record async for record in result.read()]
    task.results = match(requests, records, info.errors.line_errors)
    task.rows = len(requests)
    task.failed = sum(1 for r in task.results if isinstance(r, Exception))


def _consume(backend: TextGenerationBackend, produce: Callable[[Callable[[Any], None]], Any],
             task: Task, *, progress: bool, announce: bool = False) -> None:
    """Run ``produce`` interruptibly, drawing the task's progress as it is polled."""
    bar = None
    if progress:
        from .progress import Bar

        bar = Bar("batch")
    cancel = threading.Event()
    try:
        with interrupt_as(cancel), contextlib.closing(backend.drive(produce, cancel=cancel)) \
                as events:
            _show(events, cancel, task, bar, announce)
    except (KeyboardInterrupt, Interrupted):
        where = (f"batch task {task.task_id} keeps running on the service; "
                 f"%chat batch wait {task.task_id} picks it up, also after a restart"
                 if task.task_id else "no batch task was started")
        raise Interrupted(f"Interrupted: {where}.") from None
    finally:
        if bar is not None:
            bar.close()


def _show(events: Iterator[Any], cancel: threading.Event, task: Task, bar: Any,
          announce: bool) -> None:
    for kind, _ in events:
        if cancel.is_set():
            raise Interrupted("stopped")
        if kind == "task" and announce:
            print(f"Batch task {task.task_id} started; it runs on the service, also after "
                  f"a restart: %chat batch fetch {task.task_id}", flush=True)
        elif kind == "progress" and bar is not None:
            bar.set(task.completed, task.total, task.status)
        elif kind == "end":
            return


def _check_finished(task: Task) -> None:
    if task.status in ("FAILED", "CANCELED"):
        raise ServiceError(
            f"Batch task {task.task_id} ended {task.status}: no results. "
            f"%chat batch status {task.task_id} shows its errors.",
            code=task.status,
        )


def _need_pyarrow() -> None:
    """The SDK reads result datasets as Parquet: without pyarrow, say so before sending."""
    import importlib.util

    if importlib.util.find_spec("pyarrow") is None:
        raise UsageProblem(
            "--batch needs pyarrow to read the results: pip install 'yagpt-magic[batch]'. "
            "Nothing was sent."
        )


def run_batch(
    session: ChatSession,
    template: str,
    data: Any,
    *,
    column: str = "reply",
    system: str | None = None,
    options: RequestOptions | None = None,
    parse: Parse | None = None,
    progress: bool = True,
    poll: float | None = None,
) -> tuple[list[Any], str]:
    """Upload the rows as a dataset, run the batch, wait; each row's value in row order."""
    job = prepare(session, template, data, system=system, column=column, mode="--batch")
    if not job.rows:
        raise UsageProblem("--batch: the data has no rows; nothing was sent.")
    _need_pyarrow()
    requests = job.requests
    if not requests:
        return values(job.place([]), parse), "No row could be sent; their errors are in place."
    options = options if options is not None else session.options(stream=False)
    poll = POLL_INTERVAL if poll is None else poll
    backend = text_generation(session, options, "--batch")
    task = Task("")

    with tempfile.TemporaryDirectory(prefix="yagpt-batch-") as directory:
        path = _write(requests, directory)

        async def produce(put: Callable[[Any], None]) -> None:
            put(("start", None))
            draft = backend.sdk().datasets.draft_from_path(
                path, task_type=REQUEST_TASK, upload_format="jsonlines",
                name=f"yagpt-magic {len(requests)} rows",
            )
            dataset = await draft.upload(poll_interval=poll)
            operation = await backend.model(options).batch.run_deferred(dataset)
            task.task_id = operation.id
            put(("task", None))
            info = await _follow(backend, operation, task, put, poll)
            if task.status == "COMPLETED":
                await _results(backend, info, task, requests)
            put(("end", None))

        _consume(backend, produce, task, progress=progress, announce=True)
    _check_finished(task)
    return values(job.place(task.results), parse), task.summary()


def pick_up(session: ChatSession, task_id: str, *, wait: bool, fetch: bool,
            progress: bool = True, poll: float | None = None) -> Task:
    """A task by id, from any kernel: its status, after waiting for it, with its results."""
    if fetch:
        _need_pyarrow()
    backend = text_generation(session, mode="%chat batch")
    poll = POLL_INTERVAL if poll is None else poll
    task = Task(task_id)

    async def produce(put: Callable[[Any], None]) -> None:
        put(("start", None))
        operation = await backend.sdk().batch.get(task_id)
        info = await _follow(backend, operation, task, put, poll, wait=wait)
        if fetch and task.status == "COMPLETED":
            await _results(backend, info, task, None)
        elif task.status == "COMPLETED" or info.errors.line_errors:
            task.failed = len(info.errors.line_errors)
        put(("end", None))

    try:
        _consume(backend, produce, task, progress=progress and wait)
    except ServiceError as err:
        if err.code == "NOT_FOUND":
            raise UsageProblem(
                f"No batch task {task_id!r} in this folder: check the id "
                "(%chat batch status lists the folder's tasks)."
            ) from None
        raise
    if fetch:
        _check_finished(task)
    return task


def recent(session: ChatSession, limit: int = 20) -> list[Task]:
    """The folder's newest batch tasks (id and status), for ``%chat batch status``."""
    backend = text_generation(session, mode="%chat batch")
    tasks: list[Task] = []

    async def produce(put: Callable[[Any], None]) -> None:
        put(("start", None))
        async for info in backend.sdk().batch.list_info(page_size=limit):
            tasks.append(Task(info.task_id, info.status.name,
                              failed=len(info.errors.line_errors)))
            if len(tasks) >= limit:
                break
        put(("end", None))

    _consume(backend, produce, Task(""), progress=False)
    return tasks
