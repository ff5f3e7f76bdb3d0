"""One kernel's chat state: its settings, threads, connection, and how a turn is made.

The magics and the widget are two views over one ``ChatSession``: both call ``ask``,
both read ``settings``, and both hear about every change through ``subscribe``.
Modes (record, replay, live, login, offline) are methods here, so no view sets the
session's state by hand. Nothing here imports IPython or the SDK; the backend is
built on the first request.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from enum import Enum
from typing import TYPE_CHECKING, Any, Protocol

from .. import __version__
from ..service.connection import Connection, Credential, CredentialKind, resolve
from ..service.text_generation import TextGenerationBackend
from . import models
from .backend import Reply, RequestOptions
from .conversation import Message, Thread, Turn, message_bound, message_text
from .errors import (
    ChatError,
    ContentFiltered,
    ContextTooLong,
    InvalidReply,
    RecordingFailed,
    TranscriptError,
    UsageProblem,
    sendable,
)
from .fitting import Fit, WindowOverflow, fit_to_window
from .images import Image, image_from
from .settings import Settings
from .storable import turn_problem

if TYPE_CHECKING:
    from ..emulator import Emulator
    from .context import CellHistory
    from .structured import Schema
    from .tools import Approver, ToolEvent, ToolRun

#: The largest request the service takes: gRPC's default limit on a received message
#: (4 MiB). The SDK's channels set no larger one, and a request over it fails with
#: RESOURCE_EXHAUSTED, which reads like a quota; a little is kept for the envelope.
MAX_REQUEST_BYTES = 4 * 1024 * 1024 - 64 * 1024


def request_bytes(messages: Sequence[Message]) -> int:
    """About the size of the request message on the wire (texts plus a little framing)."""
    return sum(len(message_text(m).encode("utf-8")) + 16 for m in messages)


class ReplySource(Protocol):
    """Answers requests without the service (replay of a transcript)."""

    def context_start(self, thread: str, index: int) -> int | None:
        """Where the recorded turn's context began, so replay sends the same messages."""
        ...

    def answer(
        self, thread: str, index: int, messages: Sequence[Message], options: RequestOptions
    ) -> Reply: ...

    def recorded_images(self, thread: str, index: int) -> Sequence[Image]:
        """The images the recorded turn sent, so replay never reads their files again."""
        ...


class TurnSink(Protocol):
    """Hears each committed turn (recording to a transcript)."""

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


