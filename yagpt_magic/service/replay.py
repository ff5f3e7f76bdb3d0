"""Replay: a backend that answers from a transcript's threads and never calls the network.

A request is answered only when thread, position and the SHA-256 of the exact
messages all match the recorded turn; anything else is a ``ReplayMiss`` naming the
first difference. ``transcript/replay_file.py`` reads the file into threads; the
answering is here, behind the same ``Backend`` protocol as the live APIs, so the
session never knows which one it has.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Generator, Mapping, Sequence
from typing import Any

from ..core.backend import Backend, Reply, Request, RequestOptions
from ..core.conversation import (
    Message,
    Thread,
    message_images,
    message_text,
    messages_sha256,
    sent_messages,
)
from ..core.errors import ReplayMiss, UsageProblem
from ..core.images import Image

#: ``Backend.api`` of a replayed reply.
API = "replay"


def _short(text: str, at: int) -> str:
    """A quotable piece of ``text`` around position ``at`` (the first difference)."""
    start = max(0, at - 10) if at > 20 else 0
    piece = text[start : start + 40]
    return repr(("…" if start else "") + piece + ("…" if start + 40 < len(text) else ""))


def first_difference(recorded: Sequence[Message], now: Sequence[Message],
                     labels: Sequence[str]) -> str:
    """Which message differs first between a recorded request and this one, and how."""
    for k in range(max(len(recorded), len(now))):
        label = labels[k] if k < len(labels) else f"message {k + 1}"
        if k >= len(recorded):
            extra = _short(message_text(now[k]), 0)
            return f"there is an extra {now[k]['role']} message ({extra})"
        if k >= len(now):
            return f"{label} is missing"
        a, b = recorded[k], now[k]
        if a["role"] != b["role"]:
            return f"{label} is now a {b['role']} message"
        x_text, y_text = message_text(a), message_text(b)
        if x_text != y_text:
            at = next((i for i, (x, y) in enumerate(zip(x_text, y_text)) if x != y),
                      min(len(x_text), len(y_text)))
            return f"{label} differs: recorded {_short(x_text, at)}, now {_short(y_text, at)}"
        x_images, y_images = message_images(a), message_images(b)
        if [i.sha256 for i in x_images] != [i.sha256 for i in y_images]:
            return (f"the images of {label} differ: recorded {_images(x_images)}, "
                    f"now {_images(y_images)}")
    return "the messages differ"


def _images(images: Sequence[Image]) -> str:
    if not images:
        return "none"
    return ", ".join(f"{i.name or 'image'} ({i.sha256[:12]}…)" for i in images)


def _labels(thread: Thread, index: int) -> list[str]:
    turn = thread.turns[index]
    labels = ["the system prompt"] if turn.system_prompt else []
    for k in range(turn.context_start or 0, index):
        labels += [f"the user message of turn {k}"]
        labels += [f"tool calls of turn {k}"] * (2 * len(thread.turns[k].tool_rounds))
        labels += [f"the reply of turn {k}"]
    return [*labels, "the user message"]


class ReplayBackend:
    """Answers each turn from recorded threads, exactly; a ``core.backend.Backend``."""

    api = API

    def __init__(self, threads: Mapping[str, Thread], source: str) -> None:
        self.threads = dict(threads)
        #: Where the threads came from, as messages name it (the transcript's path).
        self.source = source

    def count(self, messages: Sequence[Message], options: RequestOptions) -> int | None:
        """Replay never calls the service, not even its tokenizer."""
        return None

    def context_start(self, thread: str, index: int) -> int | None:
        """Where the recorded turn's context began, so replay sends the same messages."""
        recorded = self.threads.get(thread)
        if recorded is None or index >= len(recorded.turns):
            return None
        return recorded.turns[index].context_start

    def recorded_images(self, thread: str, index: int) -> tuple[Image, ...]:
        """The images the recorded turn sent (SPEC 15): a path it named is not read again."""
        recorded = self.threads.get(thread)
        if recorded is None or index >= len(recorded.turns):
            return ()
        return recorded.turns[index].images

    def complete(
        self,
        request: Request,
        *,
        on_text: Callable[[str], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> Reply:
        """The recorded reply of this exact request, whole; a ``ReplayMiss`` otherwise."""
        reply = self.answer(request.thread, request.index, request.messages)
        if on_text is not None:
            on_text(reply.text)
        return reply

    def answer(self, thread: str, index: int, messages: Sequence[Message]) -> Reply:
        recorded = self.threads.get(thread)
        where = f"turn {index} of {thread!r}"
        if recorded is None:
            known = ", ".join(repr(n) for n in self.threads)
            raise ReplayMiss(f"Replay: {where}: {self.source} has no thread {thread!r} "
                             f"(it holds {known}); nothing was sent. %chat live asks the service.")
        if index >= len(recorded.turns):
            raise ReplayMiss(f"Replay: {where}: {self.source} holds only {len(recorded.turns)} "
                             f"turns of it; nothing was sent. %chat live asks the service.")
        turn = recorded.turns[index]
        if messages_sha256(messages) != turn.sha256:
            if turn.stale:
                diff = "the earlier turns differ from the ones it was answered with"
            else:
                diff = first_difference(sent_messages(recorded, index), messages,
                                        _labels(recorded, index))
            raise ReplayMiss(f"Replay: {where}: {diff}; nothing was sent. Undo the edit, or "
                             "run %chat live to ask the service.")
        return Reply(turn.reply, turn.status, turn.usage, turn.model,
                     turn.settings.get("model_version", ""), tool_rounds=turn.tool_rounds,
                     api=turn.api)

    async def complete_async(self, messages: Sequence[Message], options: RequestOptions) -> Reply:
        """Rows of ``--map`` are not in a transcript: refused before any is sent."""
        raise self.refusal()

    def drive(
        self,
        produce: Callable[[Callable[[Any], None]], Any],
        *,
        cancel: threading.Event | None = None,
    ) -> Generator[Any, None, None]:
        """Bulk work runs on a live service's loop; replay has none."""
        raise self.refusal()

    @staticmethod
    def refusal() -> UsageProblem:
        """Why bulk work (``--map``, ``--batch``, ``%chat batch``) does not run here."""
        return UsageProblem("--map, --batch and %chat batch do not run in replay mode; "
                            "%chat live first.")

    def close(self) -> None:
        """Nothing to release: replay holds no connection."""


class ReplayBackends:
    """The ``Backends`` of a session in replay mode: one replay answers every model."""

    def __init__(self, threads: Mapping[str, Thread], source: str) -> None:
        self.replay = ReplayBackend(threads, source)

    @property
    def threads(self) -> dict[str, Thread]:
        return self.replay.threads

    def backend(self, options: RequestOptions) -> Backend:
        return self.replay

    def close(self) -> None:
        self.replay.close()
