"""Many prompts at once (``%%chat --map``, ``yagpt_magic.map``): one request per row.

Rows run concurrently on the SDK's async API, on the backend's own loop thread, as
fast as the service's limits allow: :class:`~.pacing.Pacer` adapts how many requests
are in flight (and, at a rate limit, how fast they start) to what the service accepts,
and a request refused with ``RESOURCE_EXHAUSTED`` is sent again later (it costs
nothing and is not a failure). Each answered row is written to the
:class:`~.cache.RowCache` the moment it arrives, so an interrupt, a crash or a kernel
restart loses nothing and a re-run sends only the rows not yet answered; the cache is
keyed by the service too, so one service's answers never stand in for another's.

A row that fails for its own reason (a value that cannot be sent, content filter,
invalid or too long request) gets its error object in its place and the others go on;
a failure that dooms every row (credentials, permission, unreachable service, unknown
model) stops the job at once with one line.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Generator, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..core.conversation import Message
from ..core.errors import (
    ChatError,
    ContentFiltered,
    FailureKind,
    Interrupted,
    ServiceError,
    UsageProblem,
)
from ..core.settings import problem
from ..core.template import split_code
from ..service.failures import kind_of
from ..service.live import LiveBackends
from ..service.replay import ReplayBackends
from ..service.text_generation import TextGenerationBackend
from .columns import OURS, check_output, frame_columns, is_frame, ours, with_columns
from .pacing import Pacer, Ticket
from .row_cache import RowCache, request_key

if TYPE_CHECKING:
    from ..core.backend import Backend, Reply, RequestOptions
    from ..core.session import ChatSession

#: ``{column}`` outside code, as ``--vars`` reads ``{name}``: other braces stay as typed.
_FIELD = re.compile(r"(?<!\{)\{([A-Za-z_]\w*)\}(?!\})")
#: Failures after which no other row can succeed either (``core.errors.FailureKind``).
DOOMED: frozenset[FailureKind] = frozenset({
    "auth", "permission", "unreachable", "not_found", "unimplemented", "unknown_model",
    "client",
})
#: A parse hook: the reply text of one row -> the value put in its place (or its columns,
#: when it returns a dict). ``--schema`` plugs its JSON parsing in here.
Parse = Callable[[str], Any]
#: The offline emulator is a service of its own, whatever port it has this time.
OFFLINE_SERVICE = "offline emulator"


class Template:
    """A cell with ``{column}`` fields; code spans and other braces are left as typed."""

    def __init__(self, text: str) -> None:
        self.parts = split_code(text)  # (is_code, text)
        self.fields = sorted({m.group(1) for code, part in self.parts if not code
                              for m in _FIELD.finditer(part)})

    def check(self, columns: Sequence[str]) -> None:
        """A field no row has is a UsageProblem before anything is sent."""
        missing = [f for f in self.fields if f not in columns]
        if missing:
            known = ", ".join(map(str, columns)) or "none"
            raise UsageProblem(
                f"--map: {{{missing[0]}}} is not a column of the data (columns: {known}); "
                "nothing was sent."
            )

    def fill(self, row: dict[str, Any]) -> str:
        """The row's message; a value whose ``str()`` raises propagates (see ``prepare``)."""

        def value(match: re.Match[str]) -> str:
            return str(row[match.group(1)])

        return "".join(part if code else _FIELD.sub(value, part) for code, part in self.parts)


def rows_of(data: Any) -> tuple[list[dict[str, Any]], list[str]]:
    """Rows as dicts and their columns: a DataFrame, a list of dicts, or a list of strings.

    A pandas Series (``df["text"]``) counts as a list of its values.
    """
    if hasattr(data, "to_dict") and hasattr(data, "columns"):  # a pandas DataFrame
        return data.to_dict("records"), [str(c) for c in data.columns]
    if hasattr(data, "tolist") and not isinstance(data, (str, bytes)):  # a Series, an array
        data = data.tolist()
    if isinstance(data, (str, bytes)) or not isinstance(data, Sequence):
        raise UsageProblem(
            "--map needs a pandas DataFrame, a list of dicts or a list of strings, "
            f"not {type(data).__name__}."
        )
    if all(isinstance(item, str) for item in data):
        return [{"item": item} for item in data], ["item"]
    if all(isinstance(item, dict) for item in data):
        columns = [c for c in dict.fromkeys(k for item in data for k in item)]
        for number, item in enumerate(data):
            missing = [c for c in columns if c not in item]
            if missing:
                raise UsageProblem(
                    f"--map: row {number} has no {missing[0]!r}; every dict needs the same "
                    "keys. Nothing was sent."
                )
        return list(data), [str(c) for c in columns]
    raise UsageProblem("--map: the list must hold only strings or only dicts; nothing was sent.")


