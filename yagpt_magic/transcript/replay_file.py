"""``%chat replay``: answer turns from a transcript, exactly and offline.

A request is answered only when thread, position and the SHA-256 of the exact
messages all match the recorded turn; anything else is a ``ReplayMiss`` naming the
first difference, and never reaches the service.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from ..core.backend import Reply, RequestOptions
from ..core.conversation import Message, Thread, message_images, message_text, messages_sha256
from ..core.errors import ReplayMiss
from ..core.images import Image
from .turn_records import sent_messages


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


class ReplayFile:
    """``%chat replay``: answers each turn from a transcript, exactly, with no network.

    A request is answered only when thread, position and the SHA-256 of the exact
    messages all match the recorded turn; anything else is a ``ReplayMiss`` that
    names the first difference.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path).expanduser()
        from . import load_threads

        self.threads = load_threads(self.path)

    def context_start(self, thread: str, index: int) -> int | None:
        recorded = self.threads.get(thread)
        if recorded is None or index >= len(recorded.turns):
            return None
        return recorded.turns[index].context_start

    def recorded_images(self, thread: str, index: int) -> tuple[Image, ...]:
        """The images turn ``index`` sent, from the transcript (SPEC 15)."""
        recorded = self.threads.get(thread)
        if recorded is None or index >= len(recorded.turns):
            return ()
        return recorded.turns[index].images

    def answer(self, thread: str, index: int, messages: Sequence[Message],
               options: RequestOptions) -> Reply:
        recorded = self.threads.get(thread)
        where = f"turn {index} of {thread!r}"
        if recorded is None:
            known = ", ".join(repr(n) for n in self.threads)
            raise ReplayMiss(f"Replay: {where}: {self.path} has no thread {thread!r} "
                             f"(it holds {known}); nothing was sent. %chat live asks the service.")
        if index >= len(recorded.turns):
            raise ReplayMiss(f"Replay: {where}: {self.path} holds only {len(recorded.turns)} "
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
                     turn.settings.get("model_version", ""), tool_rounds=turn.tool_rounds)
