"""Threads and turns: plain data, with no IPython, SDK or I/O in it.

A ``Thread`` is one conversation (an optional system prompt and ordered ``Turn``s).
``Thread`` also derives each turn's exact token cost from the counts it has seen, which
``fitting.fit_to_window`` uses to decide which earlier turns a new message can carry.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from . import models
from .images import Image, images_tokens

#: One message as sent: ``{"role", "text"}`` (a user message may add ``"images"``, a tuple
#: of ``Image``, SPEC 15), or a tool turn's ``{"role", "tool_calls"}`` /
#: ``{"role", "tool_results"}`` (SPEC 12), which the backend hands to the SDK as it expects.
Message = dict[str, Any]
#: How a committed turn's reply ended: whole, or cut at max_tokens.
TurnStatus = Literal["final", "truncated"]
#: Tokens of a message list by the model's tokenizer; None: the API has no tokenizer.
Counter = Callable[[Sequence[Message]], "int | None"]

#: Tokens a message may cost beyond one token per UTF-8 byte of its text (role markers).
#: The byte length of a text bounds its token count from above for byte-level tokenizers.
MESSAGE_ALLOWANCE = 8

#: Tokens a request may cost beyond its messages' (a start token, the reply's prompt):
#: used only to bound a request that no usage measured yet, like a thread's first.
REQUEST_ALLOWANCE = 32


def message_bound(text: str) -> int:
    """An upper bound on the tokens one message costs, computed without the tokenizer."""
    return len(text.encode("utf-8")) + MESSAGE_ALLOWANCE


def message_images(message: Message) -> tuple[Image, ...]:
    """The images a message carries (only a user message of a model that reads them)."""
    return tuple(message.get("images", ()))


def user_message(text: str, images: tuple[Image, ...] = ()) -> Message:
    """A user message; its images go with it only when there are some (SPEC 15)."""
    return {"role": "user", "text": text, "images": images} if images else {
        "role": "user", "text": text}


def message_cost_bound(message: Message) -> int:
    """An upper bound on a message's tokens: its text's bytes and 256 for each image."""
    return message_bound(message_text(message)) + images_tokens(message_images(message))


def message_text(message: Message) -> str:
    """A message's text; a tool-call or tool-result message as canonical JSON.

    Hashes, byte bounds and replay diffs read every message through this, so a tool
    turn is hashed and counted whole, and a plain message reads exactly as before.
    """
    if "text" in message:
        return str(message["text"])
    content = message.get("tool_calls", message.get("tool_results", []))
    return json.dumps(content, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


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


#: What happened to one tool call: run, raised, refused by the user or policy, a name
#: that was not offered, or arguments that did not fit the signature.
ToolOutcome = Literal["ran", "raised", "refused", "unknown", "invalid"]


@dataclass(frozen=True)
class ToolCall:
    """One function call the model asked for, and the text that went back as its result."""

    name: str
    arguments: dict[str, Any]
    result: str
    outcome: ToolOutcome = "ran"
    #: The call's id on the OpenAI-compatible API, which its result must name; the Text
    #: Generation API has none ("").
    id: str = ""


@dataclass(frozen=True)
class ToolRound:
    """The calls of one ``TOOL_CALLS`` reply, in the order given, and that request's usage."""

    calls: tuple[ToolCall, ...]
    usage: Usage = field(default_factory=Usage)

    def messages(self) -> list[Message]:
        """The call list and the result list, as the service recorded them (SPEC 12)."""
        ids = [{"id": c.id} if c.id else {} for c in self.calls]
        return [
            {"role": "assistant",
             "tool_calls": [{"name": c.name, "arguments": c.arguments, **i}
                            for c, i in zip(self.calls, ids)]},
            {"role": "user",
             "tool_results": [{"name": c.name, "content": c.result, **i}
                              for c, i in zip(self.calls, ids)]},
        ]


#: (system prompt, model): what a request's framing G = F - f depends on.
Key = tuple[str, str]


