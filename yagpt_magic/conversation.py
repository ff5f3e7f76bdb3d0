"""Threads and turns: plain data, with no IPython, SDK or I/O in it.

A ``Thread`` is one conversation (an optional system prompt and ordered ``Turn``s).
``fit_to_window`` decides which earlier turns a new message can carry as context,
counting with a caller-supplied tokenizer (the model's own, through the backend).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

Message = dict[str, str]
Counter = Callable[[Sequence[Message]], int]

#: Tokens a message may cost beyond one token per UTF-8 byte of its text (role markers).
#: The byte length of a text bounds its token count from above for byte-level tokenizers.
MESSAGE_ALLOWANCE = 8


def message_bound(text: str) -> int:
    """An upper bound on the tokens one message costs, computed without the tokenizer."""
    return len(text.encode("utf-8")) + MESSAGE_ALLOWANCE


@dataclass(frozen=True)
class Usage:
    """Token usage as the service reports it."""

    input_tokens: int = 0
    completion_tokens: int = 0
    reasoning_tokens: int = 0
    total_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.input_tokens + other.input_tokens,
            self.completion_tokens + other.completion_tokens,
            self.reasoning_tokens + other.reasoning_tokens,
            self.total_tokens + other.total_tokens,
        )


@dataclass
class Turn:
    """One exchange: the user's message, the model's reply, and how it was made."""

    user: str
    reply: str
    cell_id: str | None = None
    model: str = ""
    settings: dict[str, Any] = field(default_factory=dict)
    usage: Usage = field(default_factory=Usage)
    status: str = "final"
    started: str = ""
    finished: str = ""
    sha256: str = ""
    system_prompt: str = ""
    #: Index of the first earlier turn that was sent with this one (None: unknown).
    context_start: int | None = None
    #: A later re-run changed the turns this one was answered with.
    stale: bool = False
    #: Cached tokenizer count of this turn's two messages; not part of its identity.
    tokens: int | None = field(default=None, compare=False, repr=False)

    def messages(self) -> list[Message]:
        return [{"role": "user", "text": self.user}, {"role": "assistant", "text": self.reply}]

    @property
    def bound(self) -> int:
        """Exact token count when known, else an upper bound from the byte lengths."""
        if self.tokens is not None:
            return self.tokens
        return message_bound(self.user) + message_bound(self.reply)


@dataclass
class Thread:
    """One conversation: a system prompt and its turns, in order."""

    name: str = "default"
    system_prompt: str = ""
    turns: list[Turn] = field(default_factory=list)

    def slot_for(self, cell_id: str | None) -> int | None:
        """Index of the turn a cell made earlier, so a re-run replaces it in place."""
        if cell_id is None:
            return None
        for index in range(len(self.turns) - 1, -1, -1):
            if self.turns[index].cell_id == cell_id:
                return index
        return None

    def request(self, text: str, *, upto: int | None = None, start: int = 0) -> list[Message]:
        """The message list for a new user message after turns[start:upto]."""
        upto = len(self.turns) if upto is None else upto
        messages: list[Message] = []
        if self.system_prompt:
            messages.append({"role": "system", "text": self.system_prompt})
        for turn in self.turns[start:upto]:
            messages.extend(turn.messages())
        messages.append({"role": "user", "text": text})
        return messages

    def commit(self, turn: Turn, at: int | None = None) -> int:
        """Add a completed turn, or replace turn ``at``; later turns become stale."""
        turn.stale = False
        if at is None or at >= len(self.turns):
            self.turns.append(turn)
            return len(self.turns) - 1
        self.turns[at] = turn
        for later in self.turns[at + 1 :]:
            later.stale = True
        return at

    def undo(self) -> Turn:
        return self.turns.pop()

    def reset(self) -> None:
        self.turns.clear()

    @property
    def usage(self) -> Usage:
        total = Usage()
        for turn in self.turns:
            total = total + turn.usage
        return total

    def copy(self) -> Thread:
        return replace(self, turns=[replace(t, settings=dict(t.settings)) for t in self.turns])


def messages_sha256(messages: Sequence[Message]) -> str:
    """SHA-256 of the exact message list sent, so two replies' contexts can be compared."""
    canonical = json.dumps(
        [[m["role"], m["text"]] for m in messages], ensure_ascii=False, separators=(",", ":")
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Fit:
    """Which earlier turns go out with a new message, and what it cost to decide."""

    start: int
    upto: int
    tokens: int
    tokenize_calls: int

    @property
    def left_out(self) -> int:
        return self.start


class WindowOverflow(ValueError):
    """The new message (with the system prompt) does not fit the window on its own."""

    def __init__(self, tokens: int, budget: int) -> None:
        super().__init__(f"{tokens} tokens, {tokens - budget} over a budget of {budget}")
        self.tokens = tokens
        self.budget = budget


def _anchor(thread: Thread, upto: int) -> tuple[int, int] | None:
    """Where the previous request started and an upper bound of it plus its reply.

    The service's usage of the turn just before ``upto`` is the exact size of what
    was sent then, so a thread well inside the window needs no tokenizer call.
    """
    if upto == 0:
        return None
    prev = thread.turns[upto - 1]
    if (
        prev.stale
        or prev.context_start is None
        or prev.usage.input_tokens <= 0
        or prev.system_prompt != thread.system_prompt
        or prev.context_start > upto - 1
    ):
        return None
    return prev.context_start, prev.usage.input_tokens + message_bound(prev.reply)


def fit_to_window(
    thread: Thread, text: str, *, budget: int, count: Counter, upto: int | None = None
) -> Fit:
    """Choose the oldest turn to send so the request fits ``budget`` tokens.

    The oldest whole turns are left out first; the system prompt and the new message
    never are. Sizes come from, in order of preference: the previous reply's usage
    (exact), cached per-turn counts (exact), and UTF-8 byte bounds; the tokenizer is
    called at most once per new message in the normal case, and only near the edge.
    Raises ``WindowOverflow`` when the message cannot fit on its own.
    """
    upto = len(thread.turns) if upto is None else upto
    turns = thread.turns
    calls = 0
    new = message_bound(text)
    fixed = new + (message_bound(thread.system_prompt) if thread.system_prompt else 0)

    anchor = _anchor(thread, upto)
    start = anchor[0] if anchor else 0
    # exact_size: anchored size (exact part + two bounded messages), valid while we
    # only drop turns whose exact counts are known.
    exact_size: int | None = anchor[1] + new if anchor else None
    if exact_size is not None and exact_size <= budget:
        return Fit(start, upto, exact_size, calls)

    bound_size = fixed + sum(turns[i].bound for i in range(start, upto))

    def estimate() -> int:
        return bound_size if exact_size is None else min(exact_size, bound_size)

    while estimate() > budget and start < upto:
        turn = turns[start]
        if turn.tokens is None and calls == 0 and exact_size is not None:
            turn.tokens = count(turn.messages())
            calls += 1
        if exact_size is not None:
            exact_size = exact_size - turn.tokens if turn.tokens is not None else None
        bound_size -= turn.bound
        start += 1

    if estimate() <= budget:
        return Fit(start, upto, estimate(), calls)
    # Nothing earlier is left; only the tokenizer can tell whether the message fits.
    alone = count(thread.request(text, upto=upto, start=upto))
    calls += 1
    if alone > budget:
        raise WindowOverflow(alone, budget)
    return Fit(upto, upto, alone, calls)
