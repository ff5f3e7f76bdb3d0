"""``%%chat --map DATA --deferred``: the same rows through the service's asynchronous mode.

Each row is submitted with the SDK's ``model.run_deferred(messages)`` and its
operation polled until done. The asynchronous mode has its own quotas, of rate not
concurrency (Foundation Models "Quotas and limits": 10 submits a second, 50 result
requests a second, 5,000 submits an hour), so submits and polls each go through a
:class:`~.pacing.Pacer` that starts at the documented rate and adapts to what the
service accepts; a refused submit or poll is sent again, never a failure.

Nothing is lost and nothing is paid twice: each operation id is written to the row
cache the moment the service returns it, and each answer when it arrives, so after an
interrupt or a kernel restart running the cell again polls what was submitted and
submits only what was not; ``%chat batch status|wait|fetch JOB`` picks a job up by
the id it printed at the start. Results come back in row order, failed rows holding
their errors, like ``--map``.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..core.conversation import Message
from ..core.errors import ChatError, ContentFiltered, Interrupted, ServiceError, UsageProblem
from ..service.text_generation import reply_from
from .mapping import (
    Outcome,
    Parse,
    classify,
    interrupt_as,
    is_rate_quota,
    prepare,
    service_of,
    status_code,
    text_generation,
    values,
)
from .pacing import Pacer
from .row_cache import RowCache, request_key

if TYPE_CHECKING:
    from ..core.backend import Reply, RequestOptions
    from ..core.session import ChatSession
    from ..service.text_generation import TextGenerationBackend

#: The asynchronous mode's documented quotas (requests a second; an hour).
SUBMIT_RPS = 10.0
POLL_RPS = 50.0
SUBMITS_PER_HOUR = 5000
#: Seconds between two polls of one operation (a real deferred answer takes seconds to
#: minutes; tests and the emulator use far less).
POLL_INTERVAL = 2.0
#: Submits (and polls) on the wire at once; the rate, not this, is what the quota limits.
WORKERS = 8
JOB_PREFIX = "def-"


@dataclass
class _Work:
    """One job's state on the loop: what to submit, what to poll, what is settled."""

    requests: Sequence[Sequence[Message]]
    keys: list[str]
    job: str
    to_submit: deque[int]
    polls: list[tuple[float, int, int, Any]] = field(default_factory=list)  # (due, seq, row, op)
    left: int = 0
    submitted: bool = False
    counter: itertools.count[int] = field(default_factory=itertools.count)

    def poll_later(self, index: int, operation: Any, delay: float) -> None:
        heapq.heappush(self.polls, (time.monotonic() + delay, next(self.counter), index,
                                    operation))


class _StatusError(Exception):
    """A failed operation's status, shaped like a gRPC error so the backend translates it."""

    def __init__(self, code: Any, message: str) -> None:
        super().__init__(message)
        self._code = code
        self._message = message

    def code(self) -> Any:
        return self._code

    def details(self) -> str:
        return self._message


def _status_error(err: BaseException) -> BaseException:
    """The SDK's ``RunError`` (an int code) as a gRPC-shaped error; others unchanged."""
    number = getattr(err, "code", None)
    if not isinstance(number, int):
        return err
    import grpc

    code = next((c for c in grpc.StatusCode if c.value[0] == number), grpc.StatusCode.UNKNOWN)
    return _StatusError(code, str(getattr(err, "message", "") or err))


async def _gate(pacer: Pacer) -> Any:
    """Wait until the pacer lets one more request go; its ticket."""
    while True:
        wait = pacer.delay(time.monotonic())
        if wait == 0.0:
            return pacer.start(time.monotonic())
        await asyncio.sleep(min(wait, 0.05) if wait is not None else 0.005)


async def _submitter(model: Any, work: _Work, pacer: Pacer, cache: RowCache | None,
                     put: Callable[[Any], None], poll: float) -> None:
    while work.to_submit:
        index = work.to_submit.popleft()
        ticket = await _gate(pacer)
        try:
            operation = await model.run_deferred(list(work.requests[index]))
        except asyncio.CancelledError:
            raise
        except Exception as err:  # noqa: BLE001 - sorted by what it means
            if _refused(err, pacer, ticket, put):
                work.to_submit.appendleft(index)
                continue
            _settle_error(err, index, work, put)
            continue
        pacer.accepted(ticket, time.monotonic())
        if cache is not None:
            cache.remember_operation(work.keys[index], operation.id, work.job)
        put(("submitted", None))
        work.poll_later(index, operation, poll)