@dataclass
class Outcome:
    """What a finished job did, for the summary line and the benchmark."""

    rows: int = 0
    cached: int = 0
    sent: int = 0
    failed: int = 0
    rejected: int = 0
    attempts: int = 0
    tokens: int = 0
    seconds: float = 0.0
    not_kept: str = ""
    results: list[Any] = field(default_factory=list, repr=False)

    def done(self) -> int:
        return sum(1 for r in self.results if r is not None)

    def summary(self) -> str:
        answered = self.rows - self.failed
        parts = [f"{answered:,} of {self.rows:,} rows answered"]
        if self.cached:
            parts.append(f"{self.cached:,} from the cache")
        if self.failed:
            parts.append(f"{self.failed:,} failed (their error objects are in their places)")
        if self.rejected:
            parts.append(f"{self.rejected:,} refused for the service's limits and sent again")
        parts.append(f"{self.tokens:,} tokens, {self.seconds:.1f} s")
        if self.not_kept:
            parts.append(f"answers could not be kept in the cache ({self.not_kept}): a re-run "
                         "pays for them again")
        return "; ".join(parts) + "."


def status_code(err: BaseException) -> str:
    """The gRPC status name of an SDK error or a ``ServiceError`` ('' if it has none)."""
    if isinstance(err, ServiceError):
        return err.code
    code = getattr(err, "code", None)
    if callable(code):
        try:
            return str(code().name)
        except Exception:  # noqa: BLE001 - an odd error object is just unknown
            return "UNKNOWN"
    return ""


def classify(err: BaseException) -> str:
    """``quota`` (send again later), ``row`` (this row's own failure) or ``doomed``.

    Decided by what the failure means (``service/failures.py`` reads every status into
    a kind), for a ``ServiceError`` a backend made and for a raw SDK error alike.
    """
    kind = kind_of(err)
    if kind == "quota":
        return "quota"
    return "doomed" if kind in DOOMED else "row"


#: How the service names a per-second quota in its refusal (recorded:
#: ``ai.textGenerationCompletionRequestsPerSecond.rate rate quota limit exceed``).
_RATE_QUOTA = re.compile(r"(?i)\.rate\b|\brate quota\b|per ?second")


def is_rate_quota(err: BaseException) -> bool:
    """Does this refusal name a rate quota (not a limit on requests in flight)?"""
    details = getattr(err, "details", None)
    try:
        text = str(details() if callable(details) else err)
    except Exception:  # noqa: BLE001 - an odd error object names nothing
        return False
    return bool(_RATE_QUOTA.search(text))