class ChatSession:
    """Settings, threads, their listeners, and the path from a message to a committed turn."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings if settings is not None else Settings()
        self.threads: dict[str, Thread] = {}
        self.login: Credential | None = None
        self.login_folder = ""
        self.offline: Emulator | None = None
        self.replay: ReplySource | None = None
        self.recorder: TurnSink | None = None
        self._backends: dict[Connection, TextGenerationBackend] = {}
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

    # -- modes: record, replay, live, login, offline ---------------------------------
    def start_recording(self, path: str | os.PathLike[str], *, append: bool = False) -> str:
        """Write every committed turn to ``path`` from now on; returns the mode it ended."""
        from ..transcript import Recorder

        recorder = Recorder(path, self, append=append)  # checked before the mode changes
        ended = self.go_live()
        self.recorder = recorder
        return ended

    def start_replay(self, path: str | os.PathLike[str]) -> tuple[str, int]:
        """Answer later turns from the transcript at ``path``; returns (ended mode, turns)."""
        from ..transcript import ReplayFile

        source = ReplayFile(path)  # checked whole before the mode changes
        ended = self.go_live()
        self.replay = source
        return ended, sum(len(t.turns) for t in source.threads.values())

    def go_live(self) -> str:
        """End record or replay mode; returns which one ended ('' if neither)."""
        ended = []
        if self.recorder is not None:
            self.recorder.close()
            self.recorder = None
            ended.append("recording")
        if self.replay is not None:
            self.replay = None
            ended.append("replay")
        return " and ".join(ended).capitalize()

    def log_in(self, secret: str, folder: str) -> Credential:
        """Keep a credential typed at ``%chat login`` in memory (never in a file or config)."""
        kind: CredentialKind = "iam_token" if secret.startswith("t1.") else "api_key"
        self.login = Credential(kind, secret, "%chat login")
        if folder:
            self.login_folder = folder
        return self.login

    def start_offline(self) -> Emulator:
        """Serve the built-in emulator in this process and point the session at it."""
        from ..emulator import Emulator

        with self._lock:
            if self.offline is None:
                import secrets

                key = "offline-" + secrets.token_hex(8)
                self.offline = Emulator(api_key=key).start()
                self.login = Credential("api_key", key, "%chat offline")
                self.login_folder = "offline"
            return self.offline

    # -- connection ------------------------------------------------------------------
    def connection(self) -> Connection:
        """The connection the current settings describe (SPEC 2)."""
        if self.offline is None and os.environ.get("YAGPT_OFFLINE") == "1":
            self.start_offline()
        s = self.settings
        return resolve(
            login=self.login,
            login_folder=self.login_folder,
            folder_id=s.folder_id,
            endpoint=self.offline.address if self.offline else s.endpoint,
            insecure=s.insecure or self.offline is not None,
            yc_profile=s.yc_profile,
            data_logging=s.data_logging,
            timeout=s.timeout,
        )

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

    def backend(self) -> TextGenerationBackend:
        """The backend for the current settings (built once per distinct connection)."""
        connection = self.connection()
        with self._lock:
            found = self._backends.get(connection)
            if found is None:
                found = self._backends[connection] = TextGenerationBackend(connection)
            return found

    def close(self) -> None:
        """Stop backends and the emulator; threads are kept for a reload."""
        for backend in self._backends.values():
            backend.close()
        self._backends.clear()
        if self.offline is not None:
            self.offline.stop()
            self.offline = None
            self.login = None
            self.login_folder = ""
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

    def secrets(self) -> tuple[str, ...]:
        """Every credential this kernel knows (login, offline, environment), so text that
        leaves it (a tool's result) can be scrubbed of them."""
        from ..service.connection import CREDENTIAL_ENV

        found = [self.login.value] if self.login is not None else []
        return (*found, *(os.environ[name] for name, _ in CREDENTIAL_ENV if os.environ.get(name)))

    def _turn_images(
        self, thread: Thread, upto: int, specs: Sequence[Any], model: str
    ) -> tuple[Image, ...]:
        """The images a turn sends, each checked; refused at once for a model without sight."""
        if not specs:
            return ()
        if not models.reads_images(model):
            raise UsageProblem(
                f"{model} does not read images; nothing was sent. Ask a model that does "
                f"(-m {' or '.join(models.image_models())}), or leave out --image."
            )
        recorded = {}
        if self.replay is not None:  # the recording's bytes: the file is not read again
            recorded = {i.name: i for i in self.replay.recorded_images(thread.name, upto)}
        found = []
        for spec in specs:
            key = os.fspath(spec) if isinstance(spec, (str, os.PathLike)) else None
            found.append(recorded[key] if key in recorded else image_from(spec))
        return tuple(found)

    @staticmethod
    def _refuse_images_in_context(thread: Thread, start: int, upto: int, model: str) -> None:
        """An earlier turn's images go out again as context: only to a model that reads them."""
        if models.reads_images(model):
            return
        held = next((k for k in range(start, upto) if thread.turns[k].images), None)
        if held is not None:
            raise UsageProblem(
                f"Turn {held} of thread {thread.name!r} sent an image, which goes again with "
                f"this request as context, and {model} does not read images; nothing was sent. "
                f"Ask a model that does (-m {' or '.join(models.image_models())}), or go on "
                "in a new thread (-t NAME)."
            )

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
        with self._lock:
            if thread_name in self._busy:
                raise UsageProblem(
                    f"A reply is already being written on thread {thread_name!r}; "
                    "wait for it or press Stop."
                )
            self._busy.add(thread_name)
        try:
            if at is not None and not 0 <= at < len(thread.turns):
                raise UsageProblem(
                    f"Thread {thread_name!r} has no turn {at}; it may have been reset or undone."
                )
            return self._ask(thread, text, options, window, cell_id, on_text, on_fit, cancel,
                             run, on_tool, schema, at, images)
        finally:
            with self._lock:
                self._busy.discard(thread_name)

    def _ask(
        self,
        thread: Thread,
        text: str,
        options: RequestOptions,
        context_window: int | None,
        cell_id: str | None,
        on_text: Callable[[str], None] | None,
        on_fit: Callable[[Fit], None] | None,
        cancel: threading.Event | None,
        run: ToolRun | None = None,
        on_tool: Callable[[ToolEvent], None] | None = None,
        schema: Schema | None = None,
        at: int | None = None,
        specs: Sequence[Any] = (),
    ) -> Answer:
        slot = thread.slot_for(cell_id) if at is None else at
        upto = len(thread.turns) if slot is None else slot
        images = self._turn_images(thread, upto, specs, options.model)
        # 0 or None: the model's own window (models.MODELS); else the override.
        context_window = models.context_window(options.model, context_window or None)
        alone = thread.request(text, upto=upto, start=upto)
        size = request_bytes(alone)
        if size > MAX_REQUEST_BYTES:
            raise ContextTooLong(
                f"The message is {size / 2**20:.1f} MB; the service accepts at most "
                f"{(MAX_REQUEST_BYTES + 2**16) // 2**20} MB in one request (gRPC's message "
                "size limit). Nothing was sent: shorten it or send a part at a time."
            )
        # Offered tools travel with every request: their schemas take room too.
        offered = sum(message_bound(t.name + t.description + t.parameters) for t in options.tools)
        budget = context_window - (options.max_tokens or 0) - offered
        if budget <= 0:
            raise UsageProblem(
                f"max_tokens ({options.max_tokens}) leaves no room in the "
                f"{context_window}-token window; lower max_tokens or raise context_window."
            )
        replay = self.replay
        backend = None if replay is not None else self.backend()

        # Turns are counted without the offered tools, which the budget already holds.
        counting = replace(options, tools=(), tool_choice=None)

        def count(messages: Sequence[Message]) -> int:
            if backend is None:  # replay never calls the service, not even the tokenizer
                return sum(message_bound(message_text(m)) for m in messages)
            return backend.count(messages, counting)

        recorded = replay.context_start(thread.name, upto) if replay is not None else None
        try:
            if recorded is not None and recorded <= upto:
                fit = Fit(recorded, upto, 0, 0)
            else:
                fit = fit_to_window(thread, text, budget=budget, count=count, upto=upto,
                                    images=images)
        except WindowOverflow as err:
            raise ContextTooLong(
                f"The message is {err.tokens - err.budget} tokens over the room for it "
                f"({err.budget} of the {context_window}-token window after reserving "
                f"max_tokens={options.max_tokens}); shorten it or lower max_tokens."
            ) from None
        self._refuse_images_in_context(thread, fit.start, upto, options.model)
        if on_fit is not None:
            on_fit(fit)
        messages = thread.request(text, upto=upto, start=fit.start, images=images)
        size = request_bytes(messages)
        if size > MAX_REQUEST_BYTES:
            raise ContextTooLong(
                f"The request with its context is {size / 2**20:.1f} MB, over the "
                f"{(MAX_REQUEST_BYTES + 2**16) // 2**20} MB the service accepts; nothing was "
                "sent. Start a new thread (-t NAME) or %chat reset this one."
            )
        system_prompt = thread.system_prompt  # as sent, even if changed while it streams
        started = now_iso()
        if replay is not None:
            reply = replay.answer(thread.name, upto, messages, options)
            if on_text is not None:
                on_text(reply.text)
        else:
            assert backend is not None
            reply = backend.complete(messages, options, on_text=on_text, cancel=cancel)
        rounds = tuple(reply.tool_rounds)
        if rounds and on_tool is not None:  # replayed: show what was recorded, run nothing
            from .tools import replayed

            replayed(rounds, on_tool)
        elif reply.status == "tool_calls":
            if run is None:  # none offered: every call is reported back as not offered
                run = self._tool_run((), None, None, cancel, force=True)
            assert backend is not None and run is not None

            def send(sent: list[Message], opts: RequestOptions) -> Reply:
                return backend.complete(sent, opts, on_text=on_text, cancel=cancel)

            reply, rounds = run.run_rounds(reply, messages, options, send)
        if reply.status == "tool_calls":  # only a replay could bring one this far
            raise ChatError("The model asked for tools but gave no answer; nothing was added.")
        if reply.status == "filtered":
            raise ContentFiltered(
                "The reply was withheld by the content filter; nothing was added to thread "
                f"{thread.name!r}. Rephrase the message and run the cell again."
            )
        parsed = None
        if schema is not None:  # before the commit: a reply that does not fit is not kept
            try:
                parsed = schema.parse(reply.text, truncated=reply.status == "truncated")
            except InvalidReply as err:
                raise InvalidReply(f"{err}; nothing was added to thread {thread.name!r}. Run "
                                   "the cell again, or loosen the schema.") from None
        turn = Turn(
            user=text,
            reply=reply.text,
            cell_id=cell_id,
            model=reply.model_uri,
            settings={
                "model_version": reply.model_version,
                "temperature": options.temperature,
                "max_tokens": options.max_tokens,
                "reasoning_mode": options.reasoning_mode,
            },
            usage=reply.usage,
            status=reply.status,
            started=started,
            finished=now_iso(),
            sha256=thread.request_sha256(text, upto=upto, start=fit.start, system=system_prompt,
                                         images=images),
            system_prompt=system_prompt,
            context_start=fit.start,
            probe=fit.probe,
            tail=fit.tail,
            tool_rounds=rounds,
            schema=schema.name if schema is not None else None,
            value=parsed.data if parsed is not None else None,
            images=images,
        )
        unkept = turn_problem(turn)  # a turn is kept only if every transcript can hold it
        if unkept:
            raise InvalidReply(f"The reply cannot be kept: {unkept}; nothing was added to "
                               f"thread {thread.name!r}.")
        with self._lock:
            index = thread.commit(turn, slot)
        self.notify(ThreadEvent(thread.name, EventKind.COMMIT, index))
        answer = Answer(thread.name, index, turn, fit, context_window, slot is not None, messages,
                        parsed.value if parsed is not None else None)
        if self.recorder is not None:
            try:
                self.recorder.append(thread, index)
            except TranscriptError as err:
                raise RecordingFailed(
                    f"The reply was added to thread {thread.name!r} as turn {index}, but "
                    f"recording it failed: {err} Fix that and run %chat record again.",
                    answer,
                ) from None
        return answer
