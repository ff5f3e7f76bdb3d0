"""Threads and turns: plain data, with no IPython, SDK or I/O in it.

A ``Thread`` is one conversation (an optional system prompt and ordered ``Turn``s).
``fit_to_window`` decides which earlier turns a new message can carry as context,
counting with a caller-supplied tokenizer (the model's own, through the backend).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

Message = dict[str, str]
#: How a committed turn's reply ended: whole, or cut at max_tokens.
TurnStatus = Literal["final", "truncated"]
Counter = Callable[[Sequence[Message]], int]

#: Tokens a message may cost beyond one token per UTF-8 byte of its text (role markers).
#: The byte length of a text bounds its token count from above for byte-level tokenizers.
MESSAGE_ALLOWANCE = 8


#: Tokens a request may cost beyond its messages' own (a BOS, a template). A turn or
#: block counted as a request of its own includes it once, so subtracting that count
#: from a larger request keeps this much back to never undercount what remains.
REQUEST_ALLOWANCE = 8


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
    status: TurnStatus = "final"
    started: str = ""
    finished: str = ""
    sha256: str = ""
    system_prompt: str = ""
    #: Index of the first earlier turn that was sent with this one (None: unknown).
    context_start: int | None = None
    #: A later re-run changed the turns this one was answered with.
    stale: bool = False
    #: Structured output (SPEC 11): the schema's name (``json`` for --json) and the
    #: validated value as JSON data; None for a prose reply.
    schema: str | None = None
    value: Any = None
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


@dataclass(init=False)
class Thread:
    """One conversation: a system prompt and its turns, in order.

    The turns change only through the methods below (commit, undo, reset), so the
    caches that keep a long thread cheap (a cell-id index, a running hash, counts of
    blocks of turns) stay in step with them; ``turns`` is a read-only view.
    """

    name: str
    system_prompt: str
    _turns: list[Turn]

    def __init__(
        self, name: str = "default", system_prompt: str = "", turns: Iterable[Turn] = ()
    ) -> None:
        self.name = name
        self.system_prompt = system_prompt
        self._turns = list(turns)
        self._forget()

    def _forget(self) -> None:
        """Drop every cache: all of them are derived from the turns and rebuilt on use."""
        # cell id -> turn index, covering turns[:_indexed] and checked before each use,
        # so finding a cell's turn costs the same at any length.
        self._cells: dict[str, int] = {}
        self._indexed = 0
        self._last: Turn | None = None
        self._hash = ContextHash()
        # Tokenizer counts of blocks of turns: (start, end) -> (first turn, last turn, count).
        self._blocks: dict[tuple[int, int], tuple[Turn, Turn, int]] = {}

    @property
    def turns(self) -> Sequence[Turn]:
        """The turns, oldest first (read-only: change them through the methods)."""
        return self._turns

    def block_tokens(self, start: int, end: int, count: Counter) -> tuple[int, bool]:
        """Tokens of turns[start:end] as one request, and whether the tokenizer was asked."""
        first, last = self._turns[start], self._turns[end - 1]
        cached = self._blocks.get((start, end))
        if cached is not None and cached[0] is first and cached[1] is last:
            return cached[2], False
        measured = count([m for turn in self.turns[start:end] for m in turn.messages()])
        if end == start + 1:
            first.tokens = measured
        if len(self._blocks) >= 64:
            self._blocks.clear()
        self._blocks[(start, end)] = (first, last, measured)
        return measured, True

    def slot_for(self, cell_id: str | None) -> int | None:
        """Index of the turn a cell made earlier, so a re-run replaces it in place."""
        if cell_id is None:
            return None
        turns = self._turns
        in_step = 0 < self._indexed <= len(turns) and turns[self._indexed - 1] is self._last
        if not in_step:
            self._cells.clear()
            self._indexed = 0
        for index in range(self._indexed, len(turns)):
            cell = turns[index].cell_id
            if cell is not None:
                self._cells[cell] = index
        self._indexed = len(turns)
        self._last = turns[-1] if turns else None
        return self._cells.get(cell_id)

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

    def request_sha256(
        self, text: str, *, upto: int, start: int, system: str | None = None
    ) -> str:
        """``messages_sha256(self.request(text, upto=upto, start=start))``, incrementally."""
        system = self.system_prompt if system is None else system
        return self._hash.of(self, text, start=start, upto=upto, system=system)

    def commit(self, turn: Turn, at: int | None = None) -> int:
        """Add a completed turn, or replace turn ``at``; later turns become stale."""
        turn.stale = False
        if at is None or at >= len(self._turns):
            self._turns.append(turn)
            return len(self._turns) - 1
        old, self._turns[at] = self._turns[at], turn
        self._hash = ContextHash()  # its running prefix may hold the replaced turn
        if at == self._indexed - 1:
            self._last = turn
        if old.cell_id is not None and self._cells.get(old.cell_id) == at:
            del self._cells[old.cell_id]
        if turn.cell_id is not None and at < self._indexed:
            self._cells[turn.cell_id] = at
        for later in self._turns[at + 1 :]:
            later.stale = True
        return at

    def undo(self) -> Turn:
        turn = self._turns.pop()
        if self._indexed > len(self._turns):
            self._indexed = len(self._turns)
            self._last = self._turns[-1] if self._turns else None
            if turn.cell_id is not None and self._cells.get(turn.cell_id) == self._indexed:
                del self._cells[turn.cell_id]
        return turn

    def reset(self) -> None:
        self._turns.clear()
        self._forget()

    def mark_stale(self, index: int) -> None:
        """Flag turn ``index``: a later re-run changed the turns it was answered with."""
        self._turns[index].stale = True

    @property
    def usage(self) -> Usage:
        total = Usage()
        for turn in self.turns:
            total = total + turn.usage
        return total

    def copy(self) -> Thread:
        return Thread(self.name, self.system_prompt,
                      [replace(t, settings=dict(t.settings)) for t in self._turns])


def messages_sha256(messages: Sequence[Message]) -> str:
    """SHA-256 of the exact message list sent, so two replies' contexts can be compared."""
    canonical = json.dumps(
        [[m["role"], m["text"]] for m in messages], ensure_ascii=False, separators=(",", ":")
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _encoded(role: str, text: str) -> bytes:
    """One message exactly as ``messages_sha256`` serialises it inside its JSON list."""
    return json.dumps([role, text], ensure_ascii=False, separators=(",", ":")).encode("utf-8")


class ContextHash:
    """``messages_sha256`` of requests that share a prefix, each in time for what is new.

    Successive turns of a thread send the same system prompt and earlier turns plus a
    little more, so one running hash per (system prompt, first turn) is extended and
    copied: a request near a full 32k window costs microseconds, not a re-hash of it.
    """

    def __init__(self) -> None:
        self._key: tuple[str, int] | None = None
        self._hasher: Any = None
        self._upto = 0
        self._last: Turn | None = None
        self._empty = True
        # Serialised turns of the current window, so a moved start re-hashes bytes only.
        self._pairs: dict[int, tuple[Turn, bytes]] = {}

    def _pair(self, index: int, turn: Turn) -> bytes:
        cached = self._pairs.get(index)
        if cached is not None and cached[0] is turn:
            return cached[1]
        data = _encoded("user", turn.user) + b"," + _encoded("assistant", turn.reply)
        self._pairs[index] = (turn, data)
        return data

    def _update(self, data: bytes) -> None:
        self._hasher.update((b"[" if self._empty else b",") + data)
        self._empty = False

    def of(self, thread: Thread, text: str, *, start: int, upto: int, system: str) -> str:
        """The hash of [system?, turns[start:upto], user ``text``], as ``Thread.request``."""
        turns = thread.turns
        in_step = (
            self._key == (system, start)
            and start <= self._upto <= upto
            and (self._upto == start or turns[self._upto - 1] is self._last)
        )
        if not in_step:
            self._key, self._hasher = (system, start), hashlib.sha256()
            self._upto, self._last, self._empty = start, None, True
            for index in [i for i in self._pairs if i < start]:
                del self._pairs[index]
            if system:
                self._update(_encoded("system", system))
        for index in range(self._upto, upto):
            self._last = turns[index]
            self._update(self._pair(index, self._last))
        self._upto = upto
        final = self._hasher.copy()
        final.update((b"[" if self._empty else b",") + _encoded("user", text) + b"]")
        return final.hexdigest()


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


#: When the turns about to be left out have no cached count, one tokenizer call
#: measures a block of them whose byte bound is this many times the excess, so one
#: call almost always frees enough room (bytes run 3-4x tokens in practice).
BLOCK_MARGIN = 4


def fit_to_window(
    thread: Thread, text: str, *, budget: int, count: Counter, upto: int | None = None
) -> Fit:
    """Choose the oldest turn to send so the request fits ``budget`` tokens.

    The oldest whole turns are left out first; the system prompt and the new message
    never are. Sizes come from, in order of preference: the previous reply's usage
    (the exact size of what was sent then), cached counts of turns, one tokenizer
    call for a block of the oldest turns, and UTF-8 byte bounds. A thread well inside
    the window needs no tokenizer call, and near the edge one call per new message is
    enough; the work does not grow with the thread's length.
    Raises ``WindowOverflow`` when the message cannot fit on its own.
    """
    upto = len(thread.turns) if upto is None else upto
    turns = thread.turns
    calls = 0
    new = message_bound(text)

    anchor = _anchor(thread, upto)
    start = anchor[0] if anchor else 0
    if anchor is not None:
        # Upper bound of [system, turns[start:upto], new]: exact up to two messages.
        size = anchor[1] + new
        while size > budget and start < upto and turns[start].tokens is not None:
            size -= turns[start].tokens - REQUEST_ALLOWANCE  # type: ignore[operator]
            start += 1
        if size > budget and start < upto:
            end, covered = start, 0
            while end < upto and covered < BLOCK_MARGIN * (size - budget + REQUEST_ALLOWANCE):
                covered += turns[end].bound
                end += 1
            measured, asked = thread.block_tokens(start, end, count)
            calls += asked
            size -= measured - REQUEST_ALLOWANCE
            start = end
        if size <= budget:
            return Fit(start, upto, size, calls)

    # No exact anchor (first turn after a load, an edit or a new system prompt), or the
    # block was not enough: fall back to byte bounds, which never undercount.
    fixed = new + (message_bound(thread.system_prompt) if thread.system_prompt else 0)
    bound = fixed + sum(turns[i].bound for i in range(start, upto))
    while bound > budget and start < upto:
        bound -= turns[start].bound
        start += 1
    if bound <= budget:
        return Fit(start, upto, bound, calls)
    # Nothing earlier is left; only the tokenizer can tell whether the message fits.
    alone = count(thread.request(text, upto=upto, start=upto))
    calls += 1
    if alone > budget:
        raise WindowOverflow(alone, budget)
    return Fit(upto, upto, alone, calls)
