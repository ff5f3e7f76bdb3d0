"""Many prompts at once (``%%chat --map``, ``yagpt_magic.map``): one request per row.

Rows run concurrently on the SDK's async API, on the backend's own loop thread, paced
by :class:`RateControl`: slow start, then additive increase and multiplicative decrease
on ``RESOURCE_EXHAUSTED``, so the job settles near the folder's quota instead of
sending a storm of rejected requests (a rejected request costs nothing but is retried
after the rate is cut). Each answered row is written to the :class:`~.cache.RowCache`
the moment it arrives, on the loop thread, so an interrupt, a crash or a kernel
restart loses nothing and a re-run sends only the rows not yet answered.

A row that fails for its own reason (content filter, invalid or too long request)
gets its error object in its place and the others go on; a failure that dooms every
row (credentials, permission, unreachable service, unknown model) stops the job at
once with one line.
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
from ..core.errors import ChatError, ContentFiltered, Interrupted, UsageProblem
from ..core.template import split_code
from .row_cache import RowCache, request_key

if TYPE_CHECKING:
    from ..core.backend import Reply, RequestOptions
    from ..core.session import ChatSession
    from ..service.text_generation import TextGenerationBackend

#: ``{column}`` outside code, as ``--vars`` reads ``{name}``: other braces stay as typed.
_FIELD = re.compile(r"(?<!\{)\{([A-Za-z_]\w*)\}(?!\})")
#: gRPC codes after which no other row can succeed either.
_DOOMED = {"UNAUTHENTICATED", "PERMISSION_DENIED", "UNAVAILABLE", "NOT_FOUND",
           "UNIMPLEMENTED"}
_UNKNOWN_MODEL = re.compile(r"(?i)model[ _]?uri|unknown model|no such model|invalid model\b")
#: A parse hook: the reply text of one row -> the value put in its place (or its columns,
#: when it returns a dict). ``--schema`` plugs its JSON parsing in here.
Parse = Callable[[str], Any]


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


class RateControl:
    """Pacing of request starts: slow start, then AIMD on quota rejections.

    The rate grows by half of itself per second until the first rejection, then by
    about one request per second each second; a rejection cuts it to the lower of
    ``decrease`` times itself and the rate the service accepted over the last half
    second (the quota, once its burst is spent), at most once per ``cooldown`` since
    the rejections of one overshoot arrive together. The rate is never raised far
    above what is actually sent, so a concurrency cap or a slow service does not
    inflate it into a burst later. One waiter at a time holds the pacing lock, so a
    rate change applies to the very next request.
    """

    def __init__(self, rate: float = 4.0, *, decrease: float = 0.85, cooldown: float = 0.5,
                 floor: float = 0.5) -> None:
        self.rate = rate
        self.decrease = decrease
        self.cooldown = cooldown
        self.floor = floor
        self.slow_start = True
        self._next = 0.0
        self._cut_at = -1e9
        self._sent: deque[float] = deque()
        self._accepted: deque[float] = deque()
        self._lock: asyncio.Lock | None = None
        #: Requests started and quota rejections seen, for the benchmark and the curious.
        self.attempts = 0
        self.rejections = 0

    async def wait(self) -> None:
        """Sleep until this request's slot; slots are ``1/rate`` apart."""
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            while True:
                now = time.monotonic()
                if now >= self._next:
                    break
                await asyncio.sleep(min(self._next - now, 0.05))
            self._next = max(now, self._next + 1.0 / self.rate) if self._next else now
            self._sent.append(now)
            self.attempts += 1
            while self._sent[0] < now - 1.0:
                self._sent.popleft()

    def succeeded(self) -> None:
        now = time.monotonic()
        self._accepted.append(now)
        while self._accepted[0] < now - 0.5:
            self._accepted.popleft()
        ceiling = 2.0 * len(self._sent) + 4.0
        step = 0.5 if self.slow_start else 1.0 / self.rate
        self.rate = min(self.rate + step, max(self.rate, ceiling))

    def rejected(self) -> None:
        self.rejections += 1
        now = time.monotonic()
        if now - self._cut_at < self.cooldown:
            return
        self._cut_at = now
        self.slow_start = False
        accepted = sum(1 for t in self._accepted if t >= now - 0.5) * 2.0
        self.rate = max(self.floor, min(self.rate * self.decrease, accepted or self.rate))
        self._next = now + 1.0 / self.rate  # a pause, so the quota's bucket refills