@dataclass(frozen=True, init=False)
class Form:
    """An affine form: ``const`` plus ``coef[key]`` times the unknown G of each key.

    A frozen dataclass of plain values, so a turn holding one still copies, compares
    and serialises (``dataclasses.asdict``) as plain data.
    """

    const: int
    coef: tuple[tuple[Key, int], ...]

    def __init__(self, const: int, coef: dict[Key, int] | None = None) -> None:
        object.__setattr__(self, "const", const)
        object.__setattr__(self, "coef", tuple((k, c) for k, c in (coef or {}).items() if c))

    @property
    def coefs(self) -> dict[Key, int]:
        return dict(self.coef)

    def __add__(self, other: Form) -> Form:
        coef = self.coefs
        for key, c in other.coef:
            coef[key] = coef.get(key, 0) + c
        return Form(self.const + other.const, coef)

    def __sub__(self, other: Form) -> Form:
        return self + Form(-other.const, {k: -c for k, c in other.coef})


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
    #: Exact tokens this turn adds to any request that holds it (its two messages with
    #: their framing): a cache derived from exact counts, not part of its identity.
    tokens: int | None = field(default=None, compare=False, repr=False)
    #: (start, tokens): the exact count of the request tokenized while fitting this turn.
    probe: tuple[int, int] | None = field(default=None, compare=False, repr=False)
    #: The count of [previous reply, this message] as a request of their own, if taken.
    tail: int | None = field(default=None, compare=False, repr=False)
    #: Function calls made before the reply (SPEC 12); ``usage`` is the final request's.
    tool_rounds: tuple[ToolRound, ...] = ()
    #: Its cost as an affine form in the framing of its request (see derive_costs).
    form: Form | None = field(default=None, compare=False, repr=False)
    #: The API that answered (``Backend.api``; "" in a transcript from before there were two).
    api: str = ""
    #: The images sent with the user message (SPEC 15); later turns send them again.
    images: tuple[Image, ...] = ()

    def messages(self) -> list[Message]:
        """Every message of the turn, as a later request carries it (and fitting counts it)."""
        messages: list[Message] = [user_message(self.user, self.images)]
        for tool_round in self.tool_rounds:
            messages.extend(tool_round.messages())
        messages.append({"role": "assistant", "text": self.reply})
        return messages

    @property
    def spent(self) -> Usage:
        """All tokens the turn cost: its tool rounds' requests and the final one."""
        total = self.usage
        for tool_round in self.tool_rounds:
            total = total + tool_round.usage
        return total

    @property
    def bound(self) -> int:
        """Exact token count when known, else an upper bound from the byte lengths."""
        if self.tokens is not None:
            return self.tokens
        return sum(message_cost_bound(m) for m in self.messages())

    @property
    def reply_tokens(self) -> int:
        """Tokens of the reply's text as the service generated them (0: unknown)."""
        return max(self.usage.completion_tokens - self.usage.reasoning_tokens, 0)



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
        # Turns[:_derived] have had their exact costs derived (see derive_costs).
        self._derived = 0
        # (system prompt, model) -> G = F - f, exactly / at most: see derive_costs.
        self._g: dict[Key, int] = {}
        self._g_high: dict[Key, int] = {}
        # model -> tokens a request costs beyond its messages (learned, see framing).
        self._framing: dict[str, int] = {}
        # (index, text, image hashes) -> (turns[index], count of [its reply, text]).
        self._tails: dict[tuple[int, str, tuple[str, ...]], tuple[Turn, int]] = {}
        self.tail_calls = 0
        # The model (by name) whose tokens the derived costs are in; None: any turn's.
        self._costs_for: str | None = None

    def count_for(self, model: str | None) -> None:
        """Derive costs in ``model``'s tokens from now on (None: keep the current model).

        A usage or a count is in the tokens of the model that made it, and another
        model's tokenizer (another API's) may cut the same text into more tokens. So a
        thread that switches model forgets every cost it derived and re-learns them from
        the turns that model answered; the others are bounded by their bytes meanwhile.
        """
        name = models.model_name(model) if model else None
        if name is None or name == self._costs_for:
            return
        for turn in self._turns:
            turn.tokens = turn.form = None
        self._derived = 0
        self._g, self._g_high, self._framing = {}, {}, {}
        self._tails.clear()
        self._costs_for = name

    def counted_by(self, turn: Turn) -> bool:
        """Whether ``turn``'s usage is in the tokens the thread's costs are derived in."""
        return (self._costs_for is None or not turn.model
                or models.model_name(turn.model) == self._costs_for)

    @property
    def turns(self) -> Sequence[Turn]:
        """The turns, oldest first (read-only: change them through the methods)."""
        return self._turns

    def derive_costs(self, upto: int) -> None:
        """Set ``Turn.tokens`` of turns[:upto] wherever exact counts determine it.

        Every committed turn brings the exact size of the request it sent (usage), and a
        turn fitted near the edge also the exact size of the request it tokenized
        (``probe``). A request's size is its framing F (with the system prompt) plus its
        messages' costs plus the new user message's; a turn costs its user message and
        its reply, which is its generated tokens plus a framing f the same for every
        reply. So a turn's usage, less the costs of the turns it was sent with, less
        G = F - f, plus its reply's tokens is its exact cost: each turn's cost is an
        affine ``Form`` in the unknown G of each (system prompt, model), fixed at commit
        (while its context is the one it was sent with, before a re-run makes it stale).
        Two exact counts of requests that differ by known turns give an equation:

        - a turn's probe and usage differ by exactly the turns between the two starts;
        - two consecutive turns' usages differ by the previous reply and this user
          message, less the turns left out in between (a difference that cancels G);
        - a cost known both ways (from a difference, and as a form) tells G itself.

        Once G is known every form is an exact cost: the first turn of a thread, the
        first after a new system prompt or a re-run. Until then a form still bounds the
        cost within the bounds of G. Each turn is visited once (flat in the length).
        """
        turns = self.turns
        for index in range(min(self._derived, len(turns)), min(upto, len(turns))):
            self._derive(index)
        self._derived = max(self._derived, min(upto, len(turns)))

    def tail_count(
        self, index: int, text: str, count: Counter, images: tuple[Image, ...] = ()
    ) -> int | None:
        """The count of [turns[index].reply, text] as a request; cached (a re-run asks again).

        ``tail_calls`` says whether this call asked the tokenizer (1) or the cache (0).
        """
        prev = self.turns[index]
        key = (index, text, tuple(image.sha256 for image in images))
        cached = self._tails.get(key)
        if cached is not None and cached[0] is prev:
            self.tail_calls = 0
            return cached[1]
        counted = count([{"role": "assistant", "text": prev.reply}, user_message(text, images)])
        if counted is None:
            return None
        if len(self._tails) >= 64:
            self._tails.clear()
        self._tails[key] = (prev, counted)
        self.tail_calls = 1
        return counted

    def framing(self, model: str) -> int | None:
        """Tokens a request costs beyond its messages, once a tail count has told it."""
        return self._framing.get(model)

    def cost(self, index: int) -> int | None:
        """The exact tokens turns[index] adds to a request, if exact counts tell it."""
        turn = self.turns[index]
        if turn.tokens is None and turn.form is not None:
            low, high = self._range(turn.form)
            if low == high and low > 0:
                turn.tokens = low
        return turn.tokens

    def floor(self, index: int) -> int:
        """The exact cost when known, else a lower bound."""
        exact = self.cost(index)
        if exact is not None:
            return exact
        turn = self.turns[index]
        # The reply's tokens (if this model's), and one for each message at least.
        low = (turn.reply_tokens if self.counted_by(turn) else 0) + 2
        if turn.form is not None:
            low = max(low, self._range(turn.form)[0])
        return low

    def ceiling(self, index: int) -> int:
        """The exact cost when known, else an upper bound (bytes, or its form)."""
        exact = self.cost(index)
        if exact is not None:
            return exact
        turn = self.turns[index]
        high = turn.bound
        if turn.form is not None:
            high = min(high, self._range(turn.form)[1])
        return max(high, self.floor(index))

    def _g_range(self, key: Key) -> tuple[int, int]:
        """G = F - f of a (system prompt, model): exact once learned, else bounds."""
        exact = self._g.get(key)
        if exact is not None:
            return exact, exact
        # F: a start token at least, at most the allowance and the system message's bound;
        # f: a reply's framing, 0 to MESSAGE_ALLOWANCE.
        high = REQUEST_ALLOWANCE + (message_bound(key[0]) if key[0] else 0)
        return 1 - MESSAGE_ALLOWANCE, min(high, self._g_high.get(key, high))

    def _range(self, form: Form) -> tuple[int, int]:
        low = high = form.const
        for key, coef in form.coefs.items():
            g_low, g_high = self._g_range(key)
            low += min(coef * g_low, coef * g_high)
            high += max(coef * g_low, coef * g_high)
        return low, high

    def _form(self, index: int) -> Form | None:
        """The exact cost when known, else its form (None: no usage to read it from)."""
        turn = self.turns[index]
        return Form(turn.tokens) if turn.tokens is not None else turn.form

    def _sum(self, low: int, high: int) -> Form | None:
        """The forms of turns[low:high], summed (None if one has none)."""
        const, coef = 0, dict[Key, int]()
        for turn in self.turns[low:high]:
            if turn.tokens is not None:
                const += turn.tokens
            elif turn.form is None:
                return None
            else:
                const += turn.form.const
                for key, c in turn.form.coefs.items():
                    coef[key] = coef.get(key, 0) + c
        return Form(const, coef)

    def _equate(self, form: Form) -> None:
        """Learn G from ``form == 0`` when it has exactly one G still unknown."""
        const, unknown = form.const, []
        for key, coef in form.coefs.items():
            if coef and key in self._g:
                const += coef * self._g[key]
            elif coef:
                unknown.append((key, coef))
        if len(unknown) == 1 and const % unknown[0][1] == 0:
            self._g[unknown[0][0]] = -const // unknown[0][1]

    def _derive(self, index: int) -> None:
        turn = self.turns[index]
        sent, start = turn.usage.input_tokens, turn.context_start
        if sent <= 0 or start is None or start > index or turn.stale or not self.counted_by(turn):
            return
        key = (turn.system_prompt, turn.model)
        if index - start <= 256 and not turn.usage.reasoning_tokens:
            context = self._sum(start, index)
            if context is not None:
                if not context.coef:  # G is less than F, and F < usage less its context
                    self._g_high[key] = min(self._g_high.get(key, sent), sent - context.const - 1)
                own = Form(sent + turn.reply_tokens, {key: -1}) - context
                turn.form = own if turn.form is None else turn.form
        if turn.probe is not None and turn.probe[0] != start:
            low, high = sorted((turn.probe[0], start))
            between = self._sum(low, high)
            if between is not None:
                self._equate(between - Form(abs(turn.probe[1] - sent)))
            else:  # a turn with no form in between: one such turn is the difference
                costs = [self.cost(i) for i in range(low, high)]
                rest = abs(turn.probe[1] - sent) - sum(c or 0 for c in costs)
                if costs.count(None) == 1 and rest > 0:
                    self.turns[low + costs.index(None)].tokens = rest
        if index > 0:
            self._follow(index)
        if turn.tail is not None and index > 0:
            new = self._new_since_previous(index)
            if new is not None and not new.coef and turn.tail - new.const >= 0:
                self._framing[turn.model] = turn.tail - new.const
        self.cost(index)

    def _new_since_previous(self, index: int) -> Form | None:
        """Tokens of the previous reply and this message (usage difference)."""
        turn, prev = self.turns[index], self.turns[index - 1]
        if (
            prev.stale
            or prev.usage.input_tokens <= 0
            or prev.context_start is None
            or prev.system_prompt != turn.system_prompt
            or prev.usage.reasoning_tokens
            or prev.model != turn.model
        ):
            return None
        start = turn.context_start or 0
        low, high = sorted((prev.context_start, start))
        between = self._sum(low, high)
        if between is None:
            return None
        dropped = between if start >= prev.context_start else Form(0) - between
        return Form(turn.usage.input_tokens - prev.usage.input_tokens) + dropped

    def _follow(self, index: int) -> None:
        """This turn's cost from the previous turn's usage and its own."""
        new = self._new_since_previous(index)
        if new is None:
            return
        turn, prev = self.turns[index], self.turns[index - 1]
        derived = new + Form(turn.reply_tokens - prev.reply_tokens)
        if turn.form is not None:  # the same cost two ways: an equation for G
            self._equate(turn.form - derived)
        if turn.tokens is None and not derived.coef and derived.const > 0:
            turn.tokens = derived.const
        elif turn.tokens is None and turn.form is None:
            turn.form = derived
        if turn.tokens is not None and turn.form is not None:
            self._equate(turn.form - Form(turn.tokens))

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

    def request(
        self, text: str, *, upto: int | None = None, start: int = 0,
        images: tuple[Image, ...] = (),
    ) -> list[Message]:
        """The message list for a new user message (and its images) after turns[start:upto]."""
        upto = len(self.turns) if upto is None else upto
        messages: list[Message] = []
        if self.system_prompt:
            messages.append({"role": "system", "text": self.system_prompt})
        for turn in self.turns[start:upto]:
            messages.extend(turn.messages())
        messages.append(user_message(text, images))
        return messages

    def request_sha256(
        self, text: str, *, upto: int, start: int, system: str | None = None,
        images: tuple[Image, ...] = (),
    ) -> str:
        """``messages_sha256(self.request(text, upto=upto, start=start))``, incrementally."""
        system = self.system_prompt if system is None else system
        return self._hash.of(self, text, start=start, upto=upto, system=system, images=images)

    def commit(self, turn: Turn, at: int | None = None) -> int:
        """Add a completed turn, or replace turn ``at``; later turns become stale."""
        turn.stale = False
        if at is None or at >= len(self._turns):
            self._turns.append(turn)
            self.derive_costs(len(self._turns))  # now, before a re-run makes it stale
            return len(self._turns) - 1
        old, self._turns[at] = self._turns[at], turn
        self._hash = ContextHash()  # its running prefix may hold the replaced turn
        self._derived = min(self._derived, at)
        if at == self._indexed - 1:
            self._last = turn
        if old.cell_id is not None and self._cells.get(old.cell_id) == at:
            del self._cells[old.cell_id]
        if turn.cell_id is not None and at < self._indexed:
            self._cells[turn.cell_id] = at
        self.derive_costs(at + 1)
        for later in self._turns[at + 1 :]:
            later.stale = True
        return at

    def undo(self) -> Turn:
        turn = self._turns.pop()
        self._derived = min(self._derived, len(self._turns))
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
            total = total + turn.spent
        return total

    def copy(self) -> Thread:
        return Thread(self.name, self.system_prompt,
                      [replace(t, settings=dict(t.settings)) for t in self._turns])