def _refused(err: BaseException, pacer: Pacer, ticket: Any, put: Callable[[Any], None]) -> bool:
    """A quota refusal: the pacer slows down and the caller tries again."""
    if classify(err) != "quota":
        pacer.failed(ticket, time.monotonic())
        return False
    pacer.rejected(ticket, time.monotonic(), rate=is_rate_quota(err))
    put(("rejected", None))
    return True


def _settle_error(err: BaseException, index: int, work: _Work,
                  put: Callable[[Any], None], *, polling: bool = False) -> None:
    """A row's own failure goes in its place; one that dooms every row stops the job."""
    gone = polling and status_code(err) == "NOT_FOUND"  # that operation only
    if classify(err) == "doomed" and not gone and not isinstance(err, _StatusError):
        raise _Stop(err)
    put(("row", (index, err)))
    work.left -= 1


class _Stop(ChatError):
    """A failure no row can get past (credentials, unreachable service)."""

    def __init__(self, err: BaseException) -> None:
        super().__init__(str(err))
        self.err = err


async def _poller(work: _Work, pacer: Pacer, cache: RowCache | None, model_uri: str,
                  put: Callable[[Any], None], poll: float) -> None:
    while work.left > 0:
        if not work.polls or work.polls[0][0] > time.monotonic():
            due = work.polls[0][0] - time.monotonic() if work.polls else 0.05
            await asyncio.sleep(min(max(due, 0.0), 0.05))
            continue
        _, _, index, operation = heapq.heappop(work.polls)
        ticket = await _gate(pacer)
        try:
            status = await operation.get_status()
        except asyncio.CancelledError:
            raise
        except Exception as err:  # noqa: BLE001 - sorted by what it means
            if _refused(err, pacer, ticket, put):
                work.poll_later(index, operation, 0.0)
            else:  # e.g. the operation is gone: this row asks again next time
                _forget(cache, work.keys[index], err)
                _settle_error(err, index, work, put, polling=True)
            continue
        pacer.accepted(ticket, time.monotonic())
        if status.is_running:
            work.poll_later(index, operation, poll)
            continue
        try:
            result = await operation.get_result()  # no request: the last status holds it
        except Exception as err:  # noqa: BLE001 - the operation failed: this row's error
            failure = _status_error(err)
            _forget(cache, work.keys[index], failure)
            _settle_error(failure, index, work, put)
            continue
        reply = reply_from(result, result.usage, model_uri)
        if reply.status == "filtered":
            _forget(cache, work.keys[index], "withheld by the content filter")
            put(("row", (index, ContentFiltered(
                f"Row {index}: the reply was withheld by the content filter."))))
        else:
            if cache is not None:
                cache.put(work.keys[index], reply)
            put(("row", (index, reply)))
        work.left -= 1


def _forget(cache: RowCache | None, key: str, err: object) -> None:
    if cache is not None:
        cache.operation_failed(key, str(err)[:500])


def new_job_id() -> str:
    return JOB_PREFIX + secrets.token_hex(6)


def run_deferred_rows(
    backend: TextGenerationBackend,
    requests: Sequence[Sequence[Message]],
    options: RequestOptions,
    *,
    cache: RowCache | None,
    service: str,
    job: str,
    fresh: bool = False,
    progress: Any = None,
    poll: float = POLL_INTERVAL,
    announce: Callable[[str], None] | None = None,
) -> Outcome:
    """Answer every request through the asynchronous mode; cached rows come from disk,
    operations already submitted are polled, only the rest are submitted."""
    started = time.monotonic()
    outcome = Outcome(rows=len(requests), results=[None] * len(requests))
    keys = [request_key(messages, options, service) for messages in requests]
    found = cache.get_many(keys) if cache is not None and not fresh else {}
    running = cache.operations(keys) if cache is not None and not fresh else {}
    for index, key in enumerate(keys):
        if key in found:
            outcome.results[index] = found[key]
            outcome.cached += 1
            outcome.tokens += found[key].usage.total_tokens
    todo = [i for i, k in enumerate(keys) if k not in found]
    work = _Work(requests, keys, job, deque(i for i in todo
                                             if keys[i] not in running or running[keys[i]][1]))
    work.left = len(todo)
    if cache is not None:
        cache.save_job(job, service, options.model, keys)
    if announce is not None:
        announce(job)
    if progress is not None:
        progress.start(outcome)
    submits = Pacer(WORKERS, window=WORKERS, rate=SUBMIT_RPS)
    polls = Pacer(WORKERS, window=WORKERS, rate=POLL_RPS)

    async def produce(put: Callable[[Any], None]) -> None:
        put(("start", None))
        model = backend.model(options)
        for index in todo:
            operation_id, error = running.get(keys[index], ("", "x"))
            if error is None:
                work.poll_later(index, await model.attach_deferred(operation_id), 0.0)
        tasks = [asyncio.ensure_future(_submitter(model, work, submits, cache, put, poll))
                 for _ in range(WORKERS)]
        tasks += [asyncio.ensure_future(_poller(work, polls, cache, model.uri, put, poll))
                  for _ in range(WORKERS)]
        try:
            await asyncio.gather(*tasks)
        except BaseException:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
        put(("end", None))

    _drive(backend, produce, outcome, progress, job)
    outcome.seconds = time.monotonic() - started
    outcome.attempts = submits.attempts
    if cache is not None:
        outcome.not_kept = cache.write_error
    return outcome