@contextmanager
def interrupt_as(cancel: threading.Event) -> Iterator[None]:
    """While a job runs, Ctrl-C / Kernel -> Interrupt sets ``cancel`` instead of raising.

    A KeyboardInterrupt may land anywhere in the main thread, including inside the
    progress bar's widget messages or ipykernel's stdout, and can leave their locks
    held; the job checks ``cancel`` between rows and stops cleanly within one poll.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)
    try:
        signal.signal(signal.SIGINT, lambda _signum, _frame: cancel.set())
    except ValueError:  # not allowed here (an embedded interpreter): interrupts raise
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


class _Doomed(ChatError):
    """A failure no row can get past; carried out of the loop to stop the whole job."""

    def __init__(self, err: BaseException) -> None:
        super().__init__(str(err))
        self.err = err


def service_of(session: ChatSession) -> str:
    """Who answers: the endpoint and folder, or the offline emulator (the cache's key)."""
    live = session.backends
    if not isinstance(live, LiveBackends):
        return type(live).__name__
    connection = live.connection()  # (starts the emulator, under YAGPT_OFFLINE=1)
    if live.offline is not None:
        return OFFLINE_SERVICE
    return f"{connection.endpoint or 'default'}|{connection.folder_id}"


def text_generation(session: ChatSession, options: RequestOptions | None = None,
                    mode: str = "--batch") -> TextGenerationBackend:
    """The backend of the Text Generation API, whose services ``--batch`` and
    ``--deferred`` use (and whose tokenizer ``--estimate`` counts with)."""
    options = options if options is not None else session.options(stream=False)
    backend = session.backend(options)
    if isinstance(backend, TextGenerationBackend):
        return backend
    if isinstance(session.backends, ReplayBackends):
        raise UsageProblem(f"{mode} does not run in replay mode; %chat live first.")
    raise UsageProblem(f"{mode} runs through the Text Generation API; {options.model} is "
                       f"served by the {backend.api} API. Choose another model with -m.")


def run_rows(
    backend: Backend,
    requests: Sequence[Sequence[Message]],
    options: RequestOptions,
    *,
    cache: RowCache | None,
    concurrency: int,
    service: str = "",
    fresh: bool = False,
    progress: Any = None,
    pacer: Pacer | None = None,
) -> Outcome:
    """Answer every request (row order kept): cached ones from disk, the rest concurrently.

    ``fresh`` sends every row even when it is cached (and keeps the new answers). A
    KeyboardInterrupt stops promptly with ``Interrupted``; what finished is cached, and
    ``Interrupted.outcome`` holds it.
    """
    started = time.monotonic()
    outcome = Outcome(rows=len(requests), results=[None] * len(requests))
    keys = [request_key(messages, options, service) for messages in requests]
    found = cache.get_many(keys) if cache is not None and not fresh else {}
    pending = []
    for index, key in enumerate(keys):
        reply = found.get(key)
        if reply is None:
            pending.append(index)
        else:
            outcome.results[index] = reply
            outcome.cached += 1
            outcome.tokens += reply.usage.total_tokens
    if progress is not None:
        progress.start(outcome)
    pacer = pacer if pacer is not None else Pacer(concurrency)

    def keep(index: int, reply: Reply) -> None:
        if cache is not None:  # (an empty cache is falsy: it has a length)
            cache.put(keys[index], reply)

    async def produce(put: Callable[[Any], None]) -> None:
        put(("start", None))
        await _send_all(backend, requests, options, pending, pacer, put, keep)
        put(("end", None))

    cancel = threading.Event()
    try:
        with interrupt_as(cancel):
            _consume(backend.drive(produce, cancel=cancel), cancel, outcome, progress)
    except _Doomed as doomed:
        error = doomed.err
        raise type(error)(
            f"{error} Stopped: {outcome.done():,} of {outcome.rows:,} rows are done and kept."
        ) from None
    except (KeyboardInterrupt, Interrupted):
        done = outcome.done()
        stopped = Interrupted(
            f"Interrupted: {done:,} of {outcome.rows:,} rows are done and kept; run the cell "
            f"again to send only the other {outcome.rows - done:,}."
        )
        stopped.outcome = outcome  # type: ignore[attr-defined]  # the rows so far
        raise stopped from None
    finally:
        outcome.seconds = time.monotonic() - started
        outcome.attempts = pacer.attempts
        if cache is not None:
            outcome.not_kept = cache.write_error
            cache.evict()
        if progress is not None:
            progress.close(outcome)
    return outcome


async def _send_all(
    backend: Backend,
    requests: Sequence[Sequence[Message]],
    options: RequestOptions,
    pending: list[int],
    pacer: Pacer,
    put: Callable[[Any], None],
    keep: Callable[[int, Reply], None],
) -> None:
    """Start rows as the pacer allows; a refused row goes back to the front of the line.

    Finished requests are handed over by a done-callback (O(1) each), not found by
    ``asyncio.wait`` over every request in flight.
    """
    line = deque(pending)
    running: dict[asyncio.Task[Reply], tuple[int, Ticket]] = {}
    finished: deque[asyncio.Task[Reply]] = deque()
    wake = asyncio.Event()
    loop = asyncio.get_running_loop()

    def done(task: asyncio.Task[Reply]) -> None:
        finished.append(task)
        wake.set()

    try:
        while line or running:
            wait: float | None = None
            while line:
                wait = pacer.delay(time.monotonic())
                if wait != 0.0:
                    break
                index = line.popleft()
                task = asyncio.create_task(backend.complete_async(requests[index], options))
                running[task] = (index, pacer.start(time.monotonic()))
                task.add_done_callback(done)
            if not finished:
                wake.clear()
                timer = loop.call_later(wait, wake.set) if line and wait else None
                await wake.wait()
                if timer is not None:
                    timer.cancel()
            while finished:
                task = finished.popleft()
                index, ticket = running.pop(task)
                if _settle(task, index, ticket, pacer, put, keep):
                    line.appendleft(index)
    except BaseException:
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
        raise


def _settle(task: asyncio.Task[Reply], index: int, ticket: Ticket,
            pacer: Pacer, put: Callable[[Any], None],
            keep: Callable[[int, Reply], None]) -> bool:
    """One finished request: its row's result out, or True to send it again."""
    now = time.monotonic()
    err = task.exception()
    if err is None:
        reply = task.result()
        pacer.accepted(ticket, now)
        if reply.status == "filtered":
            put(("row", (index, ContentFiltered(
                f"Row {index}: the reply was withheld by the content filter."))))
            return False
        keep(index, reply)
        put(("row", (index, reply)))
        return False
    kind = classify(err)
    if kind == "quota":
        pacer.rejected(ticket, now, rate=is_rate_quota(err))
        put(("rejected", None))
        return True
    pacer.failed(ticket, now)
    if kind == "doomed":
        raise _Doomed(err)
    put(("row", (index, err)))
    return False


def _consume(events: Generator[Any, None, None], cancel: threading.Event, outcome: Outcome,
             progress: Any) -> None:
    """Take the loop's events in the caller's thread: results in place, the bar updated."""
    with contextlib.closing(events):  # an early exit cancels the job on the loop at once
        for kind, value in events:
            if cancel.is_set():  # rows may arrive faster than the backend's own check
                raise Interrupted("stopped")
            if kind == "row":
                index, result = value
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
            if progress is not None and kind != "start":
                progress.update(outcome, kind)


@dataclass
class Prepared:
    """A job's rows, checked: the requests that can go, and the rows that cannot."""

    rows: int
    requests: list[list[Message]]
    #: Row number of each request (a row that cannot be sent has none).
    where: list[int]
    #: Row number -> the error that stands in its place (nothing was sent for it).
    refused: dict[int, ChatError]

    def place(self, results: Sequence[Any]) -> list[Any]:
        """All rows' results in row order: the answered ones and the refused ones."""
        out: list[Any] = [None] * self.rows
        for index, error in self.refused.items():
            out[index] = error
        for index, result in zip(self.where, results):
            out[index] = result
        return out


def _message(template: Template, row: dict[str, Any], number: int) -> str | ChatError:
    """The row's message, or why it cannot be one (its own failure, not the job's)."""
    try:
        text = template.fill(row)
    except Exception as err:  # noqa: BLE001 - a value's __str__ may raise anything
        try:
            why = f"{type(err).__name__}: {str(err)[:100]}"
        except Exception:  # noqa: BLE001 - even the error may not print
            why = type(err).__name__
        return UsageProblem(
            f"Row {number}: one of its values cannot be made text ({why}); nothing was sent "
            "for it."
        )
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as err:
        return UsageProblem(
            f"Row {number}: its message holds a character that cannot be sent "
            f"({text[err.start]!r}, an unpaired surrogate, at character {err.start}); "
            "nothing was sent for it."
        )
    return text


def prepare(session: ChatSession, template: str, data: Any, *, system: str | None,
            column: str, mode: str = "--map") -> Prepared:
    """Check a job before anything is sent, and build one request per row."""
    if isinstance(session.backends, ReplayBackends):
        raise UsageProblem(f"{mode} does not run in replay mode; %chat live first.")
    if not template.strip():
        raise UsageProblem("The template is empty: write it below the %%chat line.")
    rows, columns = rows_of(data)
    filled = Template(template.strip("\n"))
    filled.check(columns)
    check_output(data, column)
    system = session.settings.system_prompt if system is None else system
    head = [{"role": "system", "text": system}] if system.strip() else []
    if head:
        try:
            head[0]["text"].encode("utf-8")
        except UnicodeEncodeError:
            raise UsageProblem("The system prompt holds a character that cannot be sent (an "
                               "unpaired surrogate); nothing was sent.") from None
    job = Prepared(len(rows), [], [], {})
    for number, row in enumerate(rows):
        text = _message(filled, row, number)
        if isinstance(text, ChatError):
            job.refused[number] = text
        else:
            job.requests.append([*head, {"role": "user", "text": text}])
            job.where.append(number)
    return job


def values(results: Sequence[Any], parse: Parse | None) -> list[Any]:
    """Each row's value: its reply text (through ``parse``), its error object, or None
    (a row not answered yet, after an interrupt)."""
    out: list[Any] = []
    for result in results:
        if result is None or isinstance(result, BaseException):
            out.append(result)
            continue
        text = result if isinstance(result, str) else result.text  # batch rows are text
        if parse is None:
            out.append(text)
            continue
        try:
            out.append(parse(text))
        except Exception as err:  # noqa: BLE001 - a row's bad reply is that row's error
            out.append(err)
    return out


def run_map(
    session: ChatSession,
    template: str,
    data: Any,
    *,
    column: str = "reply",
    system: str | None = None,
    concurrency: int | None = None,
    parse: Parse | None = None,
    options: RequestOptions | None = None,
    progress: bool = True,
    fresh: bool = False,
) -> tuple[list[Any], Outcome]:
    """The whole ``--map`` job for a session: check, send; each row's value in row order.

    After an interrupt, ``Interrupted.values`` holds the rows answered so far (None for
    the others), so the caller can store them before it fails the cell.
    """
    job = prepare(session, template, data, system=system, column=column)
    settings = session.settings
    options = options if options is not None else session.options(stream=False)
    concurrency = concurrency if concurrency is not None else settings.max_concurrency
    refused = problem("max_concurrency", concurrency, label="--concurrency")
    if refused is not None:
        raise UsageProblem(f"{refused}.")
    service = service_of(session)
    cache = RowCache(settings.cache_dir or None)
    from .progress import Bar

    try:
        cache.check()
        backend = session.backend(options)
        outcome = run_rows(
            backend, job.requests, options, cache=cache, concurrency=concurrency,
            service=service, fresh=fresh, progress=Bar() if progress else None,
        )
    except Interrupted as stopped:
        partial = getattr(stopped, "outcome", None)
        if partial is not None:
            stopped.values = values(job.place(partial.results), parse)  # type: ignore[attr-defined]
        raise
    finally:
        cache.close()
    outcome.rows = job.rows
    outcome.failed += len(job.refused)
    return values(job.place(outcome.results), parse), outcome


def shaped(data: Any, column: str, results: Sequence[Any]) -> Any:
    """A list as is; for a DataFrame, a copy with the new column (or one per dict field)."""
    if not is_frame(data):
        return list(results)
    return with_columns(data, frame_columns(data, column, results))


def store(ns: dict[str, Any], data_name: str, output: str | None, results: Sequence[Any],
          column: str = "reply") -> Any:
    """Where ``%%chat --map`` puts its values.

    A DataFrame variable gets the new column in place (``-o`` names it); with dict
    values (``--schema``), one column per field, added in one step, so the variable is
    bound to the new frame. A list goes to the ``-o`` variable, or is the cell's value.
    """
    data = ns[data_name]
    if is_frame(data):
        columns = frame_columns(data, column, results)
        if list(columns) == [column]:
            data[column] = columns[column]  # in place: other names of the frame see it
            data.attrs[OURS] = sorted(ours(data) | {column})
        else:
            ns[data_name] = with_columns(data, columns)
        return None
    if output:
        ns[output] = list(results)
        return None
    return list(results)
