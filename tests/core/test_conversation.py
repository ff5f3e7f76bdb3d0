"""Threads, turns and context-window fitting as plain data (SPEC 4)."""

from __future__ import annotations

import functools
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from yagpt_magic.core.conversation import Message, Thread, Turn, Usage
from yagpt_magic.core.fitting import WindowOverflow, fit_to_window
from yagpt_magic.emulator import REQUEST_FRAMING, count_tokens, tokenize_text


@functools.lru_cache(maxsize=100_000)
def count_one(role: str, text: str) -> int:
    return count_tokens([(role, text)]) - REQUEST_FRAMING


def count(messages: Sequence[Message]) -> int:
    """The emulator's tokenizer: the same counts the service double reports.

    A request costs its framing plus each message's own (the emulator's tests check
    that), so a per-message cache gives exact totals without re-tokenizing long requests.
    """
    return REQUEST_FRAMING + sum(count_one(m["role"], m["text"]) for m in messages)


#: How full each fitted request was, as a share of the budget.
FILL: list[float] = []


class CountingTokenizer:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, messages: Sequence[Message]) -> int:
        self.calls += 1
        return count(messages)


def answer(thread: Thread, text: str, reply: str, *, budget: int, cell_id: str | None = None,
           tokenizer: CountingTokenizer | None = None) -> int:
    """What the session does for one turn, minus the network: fit, send, commit."""
    slot = thread.slot_for(cell_id)
    upto = len(thread.turns) if slot is None else slot
    fit = fit_to_window(thread, text, budget=budget, count=tokenizer or count, upto=upto)
    sent = thread.request(text, upto=upto, start=fit.start)
    assert count(sent) <= budget, "the fitted request exceeds the window"
    FILL.append(count(sent) / budget)
    assert sent[-1] == {"role": "user", "text": text}
    usage = Usage(count(sent), len(tokenize_text(reply)), 0, 0)
    turn = Turn(text, reply, cell_id=cell_id, usage=usage, system_prompt=thread.system_prompt,
                context_start=fit.start, probe=fit.probe, tail=fit.tail)
    return thread.commit(turn, slot)


def roles_alternate(messages: list[Message]) -> bool:
    roles = [m["role"] for m in messages]
    if roles and roles[0] == "system":
        roles = roles[1:]
    return all(r == ("user" if i % 2 == 0 else "assistant") for i, r in enumerate(roles))


texts = st.text(min_size=1, max_size=300).filter(lambda s: s.strip() != "")


class ThreadMachine(RuleBasedStateMachine):
    """Random append / replace / undo / reset / system / fit sequences keep the invariants."""

    def __init__(self) -> None:
        super().__init__()
        self.thread = Thread("t")
        self.budget = 400

    @rule(text=texts, reply=texts, cell=st.sampled_from([None, "c1", "c2", "c3", "c4"]))
    def send(self, text: str, reply: str, cell: str | None) -> None:
        before = len(self.thread.turns)
        replaced = self.thread.slot_for(cell)
        try:
            index = answer(self.thread, text, reply, budget=self.budget, cell_id=cell)
        except WindowOverflow as err:
            assert count(self.thread.request(text, start=len(self.thread.turns))) > self.budget
            assert err.tokens > err.budget
            return
        if replaced is None:
            assert index == before == len(self.thread.turns) - 1
        else:
            assert index == replaced and len(self.thread.turns) == before
            assert not self.thread.turns[index].stale
            assert all(t.stale for t in self.thread.turns[index + 1 :])

    @precondition(lambda self: self.thread.turns)
    @rule()
    def undo(self) -> None:
        n = len(self.thread.turns)
        self.thread.undo()
        assert len(self.thread.turns) == n - 1

    @rule()
    def reset(self) -> None:
        self.thread.reset()
        assert self.thread.turns == []

    @rule(text=st.text(max_size=80))
    def system(self, text: str) -> None:
        self.thread.system_prompt = text

    @rule(budget=st.integers(min_value=60, max_value=2000))
    def window(self, budget: int) -> None:
        self.budget = budget

    @invariant()
    def alternates(self) -> None:
        assert roles_alternate(self.thread.request("next"))