def _item(role: str, text: str, images: Sequence[Image] = ()) -> list[Any]:
    """A message as hashed: [role, text], and the images' SHA-256s when it has any.

    A message without images hashes as it always has, so older transcripts still match.
    """
    return [role, text, [image.sha256 for image in images]] if images else [role, text]


def messages_sha256(messages: Sequence[Message]) -> str:
    """SHA-256 of the exact message list sent, so two replies' contexts can be compared."""
    canonical = json.dumps(
        [_item(m["role"], message_text(m), message_images(m)) for m in messages],
        ensure_ascii=False, separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _encoded(role: str, text: str, images: Sequence[Image] = ()) -> bytes:
    """One message exactly as ``messages_sha256`` serialises it inside its JSON list."""
    return json.dumps(_item(role, text, images), ensure_ascii=False,
                      separators=(",", ":")).encode("utf-8")


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
        data = b",".join(_encoded(m["role"], message_text(m), message_images(m))
                         for m in turn.messages())
        self._pairs[index] = (turn, data)
        return data

    def _update(self, data: bytes) -> None:
        self._hasher.update((b"[" if self._empty else b",") + data)
        self._empty = False

    def of(self, thread: Thread, text: str, *, start: int, upto: int, system: str,
           images: Sequence[Image] = ()) -> str:
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
        final.update((b"[" if self._empty else b",") + _encoded("user", text, images) + b"]")
        return final.hexdigest()


def sent_messages(thread: Thread, index: int) -> list[Message]:
    """The messages turn ``index`` was answered with, as far as the thread still shows."""
    turn = thread.turns[index]
    start = turn.context_start or 0
    messages: list[Message] = []
    if turn.system_prompt:
        messages.append({"role": "system", "text": turn.system_prompt})
    for earlier in thread.turns[start:index]:
        messages.extend(earlier.messages())
    messages.append(user_message(turn.user, turn.images))
    return messages
