"""Fitting a thread into a model's context window, exactly (SPEC section 4).

``fit_to_window`` decides which earlier turns a new message can carry as context,
counting with a caller-supplied tokenizer (the model's own, through the backend) at
most once, from the exact costs and bounds ``Thread`` derives from earlier counts.
"""

from __future__ import annotations

from dataclasses import dataclass

from .conversation import MESSAGE_ALLOWANCE, REQUEST_ALLOWANCE, Counter, Thread, message_bound
from .images import Image, images_tokens


@dataclass(frozen=True)
class Fit:
    """Which earlier turns go out with a new message, and what it cost to decide."""

    start: int
    upto: int
    #: The request's size: exact, or an upper bound when no tokenizer call was needed.
    tokens: int
    tokenize_calls: int
    #: (start, tokens) of the request the tokenizer counted, for ``Turn.probe``.
    probe: tuple[int, int] | None = None
    #: The count of [previous reply, new message] as a request, if that was counted.
    tail: int | None = None
    #: Near the edge, ``tokens`` and the choice of ``start`` rest on upper bounds alone:
    #: the API has no tokenizer (the output says so).
    bounded: bool = False

    @property
    def left_out(self) -> int:
        return self.start


class WindowOverflow(ValueError):
    """The new message (with the system prompt) does not fit the window on its own."""

    def __init__(self, tokens: int, budget: int, *, bound: bool = False) -> None:
        super().__init__(f"{tokens} tokens, {tokens - budget} over a budget of {budget}")
        self.tokens = tokens
        self.budget = budget
        #: ``tokens`` is an upper bound (the message's UTF-8 length), not a count.
        self.bound = bound


def _anchor(thread: Thread, upto: int) -> tuple[int, int] | None:
    """Where the previous request started and its exact size (the service's usage).

    Valid only if that request is still what the thread holds before ``upto``: the
    same system prompt, and no earlier turn replaced since (``stale``).
    """
    if upto == 0:
        return None
    prev = thread.turns[upto - 1]
    if (
        prev.stale
        or not thread.counted_by(prev)
        or prev.context_start is None
        or prev.usage.input_tokens <= 0
        or prev.system_prompt != thread.system_prompt
        or prev.context_start > upto - 1
    ):
        return None
    return prev.context_start, prev.usage.input_tokens


def _user_estimate(thread: Thread, upto: int, text: str) -> float:
    """About what the new message and the previous reply's framing will cost.

    Replies give the tokens per byte of plain text (their generated tokens); the newest
    turn of known cost gives what a user message and a reply frame cost beyond that.
    """
    window = thread.turns[max(0, upto - 8) : upto]
    text_bytes = len(text.encode("utf-8"))
    reply_bytes = sum(len(t.reply.encode("utf-8")) for t in window if t.reply_tokens)
    reply_tokens = sum(t.reply_tokens for t in window)
    if reply_tokens < 64:  # too few replies to tell: a request sent alone tells too
        for index, turn in enumerate(window, start=max(0, upto - 8)):
            if turn.context_start == index and turn.usage.input_tokens > REQUEST_ALLOWANCE:
                reply_tokens += turn.usage.input_tokens - REQUEST_ALLOWANCE // 2
                reply_bytes += len((turn.system_prompt + turn.user).encode("utf-8"))
    if not reply_bytes or not reply_tokens:
        return float(message_bound(text))
    per_byte = reply_tokens / reply_bytes
    known = [t for t in window if t.tokens is not None]
    if not known:
        return per_byte * text_bytes + MESSAGE_ALLOWANCE
    last = known[-1]
    framing = (last.tokens or 0) - last.reply_tokens - per_byte * len(last.user.encode("utf-8"))
    return max(per_byte * text_bytes + framing, 1.0)


#: How far off (a share of it) the estimate of a new message's tokens may be.
ERROR = 0.2