TestThreadMachine = ThreadMachine.TestCase
TestThreadMachine.settings = settings(max_examples=60, stateful_step_count=30, deadline=None)


@given(st.lists(st.tuples(texts, texts), min_size=1, max_size=40),
       st.integers(min_value=80, max_value=3000), texts)
@settings(max_examples=150, deadline=None)
def test_fitting_keeps_newest_turns_whole_and_fits(
    pairs: list[tuple[str, str]], budget: int, new: str
) -> None:
    thread = Thread("p", system_prompt="You are terse.", turns=[Turn(u, r) for u, r in pairs])
    try:
        fit = fit_to_window(thread, new, budget=budget, count=count)
    except WindowOverflow:
        assert count(thread.request(new, start=len(pairs))) > budget
        return
    sent = thread.request(new, start=fit.start)
    assert count(sent) <= budget
    assert sent[0]["role"] == "system" and sent[-1]["text"] == new
    assert roles_alternate(sent)
    assert fit.left_out == fit.start  # only a prefix is ever left out


def test_a_message_that_cannot_fit_alone_is_refused_with_the_excess() -> None:
    thread = Thread("x", system_prompt="sys")
    big = "word " * 500
    with pytest.raises(WindowOverflow) as info:
        fit_to_window(thread, big, budget=100, count=count)
    exact = count(thread.request(big))
    assert info.value.tokens == exact and info.value.budget == 100


def test_two_thousand_turns_cost_at_most_one_tokenize_call_each() -> None:
    thread = Thread("long", system_prompt="You are a smart assistant")
    tokenizer = CountingTokenizer()
    budget = 32768 - 2000
    calls = []
    FILL.clear()
    for i in range(2000):
        before = tokenizer.calls
        answer(thread, f"Question {i}: what about item {i * 7}?" + " more" * (i % 13),
               f"Answer {i}. " + "Some words of the reply. " * (1 + i % 9),
               budget=budget, tokenizer=tokenizer)
        calls.append(tokenizer.calls - before)
    assert max(calls) <= 1
    # Well inside the window no call is needed at all; at the edge, about one per turn.
    assert calls[:100] == [0] * 100
    assert thread.turns[-1].context_start > 1500
    # Past the edge the window stays well used: exact sizes, not byte bounds, decide.
    steady = FILL[-1000:]
    print(f"window fill over the last 1,000 turns: mean {sum(steady) / len(steady):.2f}, "
          f"min {min(steady):.2f}")
    assert sum(steady) / len(steady) > 0.85


def test_plainly_inside_uses_usage_not_the_tokenizer() -> None:
    thread = Thread("t")
    tokenizer = CountingTokenizer()
    for i in range(20):
        answer(thread, f"q{i}", f"r{i}", budget=32000, tokenizer=tokenizer)
    assert tokenizer.calls == 0


@given(st.lists(st.tuples(texts, texts), max_size=12), st.text(max_size=40), texts,
       st.data())
@settings(max_examples=100, deadline=None)
def test_the_running_hash_equals_hashing_the_request(
    pairs: list[tuple[str, str]], system: str, new: str, data: st.DataObject
) -> None:
    from yagpt_magic.core.conversation import messages_sha256

    thread = Thread("h", system_prompt=system)
    for user, reply in pairs:
        start = data.draw(st.integers(0, len(thread.turns)))
        for text in (new, user):
            assert thread.request_sha256(text, upto=len(thread.turns), start=start) == (
                messages_sha256(thread.request(text, start=start)))
        thread.commit(Turn(user, reply))
    if thread.turns:  # a replaced turn is never hashed from the stale prefix
        thread.commit(Turn("edited", "reply"), at=0)
        assert thread.request_sha256(new, upto=len(thread.turns), start=0) == (
            messages_sha256(thread.request(new)))