def _drive(backend: TextGenerationBackend, produce: Callable[[Callable[[Any], None]], Any],
           outcome: Outcome, progress: Any, job: str) -> None:
    """Run the job on the backend's loop, interruptibly; rows land in ``outcome``."""
    cancel = threading.Event()
    try:
        with interrupt_as(cancel):
            _consume(backend, backend.drive(produce, cancel=cancel), cancel, outcome, progress)
    except _Stop as stop:
        error = backend.translate(stop.err)
        raise type(error)(
            f"{error} Stopped: {outcome.done():,} of {outcome.rows:,} rows are done and kept."
        ) from None
    except (KeyboardInterrupt, Interrupted):
        done = outcome.done()
        stopped = Interrupted(
            f"Interrupted: {done:,} of {outcome.rows:,} rows are done and kept; the rows "
            f"submitted keep running on the service. Run the cell again (or %chat batch wait "
            f"{job}) to pick them up; only rows never submitted are sent then."
        )
        stopped.outcome = outcome  # type: ignore[attr-defined]
        raise stopped from None
    finally:
        if progress is not None:
            progress.close(outcome)


def _consume(backend: TextGenerationBackend, events: Any, cancel: threading.Event, outcome: Outcome,
             progress: Any) -> None:
    import contextlib

    with contextlib.closing(events):
        for kind, value in events:
            if cancel.is_set():
                raise Interrupted("stopped")
            if kind == "row":
                index, result = value
                if isinstance(result, BaseException) and not isinstance(result, ChatError):
                    result = backend.translate(result)
                outcome.results[index] = result
                outcome.sent += 1
                if isinstance(result, ChatError):
                    outcome.failed += 1
                else:
                    outcome.tokens += result.usage.total_tokens
            elif kind == "rejected":
                outcome.rejected += 1
            elif kind == "end":
                return
            if progress is not None and kind in ("row", "rejected"):
                progress.update(outcome, kind)


def run_deferred(
    session: ChatSession,
    template: str,
    data: Any,
    *,
    column: str = "reply",
    system: str | None = None,
    options: RequestOptions | None = None,
    parse: Parse | None = None,
    progress: bool = True,
    fresh: bool = False,
    poll: float | None = None,
) -> tuple[list[Any], Outcome, str]:
    """The whole ``--deferred`` job: check, submit, poll; values in row order, the job id."""
    job_rows = prepare(session, template, data, system=system, column=column,
                       mode="--deferred")
    options = options if options is not None else session.options(stream=False)
    service = service_of(session)
    cache = RowCache(session.settings.cache_dir or None)
    job = new_job_id()
    from .progress import Bar

    def announce(job_id: str) -> None:
        print(f"Deferred job {job_id}: the rows run on the service, also after a restart "
              f"(%chat batch wait {job_id}).", flush=True)

    try:
        cache.check()
        outcome = run_deferred_rows(
            text_generation(session, options, "--deferred"), job_rows.requests, options,
            cache=cache, service=service, job=job, fresh=fresh,
            progress=Bar("deferred rows") if progress else None,
            poll=POLL_INTERVAL if poll is None else poll, announce=announce)
    except Interrupted as stopped:
        partial = getattr(stopped, "outcome", None)
        if partial is not None:
            stopped.values = values(job_rows.place(partial.results), parse)  # type: ignore[attr-defined]
        raise
    finally:
        cache.close()
    outcome.rows = job_rows.rows
    outcome.failed += len(job_rows.refused)
    return values(job_rows.place(outcome.results), parse), outcome, job