@dataclass
class Outcome:
    """What a finished job did, for the summary line and the benchmark."""

    rows: int = 0
    cached: int = 0
    sent: int = 0
    failed: int = 0
    rejected: int = 0
    tokens: int = 0
    seconds: float = 0.0
    results: list[Any] = field(default_factory=list, repr=False)

    def summary(self) -> str:
        answered = self.rows - self.failed
        parts = [f"{answered:,} of {self.rows:,} rows answered"]
        if self.cached:
            parts.append(f"{self.cached:,} from the cache")
        if self.failed:
            parts.append(f"{self.failed:,} failed (their error objects are in their places)")
        parts.append(f"{self.tokens:,} tokens, {self.seconds:.1f} s")
        return "; ".join(parts) + "."


def _code(err: BaseException) -> str:
    code = getattr(err, "code", None)
    if callable(code):
        try:
            return str(code().name)
        except Exception:  # noqa: BLE001 - an odd error object is just unknown
            return "UNKNOWN"
    return ""


def _details(err: BaseException) -> str:
    details = getattr(err, "details", None)
    try:
        return str(details()) if callable(details) else str(err)
    except Exception:  # noqa: BLE001
        return ""


def classify(err: BaseException) -> str:
    """``quota`` (retry slower), ``row`` (this row's own failure) or ``doomed``."""
    code = _code(err)
    details = _details(err)
    if code == "RESOURCE_EXHAUSTED":
        return "row" if "larger than max" in details else "quota"
    if code in _DOOMED or not code:
        return "doomed"
    if code == "INVALID_ARGUMENT" and _UNKNOWN_MODEL.search(details):
        return "doomed"
    return "row"


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


def run_rows(
    backend: TextGenerationBackend,
    requests: Sequence[Sequence[Message]],
    options: RequestOptions,
    *,
    cache: RowCache | None,
    concurrency: int,
    progress: Any = None,
    control: RateControl | None = None,
) -> Outcome:
    """Answer every request (row order kept): cached ones from disk, the rest concurrently.

    A KeyboardInterrupt stops promptly with ``Interrupted``; what finished is cached.
    """
    started = time.monotonic()
    outcome = Outcome(rows=len(requests), results=[None] * len(requests))
    keys = [request_key(messages, options) for messages in requests]
    pending = []
    for index, key in enumerate(keys):
        reply = cache.get(key) if cache is not None else None
        if reply is None:
            pending.append(index)
        else:
            outcome.results[index] = reply
            outcome.cached += 1
            outcome.tokens += reply.usage.total_tokens
    if progress is not None:
        progress.start(outcome)
    control = control if control is not None else RateControl()

    async def produce(put: Callable[[Any], None]) -> None:
        put(("start", None))
        slots = asyncio.Semaphore(concurrency)
        tasks: list[asyncio.Task[None]] = []
        doomed: list[BaseException] = []

        async def one(index: int) -> None:
            try:
                while True:
                    await control.wait()
                    try:
                        reply = await backend.run_once(requests[index], options)
                    except asyncio.CancelledError:
                        raise
                    except Exception as err:  # noqa: BLE001 - sorted by what it means
                        kind = classify(err)
                        if kind == "quota":
                            control.rejected()
                            put(("rejected", None))
                            continue
                        if kind == "doomed":
                            doomed.append(err)
                            raise _Doomed(err) from err
                        put(("row", (index, backend.translate(err))))
                        return
                    control.succeeded()
                    if reply.status == "filtered":
                        withheld = ContentFiltered(
                            f"Row {index}: the reply was withheld by the content filter.")
                        put(("row", (index, withheld)))
                        return
                    if cache is not None:
                        cache.put(keys[index], reply)
                    put(("row", (index, reply)))
                    return
            finally:
                slots.release()

        try:
            for index in pending:
                await slots.acquire()
                if doomed:  # no row can succeed: send no more, gather raises it below
                    slots.release()
                    break
                tasks.append(asyncio.ensure_future(one(index)))
            await asyncio.gather(*tasks)
        except BaseException:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
        put(("end", None))

    cancel = threading.Event()
    try:
        with interrupt_as(cancel):
            _consume(backend.drive(produce, cancel=cancel), cancel, outcome, progress)
    except _Doomed as doomed:
        done = sum(1 for r in outcome.results if r is not None)
        error = backend.translate(doomed.err)
        raise type(error)(
            f"{error} Stopped: {done:,} of {outcome.rows:,} rows are done and kept."
        ) from None
    except (KeyboardInterrupt, Interrupted):
        done = sum(1 for r in outcome.results if r is not None)
        raise Interrupted(
            f"Interrupted: {done:,} of {outcome.rows:,} rows are done and kept; run the cell "
            f"again to send only the other {outcome.rows - done:,}."
        ) from None
    finally:
        outcome.seconds = time.monotonic() - started
        if progress is not None:
            progress.close(outcome)
    return outcome


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


