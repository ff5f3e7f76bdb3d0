"""One kernel's chat state: its settings, threads, listeners, and how a turn is made.

The magics and the widget are two views over one ``ChatSession``: both call ``ask``,
both read ``settings``, and both hear about every change through ``subscribe``.
How a reply is produced is handed in (``Backends``: live, replay), and so is where
committed turns go (a recorder); the commands that switch modes call ``use``, so the
session never asks which mode it is in. Nothing here imports IPython, the SDK, a
service or a file format.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from enum import Enum
from typing import TYPE_CHECKING, Any, Protocol

from . import __version__, models
from .backend import Backend, Backends, NoBackends, Reply, Request, RequestOptions
from .conversation import Message, Thread, Turn, message_bound, message_text
from .errors import (
    ChatError,
    ContentFiltered,
    ContextTooLong,
    InvalidReply,
    RecordingFailed,
    ServiceError,
    TranscriptError,
    UsageProblem,
    sendable,
)
from .fitting import Fit, WindowOverflow, fit_to_window
from .images import Image, image_from
from .settings import Settings
from .storable import turn_problem

if TYPE_CHECKING:
    from .context import CellHistory
    from .structured import Parsed, Schema
    from .tools import Approver, ToolEvent, ToolRun

#: The largest request the service takes: gRPC's default limit on a received message
#: (4 MiB). The SDK's channels set no larger one, and a request over it fails with
#: RESOURCE_EXHAUSTED, which reads like a quota; a little is kept for the envelope.
MAX_REQUEST_BYTES = 4 * 1024 * 1024 - 64 * 1024


def request_bytes(messages: Sequence[Message]) -> int:
    """About the size of the request message on the wire (texts plus a little framing)."""
    return sum(len(message_text(m).encode("utf-8")) + 16 for m in messages)


class TurnSink(Protocol):
    """Hears each committed turn (a recording to a transcript), and may fail the cell."""

    def append(self, thread: Thread, index: int) -> None: ...

    def close(self) -> None: ...


class EventKind(str, Enum):
    """What a ``ThreadEvent`` reports; a ``str`` so it compares with the plain names."""

    COMMIT = "commit"
    RESET = "reset"
    UNDO = "undo"
    SYSTEM = "system"
    LOAD = "load"


@dataclass(frozen=True)
class ThreadEvent:
    """What changed on a thread, and which turn (for commit and undo)."""

    thread: str
    kind: EventKind
    index: int | None = None


@dataclass
class Answer:
    """The outcome of ``ChatSession.ask``: the committed turn and how it was fitted."""

    thread: str
    index: int
    turn: Turn
    fit: Fit
    window: int
    replaced: bool
    messages: list[Message] = field(repr=False, default_factory=list)
    #: The validated Python object of a structured turn (``ask(schema=...)``).
    value: Any = None


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def turn_metadata(thread: str, index: int, turn: Turn) -> dict[str, Any]:
    """Everything SPEC 6 asks a reply output to carry, under ``yagpt_magic``."""
    return {
        "thread": thread,
        "turn": index,
        "cell_id": turn.cell_id,
        "model_uri": turn.model,
        "model_version": turn.settings.get("model_version", ""),
        "temperature": turn.settings.get("temperature"),
        "max_tokens": turn.settings.get("max_tokens"),
        "reasoning_mode": turn.settings.get("reasoning_mode"),
        "usage": {
            "input_tokens": turn.usage.input_tokens,
            "completion_tokens": turn.usage.completion_tokens,
            "reasoning_tokens": turn.usage.reasoning_tokens,
            "total_tokens": turn.usage.total_tokens,
        },
        "status": turn.status,
        "started": turn.started,
        "finished": turn.finished,
        "messages_sha256": turn.sha256,
        "system_prompt": turn.system_prompt,
        # The message as sent: with --vars the cell source is not what went out.
        "user": turn.user,
        "context_start": turn.context_start,
        "schema": turn.schema,
        "value": turn.value,
        "version": __version__,
        # Which API answered (SPEC 15): "text-generation", "openai-compatible", or ""
        # for a turn from a transcript written before there were two.
        "api": turn.api,
        **({"tool_rounds": tool_rounds_record(turn)} if turn.tool_rounds else {}),
        # The images sent with the message (SPEC 15), by SHA-256: the bytes are kept once.
        **({"images": [{"sha256": i.sha256, "name": i.name} for i in turn.images]}
           if turn.images else {}),
    }


def tool_rounds_record(turn: Turn) -> list[dict[str, Any]]:
    """A turn's tool calls as stored: per round, its usage and each call's result."""
    return [
        {
            "usage": {"input_tokens": r.usage.input_tokens,
                      "completion_tokens": r.usage.completion_tokens,
                      "reasoning_tokens": r.usage.reasoning_tokens,
                      "total_tokens": r.usage.total_tokens},
            "calls": [{"name": c.name, "arguments": c.arguments, "result": c.result,
                       "outcome": c.outcome, **({"id": c.id} if c.id else {})}
                      for c in r.calls],
        }
        for r in turn.tool_rounds
    ]


@dataclass
class TurnRequest:
    """One turn in the making: what ``ask`` was given, and where the turn will go."""

    thread: Thread
    text: str
    options: RequestOptions
    window: int
    cell_id: str | None
    #: The turn this one replaces (a re-run cell, regenerate), or None to append.
    slot: int | None
    on_text: Callable[[str], None] | None = None
    on_fit: Callable[[Fit], None] | None = None
    cancel: threading.Event | None = None
    run: ToolRun | None = None
    on_tool: Callable[[ToolEvent], None] | None = None
    schema: Schema | None = None
    #: The images to send with the message, as ``ask`` was given them (``images.image_from``).
    image_specs: Sequence[Any] = ()

    @property
    def upto(self) -> int:
        """Where the turn goes: the turns before it are its possible context."""
        return len(self.thread.turns) if self.slot is None else self.slot

    def request(self, messages: Sequence[Message], options: RequestOptions) -> Request:
        return Request(tuple(messages), options, self.thread.name, self.upto)


class ChatSession:
    """Settings, threads, their listeners, and the path from a message to a committed turn."""

    def __init__(self, settings: Settings | None = None, backends: Backends | None = None, *,
                 secrets: Callable[[], Sequence[str]] | None = None) -> None:
        self.settings = settings if settings is not None else Settings()
        self.threads: dict[str, Thread] = {}
        #: How replies are produced (``service/``: live, replay); ``use`` swaps it. A bare
        #: session keeps threads and has nothing to ask (``NoBackends``).
        self.backends: Backends = backends if backends is not None else NoBackends()
        #: Where each committed turn is written (``%chat record``); ``use`` swaps it.
        self.recorder: TurnSink | None = None
        #: The credentials this kernel knows, so a tool's result is scrubbed of them.
        self._secrets = secrets if secrets is not None else tuple
        self._listeners: list[Callable[[ThreadEvent], None]] = []
        self._busy: set[str] = set()
        self._lock = threading.RLock()
        #: The kernel's user namespace: where ``--tools`` names are looked up (SPEC 12).
        self.namespace: Mapping[str, Any] = {}
        #: The code cells the kernel ran, for ``--cells`` and the widget's toggle (SPEC 16);
        #: the IPython layer hands one in (``ipython/cells.py``), a bare session has none.
        self.cells: CellHistory | None = None
        self._tool_cache: dict[str, Any] = {}  # name -> tools.Tool, see tools.offer
        self.thread("default")

    # -- threads -------------------------------------------------------------------
    def thread(self, name: str = "default", *, create: bool = True) -> Thread:
        """The named thread; an unknown name is created, or refused when ``create`` is off.

        A new thread starts with the configured system prompt: this is the one place
        the default prompt is applied.
        """
        with self._lock:
            found = self.threads.get(name)
            if found is None:
                if not create:
                    known = ", ".join(sorted(self.threads)) or "none"
                    raise UsageProblem(f"No thread named {name!r} (threads: {known}).")
                found = self.threads[name] = Thread(name, self.settings.system_prompt)
            return found

    def subscribe(self, listener: Callable[[ThreadEvent], None]) -> Callable[[], None]:
        """Call ``listener`` on every change; returns a function that unsubscribes."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def notify(self, event: ThreadEvent) -> None:
        for listener in list(self._listeners):
            listener(event)

    def _refuse_if_busy(self, names: Iterable[str], error: type[ChatError]) -> None:
        """A reply being written (from the widget) would commit into a changed thread."""
        busy = sorted(set(names) & self._busy)
        if busy:
            raise error(
                f"A reply is being written on {', '.join(map(repr, busy))}; wait for it "
                "or press Stop, then try again. Nothing was changed."
            )

    def reset(self, name: str) -> None:
        thread = self.thread(name, create=False)
        with self._lock:
            self._refuse_if_busy([name], UsageProblem)
            thread.reset()
        self.notify(ThreadEvent(name, EventKind.RESET))

    def undo(self, name: str) -> Turn:
        thread = self.thread(name, create=False)
        with self._lock:
            self._refuse_if_busy([name], UsageProblem)
            if not thread.turns:
                raise UsageProblem(f"Thread {name!r} has no turns to undo.")
            turn = thread.undo()
        self.notify(ThreadEvent(name, EventKind.UNDO, len(thread.turns)))
        return turn

    def replace_threads(self, threads: dict[str, Thread]) -> None:
        """Swap in whole threads (load, restore) at once, then tell the listeners."""
        with self._lock:
            self._refuse_if_busy(threads, TranscriptError)
            self.threads.update(threads)
        for name in threads:
            self.notify(ThreadEvent(name, EventKind.LOAD))

    def copies(self, threads: list[Thread]) -> list[Thread]:
        """Copies taken under the lock, so a reply committing meanwhile can't tear them."""
        with self._lock:
            return [thread.copy() for thread in threads]

    def set_system(self, name: str, text: str) -> None:
        self.thread(name).system_prompt = text
        self.notify(ThreadEvent(name, EventKind.SYSTEM))

    # -- what is handed in: backends, recorder, secrets ------------------------------
    def use(self, *, backends: Backends, recorder: TurnSink | None = None) -> None:
        """Answer from ``backends`` and write turns to ``recorder`` from now on.

        This is how a command switches modes (record, replay, live); a recorder that is
        replaced is closed. The backends are the caller's to close.
        """
        if self.recorder is not None and self.recorder is not recorder:
            self.recorder.close()
        self.backends, self.recorder = backends, recorder

    def secrets(self) -> tuple[str, ...]:
        """Every credential this kernel knows, so text that leaves it can be scrubbed."""
        return tuple(self._secrets())

    def options(self, **overrides: Any) -> RequestOptions:
        """Request options from the settings, with per-turn overrides that are not None."""
        s = self.settings
        values: dict[str, Any] = {
            "model": s.model,
            "model_version": s.model_version,
            "temperature": s.temperature,
            "max_tokens": s.max_tokens,
            "reasoning_mode": s.reasoning_mode or None,
            "stream": s.stream,
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return RequestOptions(**values)

    def window(self, options: RequestOptions) -> int:
        """The context window a request with ``options`` is fitted into: the model's own
        (``models``), unless ``context_window`` is set for every model."""
        return models.context_window(options.model, self.settings.context_window or None)

    def backend(self, options: RequestOptions | None = None) -> Backend:
        """The backend that serves ``options`` (default: the settings' model)."""
        return self.backends.backend(options if options is not None else self.options())

    def close(self) -> None:
        """Close the backends in use; threads are kept for a reload."""
        self.backends.close()
        self._listeners.clear()

    # -- a turn ----------------------------------------------------------------------
    def _tool_run(
        self,
        names: str | Sequence[str] | None,
        approve: Approver | None,
        on_tool: Callable[[ToolEvent], None] | None,
        cancel: threading.Event | None,
        *,
        force: bool = False,
    ) -> ToolRun | None:
        """The turn's tools from the named callables (default: the ``tools`` setting)."""
        from .tools import offer, split_names

        chosen = split_names(self.settings.tools if names is None else names)
        if not chosen and not force:
            return None
        from .tools import ToolRun

        s = self.settings
        tools = offer(self.namespace, chosen, self._tool_cache)
        return ToolRun(tools, s.tool_calls, approve, on_tool, s.tool_result_limit,
                       s.max_tool_rounds, cancel, self.secrets())

    def ask(
        self,
        thread_name: str,
        text: str,
        *,
        options: RequestOptions | None = None,
        context_window: int | None = None,
        cell_id: str | None = None,
        on_text: Callable[[str], None] | None = None,
        on_fit: Callable[[Fit], None] | None = None,
        cancel: threading.Event | None = None,
        tools: str | Sequence[str] | None = None,
        approve: Approver | None = None,
        on_tool: Callable[[ToolEvent], None] | None = None,
        schema: Schema | None = None,
        at: int | None = None,
        images: Sequence[Any] = (),
    ) -> Answer:
        """Send ``text`` with as much earlier context as fits; commit only a finished reply.

        ``options`` default to the settings; ``context_window`` to the model's window.
        ``tools`` names functions of ``namespace`` to offer (default: the ``tools``
        setting); ``approve`` is asked about each call when ``tool_calls`` is "ask"
        (without one, "ask" refuses every call); ``on_tool`` hears each call as it
        happens. The turn commits only once the model answers in text.

        With ``schema`` the request asks for it and the reply must validate before the
        turn is committed (``InvalidReply`` otherwise).

        ``at`` replaces turn ``at`` (the widget's regenerate and edit-and-resend), with the
        same rules as a cell re-run: the turns before it are the context, later ones
        become stale.

        ``images`` go with the message (SPEC 15): each an ``Image``, or what
        ``images.image_from`` takes (a path, bytes, a PIL image, a figure). Only a model
        that reads images takes them; in replay a path the recorded turn named is taken
        from the recording, never read again.
        """
        if not text.strip():
            raise UsageProblem("The message is empty: write it below the %%chat line.")
        sendable(text, "The message")
        sendable(self.thread(thread_name).system_prompt, f"The system prompt of {thread_name!r}")
        options = options if options is not None else self.options()
        run = self._tool_run(tools, approve, on_tool, cancel)
        if run is not None:
            options = replace(options, tools=tuple(t.definition for t in run.tools.values()))
        if schema is not None:
            options = replace(options, response_format=schema.response_format)
        window = context_window if context_window is not None else self.window(options)
        thread = self.thread(thread_name)
        with self._writing(thread_name):
            if at is not None and not 0 <= at < len(thread.turns):
                raise UsageProblem(
                    f"Thread {thread_name!r} has no turn {at}; it may have been reset or undone."
                )
            slot = thread.slot_for(cell_id) if at is None else at
            # 0 or None: the model's own window (models.MODELS); else the override.
            window = models.context_window(options.model, window or None)
            return self._ask(TurnRequest(thread, text, options, window, cell_id, slot, on_text,
                                         on_fit, cancel, run, on_tool, schema, images))

    @contextmanager
    def _writing(self, name: str) -> Iterator[None]:
        """One reply at a time per thread: a second one would commit into a moving thread."""
        with self._lock:
            if name in self._busy:
                raise UsageProblem(
                    f"A reply is already being written on thread {name!r}; "
                    "wait for it or press Stop."
                )
            self._busy.add(name)
        try:
            yield
        finally:
            with self._lock:
                self._busy.discard(name)

    def _ask(self, turn: TurnRequest) -> Answer:
        """Fit, build the request, run it (and its tool rounds), validate, commit, record."""
        _refuse_images(turn)
        budget = _budget(turn)
        backend = self.backends.backend(turn.options)
        images = _images(turn, backend)
        fit = _fit(turn, backend, budget, images)
        _refuse_images_in_context(turn, fit)
        if turn.on_fit is not None:
            turn.on_fit(fit)
        messages = _request(turn, fit, images)
        system_prompt = turn.thread.system_prompt  # as sent, even if changed while it streams
        started = now_iso()
        reply = backend.complete(turn.request(messages, turn.options), on_text=turn.on_text,
                                 cancel=turn.cancel)
        reply, rounds = self._tool_rounds(turn, backend, messages, reply)
        parsed = _validate(turn, reply)
        made = _turn(turn, reply, rounds, parsed, fit, started, system_prompt, images)
        answer = self._commit(turn, made, fit, messages, parsed)
        self._record(turn.thread, answer)
        return answer

    def _tool_rounds(
        self, turn: TurnRequest, backend: Backend, messages: list[Message], reply: Reply
    ) -> tuple[Reply, tuple[Any, ...]]:
        """Run the calls a reply asks for until the model answers in text.

        A reply that brings its rounds along (replayed from a transcript) is shown as it
        was recorded; nothing is run again.
        """
        rounds = tuple(reply.tool_rounds)
        if rounds and turn.on_tool is not None:
            from .tools import replayed

            replayed(rounds, turn.on_tool)
        elif reply.status == "tool_calls":
            run = turn.run
            if run is None:  # none offered: every call is reported back as not offered
                run = self._tool_run((), None, None, turn.cancel, force=True)
            assert run is not None  # forced: always a run

            def send(sent: list[Message], opts: RequestOptions) -> Reply:
                return backend.complete(turn.request(sent, opts), on_text=turn.on_text,
                                        cancel=turn.cancel)

            reply, rounds = run.run_rounds(reply, messages, turn.options, send)
        if reply.status == "tool_calls":  # only a replay could bring one this far
            raise ChatError("The model asked for tools but gave no answer; nothing was added.")
        return reply, rounds

    def _commit(self, turn: TurnRequest, made: Turn, fit: Fit, messages: list[Message],
                parsed: Parsed | None) -> Answer:
        unkept = turn_problem(made)  # a turn is kept only if every transcript can hold it
        if unkept:
            raise InvalidReply(f"The reply cannot be kept: {unkept}; nothing was added to "
                               f"thread {turn.thread.name!r}.")
        with self._lock:
            index = turn.thread.commit(made, turn.slot)
        self.notify(ThreadEvent(turn.thread.name, EventKind.COMMIT, index))
        return Answer(turn.thread.name, index, made, fit, turn.window, turn.slot is not None,
                      messages, parsed.value if parsed is not None else None)

    def _record(self, thread: Thread, answer: Answer) -> None:
        """Write the committed turn to the recording; a failure fails the cell, not the turn."""
        if self.recorder is None:
            return
        try:
            self.recorder.append(thread, answer.index)
        except TranscriptError as err:
            raise RecordingFailed(
                f"The reply was added to thread {thread.name!r} as turn {answer.index}, but "
                f"recording it failed: {err} Fix that and run %chat record again.",
                answer,
            ) from None


def _budget(turn: TurnRequest) -> int:
    """Tokens left for the context and the message, after the reply and the tools."""
    alone = turn.thread.request(turn.text, upto=turn.upto, start=turn.upto)
    size = request_bytes(alone)
    if size > MAX_REQUEST_BYTES:
        raise ContextTooLong(
            f"The message is {size / 2**20:.1f} MB; the service accepts at most "
            f"{(MAX_REQUEST_BYTES + 2**16) // 2**20} MB in one request (gRPC's message "
            "size limit). Nothing was sent: shorten it or send a part at a time."
        )
    options = turn.options
    # Offered tools travel with every request: their schemas take room too.
    offered = sum(message_bound(t.name + t.description + t.parameters) for t in options.tools)
    budget = turn.window - (options.max_tokens or 0) - offered
    if budget <= 0:
        raise UsageProblem(
            f"max_tokens ({options.max_tokens}) leaves no room in the "
            f"{turn.window}-token window; lower max_tokens or raise context_window."
        )
    return budget


def _refuse_images(turn: TurnRequest) -> None:
    """Images go only to a model that reads them: refused before anything is sent."""
    model = turn.options.model
    if turn.image_specs and not models.reads_images(model):
        raise UsageProblem(
            f"{model} does not read images; nothing was sent. Ask a model that does "
            f"(-m {' or '.join(models.image_models())}), or leave out --image."
        )


def _images(turn: TurnRequest, backend: Backend) -> tuple[Image, ...]:
    """The images the turn sends, each checked; what a recorded turn sent is not read again."""
    if not turn.image_specs:
        return ()
    recorded = {i.name: i for i in backend.recorded_images(turn.thread.name, turn.upto)}
    found = []
    for spec in turn.image_specs:
        key = os.fspath(spec) if isinstance(spec, (str, os.PathLike)) else None
        found.append(recorded[key] if key in recorded else image_from(spec))
    return tuple(found)


def _refuse_images_in_context(turn: TurnRequest, fit: Fit) -> None:
    """An earlier turn's images go out again as context: only to a model that reads them."""
    model, thread = turn.options.model, turn.thread
    if models.reads_images(model):
        return
    held = next((k for k in range(fit.start, turn.upto) if thread.turns[k].images), None)
    if held is not None:
        raise UsageProblem(
            f"Turn {held} of thread {thread.name!r} sent an image, which goes again with "
            f"this request as context, and {model} does not read images; nothing was sent. "
            f"Ask a model that does (-m {' or '.join(models.image_models())}), or go on "
            "in a new thread (-t NAME)."
        )


def _fit(turn: TurnRequest, backend: Backend, budget: int, images: tuple[Image, ...]) -> Fit:
    """Which earlier turns go out: the recorded ones when the backend knows them."""
    upto = turn.upto
    recorded = backend.context_start(turn.thread.name, upto)
    if recorded is not None and recorded <= upto:
        return Fit(recorded, upto, 0, 0)
    # Turns are counted without the offered tools, which the budget already holds.
    counting = replace(turn.options, tools=(), tool_choice=None)

    def count(messages: Sequence[Message]) -> int | None:
        try:
            return backend.count(messages, counting)  # None: this API cannot count (bounds do)
        except ServiceError as err:
            if "got" not in err.facts or len(messages) > len(turn.thread.request(
                    turn.text, upto=upto, start=upto, images=images)):
                raise
            # The tokenizer refused the message itself: no window setting would help.
            raise ContextTooLong(
                f"The message alone is {err.facts['got']:,} tokens, more than the "
                f"{err.facts['limit']:,} the model takes in one request; nothing was sent. "
                "Shorten it, or send it a part at a time.") from None

    try:
        return fit_to_window(turn.thread, turn.text, budget=budget, count=count, upto=upto,
                             model=turn.options.model, images=images)
    except WindowOverflow as err:
        over = (f"may be up to {err.tokens - err.budget} tokens over the room for it (its "
                "UTF-8 length bounds it: this model's API has no tokenizer)" if err.bound
                else f"is {err.tokens - err.budget} tokens over the room for it")
        raise ContextTooLong(
            f"The message {over} ({err.budget} of the {turn.window}-token window after "
            f"reserving max_tokens={turn.options.max_tokens}); shorten it or lower max_tokens."
        ) from None


def _request(turn: TurnRequest, fit: Fit, images: tuple[Image, ...]) -> list[Message]:
    """The messages that go out: the fitted context, then the new message."""
    messages = turn.thread.request(turn.text, upto=turn.upto, start=fit.start, images=images)
    size = request_bytes(messages)
    if size > MAX_REQUEST_BYTES:
        raise ContextTooLong(
            f"The request with its context is {size / 2**20:.1f} MB, over the "
            f"{(MAX_REQUEST_BYTES + 2**16) // 2**20} MB the service accepts; nothing was "
            "sent. Start a new thread (-t NAME) or %chat reset this one."
        )
    return messages


def _validate(turn: TurnRequest, reply: Reply) -> Parsed | None:
    """A filtered reply, or one that does not fit the schema, is never committed."""
    if reply.status == "filtered":
        raise ContentFiltered(
            "The reply was withheld by the content filter; nothing was added to thread "
            f"{turn.thread.name!r}. Rephrase the message and run the cell again."
        )
    if turn.schema is None:
        return None
    try:
        return turn.schema.parse(reply.text, truncated=reply.status == "truncated")
    except InvalidReply as err:
        raise InvalidReply(f"{err}; nothing was added to thread {turn.thread.name!r}. Run "
                           "the cell again, or loosen the schema.") from None


def _turn(turn: TurnRequest, reply: Reply, rounds: tuple[Any, ...], parsed: Parsed | None,
          fit: Fit, started: str, system_prompt: str, images: tuple[Image, ...]) -> Turn:
    """The committed turn: the reply, how it was asked for, and what it cost."""
    options = turn.options
    return Turn(
        user=turn.text,
        reply=reply.text,
        cell_id=turn.cell_id,
        model=reply.model_uri,
        settings={
            "model_version": reply.model_version,
            "temperature": options.temperature,
            "max_tokens": options.max_tokens,
            "reasoning_mode": options.reasoning_mode,
        },
        usage=reply.usage,
        status="truncated" if reply.status == "truncated" else "final",
        started=started,
        finished=now_iso(),
        sha256=turn.thread.request_sha256(turn.text, upto=turn.upto, start=fit.start,
                                          system=system_prompt, images=images),
        system_prompt=system_prompt,
        context_start=fit.start,
        probe=fit.probe,
        tail=fit.tail,
        tool_rounds=rounds,
        schema=turn.schema.name if turn.schema is not None else None,
        value=parsed.data if parsed is not None else None,
        api=reply.api,
        images=images,
    )