def _candidate(
    thread: Thread, text: str, budget: int, upto: int, anchor: tuple[int, int] | None,
    images: tuple[Image, ...] = (),
) -> int:
    """The start whose request the one tokenizer call should count.

    Any start gives an exact fit when the turns between it and the true edge have
    exact costs; the estimate only keeps that walk short. A turn whose cost is unknown
    is put where one exact count decides it (below); the estimate of the new message
    may be ``ERROR`` of itself off.
    """
    turns = thread.turns
    user = _user_estimate(thread, upto, text) + images_tokens(images)
    if anchor is not None:
        # The previous reply's generated tokens, and the new message with one framing.
        start = anchor[0]
        size = anchor[1] + turns[upto - 1].reply_tokens + user
    else:
        start = upto
        size = REQUEST_ALLOWANCE + user
        size += message_bound(thread.system_prompt) if thread.system_prompt else 0

    def cost(index: int) -> float:
        exact = thread.cost(index)
        if exact is not None:
            return float(exact)
        return 0.5 * (thread.floor(index) + thread.ceiling(index))

    while size > budget and start < upto:
        size -= cost(start)
        start += 1
    if start == upto and size > 0.9 * budget:
        return upto  # the message may not fit even alone: count it alone, exactly
    while start > 0 and size + cost(start - 1) <= budget:
        size += cost(start - 1)
        start -= 1
    # A turn of unknown cost at the edge is measured, not guessed: the one nearest the
    # estimated edge (the oldest from the turn before it on), so the walk from the count
    # to the edge crosses no turn of unknown cost, and the counted request holds it when
    # that is exact either way: if it fits, it is kept; if not, the count less its floor
    # still fits. Without it, the count is exact only if it does not fit even at its
    # floor, or fits at its ceiling and no older turn could (then sending it, with the
    # probe, teaches its cost: a form's G, and every cost that depends on it).
    edge = range(max(start - 1, 0), upto)
    unknown = next((i for i in edge if thread.cost(i) is None), -1)
    if unknown < 0:
        return start
    if unknown < start:
        with_it = size + cost(unknown)
    else:
        with_it = size - sum(cost(i) for i in range(start, unknown))
    low, high = thread.floor(unknown), thread.ceiling(unknown)
    err = 2 + ERROR * user  # what the estimate of the new message may be off by
    # The request without it: the estimate less its cost, somewhere within its bounds.
    least, most = (with_it - high, with_it - low) if unknown >= start else (size, size)
    older = thread.floor(unknown - 1) if unknown > 0 else None
    if most + high + err <= budget and (older is None or least + low + older > budget + err):
        return unknown + 1  # it fits even at its ceiling and is the last that does: learn it
    if with_it + err - low <= budget:
        # Counted with it: it fits, or it is left out and the rest then fits for certain.
        return unknown
    return unknown + 1  # counted without it: it does not fit even at its floor