def requests_for(template: Template, rows: Sequence[dict[str, Any]],
                 system: str) -> list[list[Message]]:
    """One independent request per row: the system prompt, then the filled template."""
    head = [{"role": "system", "text": system}] if system.strip() else []
    return [head + [{"role": "user", "text": template.fill(row)}] for row in rows]


def values(outcome: Outcome, parse: Parse | None) -> list[Any]:
    """Each row's value: its reply text (through ``parse``), or its error object."""
    result: Reply | str | BaseException
    out: list[Any] = []
    for result in outcome.results:
        if isinstance(result, BaseException):
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


def shaped(data: Any, column: str, results: list[Any]) -> Any:
    """A list as is; for a DataFrame, a copy with the new column (or one per dict field)."""
    if not (hasattr(data, "assign") and hasattr(data, "columns")):
        return results
    if results and all(isinstance(r, dict) for r in results if not isinstance(r, Exception)) \
            and any(isinstance(r, dict) for r in results):
        names = list(dict.fromkeys(k for r in results if isinstance(r, dict) for k in r))
        columns = {
            name: [r.get(name) if isinstance(r, dict) else r for r in results] for name in names
        }
        return data.assign(**columns)
    return data.assign(**{column: results})


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
) -> tuple[Any, Outcome]:
    """The whole ``--map`` job for a session: check, send, and shape the result."""
    if session.replay is not None:
        raise UsageProblem("--map does not run in replay mode; %chat live first.")
    if not template.strip():
        raise UsageProblem("The template is empty: write it below the %%chat line.")
    rows, columns = rows_of(data)
    filled = Template(template.strip("\n"))
    filled.check(columns)
    settings = session.settings
    requests = requests_for(filled, rows, settings.system_prompt if system is None else system)
    options = options if options is not None else session.options(stream=False)
    concurrency = concurrency if concurrency is not None else settings.max_concurrency
    if concurrency <= 0:
        raise UsageProblem(f"--concurrency must be a positive number, not {concurrency}.")
    from .progress import Bar

    outcome = run_rows(
        session.backend(), requests, options,
        cache=RowCache(settings.cache_dir or None), concurrency=concurrency,
        progress=Bar() if progress else None,
    )
    return shaped(data, column, values(outcome, parse)), outcome


def store(ns: dict[str, Any], data_name: str, output: str | None, result: Any) -> Any:
    """Where ``%%chat --map`` puts its result.

    A DataFrame variable gets the new column(s) in place (``-o`` names the column); a
    list goes to the ``-o`` variable, or is the cell's value.
    """
    data = ns[data_name]
    if hasattr(data, "columns") and hasattr(result, "columns"):
        for name in result.columns:
            data[name] = result[name]
        return None
    if output:
        ns[output] = result
        return None
    return result