@dataclass
class JobStatus:
    """A deferred job as ``%chat batch`` shows it."""

    job: str
    rows: int
    done: int
    running: int
    failed: int
    results: list[Any] = field(default_factory=list, repr=False)

    @property
    def status(self) -> str:
        if self.running:
            return "RUNNING"
        return "COMPLETED" if self.done + self.failed == self.rows else "INCOMPLETE"

    def summary(self) -> str:
        unsent = self.rows - self.done - self.running - self.failed
        parts = [f"Deferred job {self.job}: {self.done:,} of {self.rows:,} rows answered"]
        if self.running:
            parts.append(f"{self.running:,} running on the service")
        if self.failed:
            parts.append(f"{self.failed:,} failed (their errors are in their places)")
        if unsent:
            parts.append(f"{unsent:,} never sent (run the cell again to send them)")
        return "; ".join(parts) + "."


def pick_up(session: ChatSession, job: str, *, wait: bool, fetch: bool,
            progress: bool = True, poll: float | None = None) -> JobStatus:
    """A deferred job by id, from any kernel: its state, after waiting, with its results."""
    cache = RowCache(session.settings.cache_dir or None)
    try:
        return _pick_up(session, cache, job, wait=wait, fetch=fetch, progress=progress,
                        poll=POLL_INTERVAL if poll is None else poll)
    finally:
        cache.close()


def _pick_up(session: ChatSession, cache: RowCache, job: str, *, wait: bool, fetch: bool,
             progress: bool, poll: float) -> JobStatus:
    record = cache.job(job)
    if record is None:
        raise UsageProblem(f"No deferred job {job!r} in the row cache at {cache.directory}: "
                           "check the id (%chat batch status lists the jobs).")
    service, model, keys = record
    if service != service_of(session):
        raise UsageProblem(f"Deferred job {job} ran on another service ({service}); switch "
                           "back to it (%chat offline, %chat live, the endpoint) to pick it up.")
    found = cache.get_many(keys)
    running = cache.operations(keys)
    if wait and any(error is None for _, error in running.values()):
        pending = [i for i, k in enumerate(keys) if k not in found and k in running
                   and running[k][1] is None]
        _wait(session, cache, job, keys, pending, model, service, progress, poll)
        found, running = cache.get_many(keys), cache.operations(keys)
    status = JobStatus(job, len(keys), len(found),
                       sum(1 for k in keys if k not in found and k in running
                           and running[k][1] is None),
                       sum(1 for k in keys if k not in found and k in running
                           and running[k][1] is not None))
    if fetch:
        status.results = [_fetched(i, k, found, running) for i, k in enumerate(keys)]
    return status


def _fetched(index: int, key: str, found: dict[str, Reply],
             running: dict[str, tuple[str, str | None]]) -> Any:
    if key in found:
        return found[key].text
    operation, error = running.get(key, ("", None))
    if error is not None:
        return ServiceError(f"Row {index} failed: {error}", code="DEFERRED")
    if operation:
        return UsageProblem(f"Row {index} is still running on the service.")
    return UsageProblem(f"Row {index} was never sent: run the cell again to send it.")


def _wait(session: ChatSession, cache: RowCache, job: str, keys: list[str],
          pending: list[int], model: str, service: str, progress: bool, poll: float) -> None:
    """Poll a job's running operations until each is done (answers go to the cache)."""
    options = session.options(model=model, stream=False)
    running = cache.operations(keys)
    backend = text_generation(session, options, "--deferred")
    work = _Work([], keys, job, deque())
    work.left = len(pending)
    outcome = Outcome(rows=len(pending), results=[None] * len(keys))
    polls = Pacer(WORKERS, window=WORKERS, rate=POLL_RPS)

    async def produce(put: Callable[[Any], None]) -> None:
        put(("start", None))
        sdk_model = backend.model(options)
        for index in pending:
            work.poll_later(index, await sdk_model.attach_deferred(running[keys[index]][0]), 0.0)
        tasks = [asyncio.ensure_future(_poller(work, polls, cache, sdk_model.uri, put, poll))
                 for _ in range(WORKERS)]
        try:
            await asyncio.gather(*tasks)
        except BaseException:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
        put(("end", None))

    from .progress import Bar

    bar = Bar("deferred rows") if progress else None
    _drive(backend, produce, outcome, bar, job)


def recent(session: ChatSession, limit: int = 20) -> list[JobStatus]:
    """The newest deferred jobs in the row cache, with their state."""
    cache = RowCache(session.settings.cache_dir or None)
    try:
        out = []
        for job, _, _ in cache.jobs(limit):
            out.append(_pick_up(session, cache, job, wait=False, fetch=False, progress=False,
                                poll=POLL_INTERVAL) if _same_service(session, cache, job)
                       else JobStatus(job, 0, 0, 0, 0))
        return out
    finally:
        cache.close()


def _same_service(session: ChatSession, cache: RowCache, job: str) -> bool:
    record = cache.job(job)
    try:
        return record is not None and record[0] == service_of(session)
    except ChatError:
        return False