def fit_to_window(
    thread: Thread, text: str, *, budget: int, count: Counter | None, upto: int | None = None,
    model: str | None = None, images: tuple[Image, ...] = (),
) -> Fit:
    """Choose the oldest turn to send so the request fits ``budget`` tokens, exactly.

    The oldest whole turns are left out first; the system prompt and the new message
    never are. Raises ``WindowOverflow`` when the message cannot fit on its own.

    1. Plainly inside: the previous request's exact size (its usage) plus upper bounds
       of the previous reply and the new message fits, and the turn before it provably
       does not (it would add at least its floor): no tokenizer call.
    2. Otherwise one call counts a candidate request exactly, framing included, and the
       walk goes from it to the edge: drop the oldest turn while over, subtracting its
       floor; add the next older turn back while it fits, adding its ceiling. Once the
       request framing is known (``Thread.framing``), or when the request is large, the
       call counts only the previous reply and the new message: the previous request's
       usage plus that count less the framing is the same exact size, without the
       tokenizer returning every token of a full window (``_tail_will_do``). The first
       such count, framing not yet known, takes it as zero: conservative by the framing
       (~10 tokens), a negligible share of a request that large.

    Why it fits: ``size`` starts exact and only ever subtracts a lower bound or adds an
    upper bound of a turn's cost, so it never undercounts, and it ends <= budget.
    Why no turn that fits is left out: a turn's floor and ceiling are its exact cost
    once exact counts have determined it (``Thread.derive_costs``: every cost is an
    affine form in the framing G of its request's system prompt, and one probe or
    usage difference that involves G tells it, for every turn at once). While the walk
    crosses only such turns, ``size`` stays exact; it stops either after dropping turn
    s-1 because the request holding it was over budget, or before adding turn s-1
    because the request would be: both exact, so turn s-1 does not fit. The candidate
    is chosen so the walk crosses no turn of unknown cost (``_candidate``): the one at
    the edge is counted inside the request when that decides it either way (it fits
    and is kept exactly; or it is left out and the count less its floor still fits),
    outside when it does not fit even at its floor, or fits at its ceiling with no
    older turn that could (then sending it teaches its cost, and G). The work is
    bounded by the turns in the window, not the thread.

    What one count cannot tell: a thread's first turn (or the first under a new system
    prompt) costs its usage less G, and G is in every request that leaves it out, so
    until a probe or usage has told G the request without it has two unknowns (G and
    the new message), and one count fixes only one. Counted with it, whether it fits is
    exact; if it does not, the rest is certain only when the count less its floor fits.
    Counted without it, it is certain only outside its bounds. Between those (a band as
    wide as G's bounds, near the edge) the estimate decides, and a turn may be left out
    that would have fitted; sending with a probe at another start then tells G, and
    every cost that depends on it. The message alone is counted a second time only if
    the one count left it open whether the message fits at all: a turn of unknown cost
    is counted inside only when, by the estimate and its margin (``ERROR``), the rest
    fits without it whatever it costs, and a large first tail count is not taken when
    the message alone is the question (``_tail_will_do``).
    """
    upto = len(thread.turns) if upto is None else upto
    thread.count_for(model)
    thread.derive_costs(upto)
    new = message_bound(text) + images_tokens(images)  # 256 an image (SPEC 15)

    anchor = _anchor(thread, upto)
    plainly = _plainly_inside(thread, upto, anchor, new, budget)
    if plainly is not None:
        return plainly
    if count is None:
        return fit_by_bounds(thread, text, budget=budget, upto=upto, anchor=anchor,
                             images=images)
    probe = _candidate(thread, text, budget, upto, anchor, images)
    measured_at = _measure(thread, text, upto, anchor, probe, count, images)
    if measured_at is None:  # the backend's API has no tokenizer after all
        return fit_by_bounds(thread, text, budget=budget, upto=upto, anchor=anchor,
                             images=images)
    return _walk_from_count(thread, text, budget, upto, count, images, new, measured_at)


def _plainly_inside(
    thread: Thread, upto: int, anchor: tuple[int, int] | None, new: int, budget: int,
) -> Fit | None:
    """Case 1 of ``fit_to_window``: the request fits by exact sizes and upper bounds, and
    no older turn could join it, so no tokenizer call is needed; else None."""
    turns = thread.turns
    if anchor is not None:
        start, sent = anchor
        prev = turns[upto - 1]
        high = sent + message_bound(prev.reply) + new
        # The older turn cannot fit: it would add at least its floor to at least this.
        shut = start == 0 or sent + prev.reply_tokens + 1 + thread.floor(start - 1) > budget
        return Fit(start, upto, high, 0) if high <= budget and shut else None
    # No exact size to start from (a first turn, a new system prompt): bytes bound it.
    high = REQUEST_ALLOWANCE + new
    high += message_bound(thread.system_prompt) if thread.system_prompt else 0
    for turn in turns[:upto]:
        high += turn.bound
        if high > budget:
            break
    return Fit(0, upto, high, 0) if high <= budget else None


def _walk_from_count(
    thread: Thread, text: str, budget: int, upto: int, count: Counter,
    images: tuple[Image, ...], new: int, measured_at: tuple[int, int, bool, int, int | None],
) -> Fit:
    """Case 2 of ``fit_to_window``: from the one exact count, drop the oldest turn at its
    floor while over, then add older ones back at their ceilings while they fit."""
    probe, measured, exact_probe, calls_made, tail = measured_at
    calls, start, size, exact = calls_made, probe, measured, exact_probe
    while size > budget and start < upto:
        exact = exact and thread.cost(start) is not None
        size -= thread.floor(start)
        start += 1
    if size > budget and not exact:
        # Only bounds said so: bytes may tell the message fits alone; else it is counted
        # alone (and then refused, so no second call precedes a completion).
        alone = REQUEST_ALLOWANCE + new
        alone += message_bound(thread.system_prompt) if thread.system_prompt else 0
        if alone <= budget:
            return Fit(upto, upto, alone, calls)
        size = count(thread.request(text, upto=upto, start=upto, images=images)) or size
        calls += 1
    if size > budget:
        raise WindowOverflow(size, budget)
    while start > 0 and size + thread.ceiling(start - 1) <= budget:
        size += thread.ceiling(start - 1)
        start -= 1
    return Fit(start, upto, size, calls, (probe, measured) if exact_probe else None, tail)


