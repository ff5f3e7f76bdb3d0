"""The seam between the session and whatever produces a reply, in neutral types.

Core says what it needs (``Backend``, ``Backends``) and ``service/`` provides it: the
Text Generation API over gRPC, the OpenAI-compatible API over HTTP, replay from a
transcript. The session is handed a ``Backends`` and never asks which one it has, the
way an httpx client never asks which transport it was given.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from .conversation import Message, Usage
from .errors import ConfigProblem
from .images import Image
from .settings import default

#: How a reply ended; a filtered one is never committed; ``tool_calls`` asks for calls.
ReplyStatus = Literal["final", "truncated", "filtered", "tool_calls"]


@dataclass(frozen=True)
class ToolDefinition:
    """A function tool as offered to the model; the schema is JSON text, so it hashes."""

    name: str
    description: str
    parameters: str


@dataclass(frozen=True)
class RequestOptions:
    """The per-turn model settings, after config and per-cell flags are merged."""

    model: str = default("model")
    model_version: str = default("model_version")
    temperature: float | None = default("temperature")
    max_tokens: int | None = default("max_tokens")
    reasoning_mode: str | None = None
    stream: bool = True
    #: Function tools offered with the request (SPEC 12).
    tools: tuple[ToolDefinition, ...] = ()
    #: ``"none"`` makes the model answer in text (the last allowed tool round).
    tool_choice: str | None = None
    #: ``"json"`` (any JSON object) or a JSON Schema as JSON text (``structured.Schema``).
    response_format: str | None = None


@dataclass(frozen=True)
class Reply:
    """A finished answer from the service."""

    text: str
    status: ReplyStatus
    usage: Usage
    model_uri: str
    model_version: str
    #: (name, arguments) of each call a ``tool_calls`` reply asks for, in the order given.
    tool_calls: tuple[tuple[str, dict[str, Any]], ...] = ()
    #: A replayed tool turn's recorded rounds (``conversation.ToolRound``): never re-run.
    tool_rounds: tuple[Any, ...] = ()
    #: Which API answered (``Backend.api``); the turn's metadata records it.
    api: str = ""
    #: The id of each call in ``tool_calls``, in the same order, where the API gives one
    #: (the OpenAI-compatible API's; its results must name them). Empty on gRPC.
    call_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class Request:
    """One request to a backend: what is sent, and where its turn goes.

    ``thread`` and ``index`` say which turn this is; replay matches on them, a live
    backend ignores them.
    """

    messages: tuple[Message, ...]
    options: RequestOptions
    thread: str = ""
    index: int = 0


class Backend(Protocol):
    """One way a reply is produced; every failure it raises is a ``ChatError``."""

    #: ``"text-generation"`` (gRPC), ``"openai-compatible"`` (HTTP), ``"replay"``.
    api: str

    def count(self, messages: Sequence[Message], options: RequestOptions) -> int | None:
        """Tokens of a message list by the model's tokenizer; None: this API cannot count."""
        ...

    def complete(
        self,
        request: Request,
        *,
        on_text: Callable[[str], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> Reply:
        """One reply, streamed to ``on_text`` when ``options.stream``; ``cancel`` stops it."""
        ...

    async def complete_async(self, messages: Sequence[Message], options: RequestOptions) -> Reply:
        """One unstreamed reply, awaited on this backend's own loop (inside ``drive``)."""
        ...

    def drive(
        self,
        produce: Callable[[Callable[[Any], None]], Any],
        *,
        cancel: threading.Event | None = None,
    ) -> Generator[Any, None, None]:
        """Run ``produce(put)`` on the backend's loop and yield what it puts, interruptibly.

        A KeyboardInterrupt or ``cancel`` in the caller's thread, or closing the
        generator, cancels the coroutine and everything it awaits.
        """
        ...

    def context_start(self, thread: str, index: int) -> int | None:
        """Where a recorded turn's context started (replay); a live backend says None."""
        ...

    def recorded_images(self, thread: str, index: int) -> Sequence[Image]:
        """The images a recorded turn sent (replay), so their files are not read again;
        a live backend has none."""
        ...

    def close(self) -> None:
        """Release the backend's loop and connections."""
        ...


class Backends(Protocol):
    """What the session is handed: the backend that serves each request."""

    def backend(self, options: RequestOptions) -> Backend:
        """The backend that serves this model (and, live, this connection)."""
        ...

    def close(self) -> None:
        """Close every backend handed out."""
        ...


class NoBackends:
    """The backends of a bare ``ChatSession()``: it keeps threads, and has nothing to ask.

    The extension hands its session the live backends (``service/live.py``); a session
    built for threads alone (transcripts, a recorder, a test) says so when asked.
    """

    def backend(self, options: RequestOptions) -> Backend:
        raise ConfigProblem(
            "This ChatSession was made without backends, so it cannot ask a model: use the "
            "extension's session (yagpt_magic.current_session()), or make it with "
            "ChatSession(settings, LiveBackends(settings)) from yagpt_magic.service.live."
        )

    def close(self) -> None:
        """Nothing to close."""