def _measure(
    thread: Thread, text: str, upto: int, anchor: tuple[int, int] | None, probe: int,
    count: Counter, images: tuple[Image, ...] = (),
) -> tuple[int, int, bool, int, int | None] | None:
    """The one count: (start, its request's size, exact?, calls, tail count); None when
    ``count`` says the API cannot count.

    Only what is new since the previous request, when that will do (its reply and this
    message): their count as a request of their own, less the request framing, added
    to the previous request's exact size is this one's (framing once).
    """
    if anchor is not None and _tail_will_do(thread, text, upto, anchor[0], probe):
        prev = thread.turns[upto - 1]
        tail = thread.tail_count(upto - 1, text, count, images)
        if tail is None:
            return None
        framing = thread.framing(prev.model)
        return (anchor[0], anchor[1] + tail - (framing or 0), framing is not None,
                thread.tail_calls, tail)
    measured = count(thread.request(text, upto=upto, start=probe, images=images))
    if measured is None:
        return None
    return probe, measured, True, 1, None


#: A candidate request this large is not counted whole near the edge (the tokenizer
#: returns every token: ~30k of them for a full 32k window) while only its previous
#: reply and new message are new: those two are counted instead.
TAIL_BYTES = 16 * 1024


def _tail_will_do(thread: Thread, text: str, upto: int, start: int, probe: int) -> bool:
    """Whether counting the previous reply and the new message alone gives the answer.

    It does when the request framing is known (learned from an earlier such count and
    the usages around it), or, the first time, when the request is large enough that
    counting the framing as if it were zero overcounts by a negligible share. The
    walk from the previous start to the edge must cross only turns of known cost.
    """
    prev = thread.turns[upto - 1]
    if prev.usage.completion_tokens <= 0:
        return False
    low, high = sorted((start, probe))
    if any(thread.cost(i) is None for i in range(max(low - 1, 0), high)):
        return False
    if thread.framing(prev.model) is not None:
        return True
    if probe == upto:  # the message alone is the question: counted alone, exactly
        return False
    return prev.usage.input_tokens * 4 + len(text.encode("utf-8")) > 4 * TAIL_BYTES


def fit_by_bounds(
    thread: Thread, text: str, *, budget: int, upto: int, anchor: tuple[int, int] | None,
    images: tuple[Image, ...] = (),
) -> Fit:
    """Fit without a tokenizer (the OpenAI-compatible API has none; SPEC 4's note).

    The previous request's size is exact (its usage), the previous reply's tokens too
    (its ``completion_tokens``, plus a reply's framing), and the new message is bounded
    by its UTF-8 length: so ``size`` starts as an upper bound, and the walk keeps it one
    (drop the oldest turn: subtract its floor; add an older one: add its ceiling). A
    request is never over the window. The costs of earlier turns are exact once their
    usages tell them (``Thread.derive_costs``), so the only slack near the edge is the
    new message's bytes beyond its tokens; a turn that plainly fits is kept
    (``fit_to_window`` returns before this when everything fits by bounds).
    """
    new = message_bound(text) + images_tokens(images)  # 256 an image (SPEC 15)
    alone = REQUEST_ALLOWANCE + new
    alone += message_bound(thread.system_prompt) if thread.system_prompt else 0
    if anchor is not None:
        start, sent = anchor
        prev = thread.turns[upto - 1]
        reply = (prev.reply_tokens + MESSAGE_ALLOWANCE if prev.reply_tokens
                 else message_bound(prev.reply))
        size = sent + reply + new
        while size > budget and start < upto:
            size -= thread.floor(start)
            start += 1
        if start == upto:
            size = min(size, alone)
    else:
        start, size = upto, alone
    if size > budget:
        raise WindowOverflow(size, budget, bound=True)
    while start > 0 and size + thread.ceiling(start - 1) <= budget:
        size += thread.ceiling(start - 1)
        start -= 1
    return Fit(start, upto, size, 0, bounded=True)
