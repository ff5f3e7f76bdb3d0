"""Issue 12: context fitting is exact (SPEC 4), checked by brute force with the emulator's
own tokenizer: every request fits, and the next older turn would not have fitted."""

from __future__ import annotations

import functools
import random
from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from yagpt_magic.core.conversation import Message, Thread, Turn, Usage
from yagpt_magic.core.fitting import WindowOverflow, fit_to_window
from yagpt_magic.emulator import REQUEST_FRAMING, Emulator, count_tokens, tokenize_text

from ..conftest import fails, magics_of

_VOCABULARY = """data frame index column merge join group plot axis model train test split
loss tensor batch epoch kernel cell output error import module function class value why how
what when explain show compare example memory cache"""
WORDS = tuple(_VOCABULARY.split())


@functools.lru_cache(maxsize=200_000)
def _one(role: str, text: str) -> int:
    return count_tokens([(role, text)]) - REQUEST_FRAMING


def exact(messages: Sequence[Message]) -> int:
    """The emulator's count of a request (what TokenizeCompletion and usage report)."""
    return REQUEST_FRAMING + sum(_one(m["role"], m["text"]) for m in messages)


#: The conservatism SPEC 4 allows, as a share of the room.
SLACK = 0.02


class Tokenizer:
    """``fit_to_window``'s counter: the emulator's tokenizer, counting its calls."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, messages: Sequence[Message]) -> int:
        self.calls += 1
        return exact(messages)


def text_of(rng: random.Random, tokens: int) -> str:
    """About ``tokens`` emulator tokens of prose (a word and its space are ~2 tokens)."""
    words = max(1, tokens // 2)
    return " ".join(rng.choice(WORDS) for _ in range(words))


def take_turn(thread: Thread, text: str, reply: str, budget: int, tokenizer: Tokenizer,
              upto: int | None = None) -> tuple[int, int]:
    """Fit, check by brute force, commit as the session does; (calls, start)."""
    upto = len(thread.turns) if upto is None else upto
    before = tokenizer.calls
    unknown = {i for i in range(max(0, upto - 300), upto) if thread.cost(i) is None}
    try:
        fit = fit_to_window(thread, text, budget=budget, count=tokenizer, upto=upto)
    except WindowOverflow as err:
        alone = exact(thread.request(text, upto=upto, start=upto))
        assert alone > budget and err.tokens == alone
        return tokenizer.calls - before, -1
    calls = tokenizer.calls - before
    assert calls <= 1
    sent = thread.request(text, upto=upto, start=fit.start)
    size = exact(sent)
    assert size <= budget, "the request does not fit"
    assert fit.tokens >= size  # the fit's own figure never undercounts
    if fit.start > 0:
        longer = exact(thread.request(text, upto=upto, start=fit.start - 1))
        # SPEC 4: a whole turn that would have fitted is never left out; a count may be
        # conservative by at most 2% of the room: with that turn the request would use
        # more than 98% of the room, or without it it uses 98%. No other exception.
        room = (1 - SLACK) * budget
        missed = not (longer > room or size >= room)
        # One exception, which no single count can avoid (see fit_to_window): the edge
        # lies next to a turn whose cost depends on the framing G of a system prompt that
        # no two counts have told apart yet, and the new message's size is unknown too:
        # two unknowns, one count.
        probe = fit.probe[0] if fit.probe else fit.start
        crossed = set(range(min(probe, fit.start) - 1, max(probe, fit.start) + 1))
        assert not missed or crossed & unknown, (
            f"turn {fit.start - 1} was left out but fits: {longer} <= {budget}, sent {size}")
    reply_tokens = len(tokenize_text(reply))
    turn = Turn(text, reply, usage=Usage(size, reply_tokens, 0, size + reply_tokens),
                system_prompt=thread.system_prompt, context_start=fit.start, probe=fit.probe,
                tail=fit.tail)
    thread.commit(turn, upto if upto < len(thread.turns) else None)
    return calls, fit.start


sizes = st.one_of(st.integers(1, 40), st.integers(40, 400), st.integers(400, 20_000))


@given(
    seed=st.integers(0, 2**32 - 1),
    window=st.one_of(st.integers(300, 2_000), st.integers(2_000, 40_000),
                     st.sampled_from([8_192, 32_768, 131_072, 262_144])),
    reserve=st.integers(1, 2_000),
    system=st.one_of(st.just(""), st.integers(1, 200)),
    shape=st.lists(st.tuples(sizes, sizes), min_size=3, max_size=40),
)
@settings(max_examples=150, deadline=None)
def test_every_request_fits_and_no_turn_that_fits_is_left_out(
    seed: int, window: int, reserve: int, system: int | str, shape: list[tuple[int, int]]
) -> None:
    rng = random.Random(seed)
    budget = max(window - min(reserve, window // 3), 50)
    thread = Thread("p", system_prompt=text_of(rng, system) if system else "")
    tokenizer = Tokenizer()
    for user, reply in shape:
        take_turn(thread, text_of(rng, user), text_of(rng, reply), budget, tokenizer)


@given(seed=st.integers(0, 2**32 - 1), steps=st.lists(
    st.tuples(st.sampled_from(["turn", "turn", "turn", "rerun", "undo", "system", "window"]),
              st.integers(1, 600), st.integers(1, 600)), min_size=5, max_size=40))
@settings(max_examples=100, deadline=None)
def test_exact_across_edits_undos_new_system_prompts_and_windows(
    seed: int, steps: list[tuple[str, int, int]]
) -> None:
    rng = random.Random(seed)
    thread, tokenizer, budget = Thread("e", system_prompt="Be brief."), Tokenizer(), 900
    for kind, a, b in steps:
        if kind == "turn":
            take_turn(thread, text_of(rng, a), text_of(rng, b), budget, tokenizer)
        elif kind == "rerun" and thread.turns:
            at = rng.randrange(len(thread.turns))
            take_turn(thread, text_of(rng, a), text_of(rng, b), budget, tokenizer, upto=at)
        elif kind == "undo" and thread.turns:
            thread.undo()
        elif kind == "system":
            thread.system_prompt = text_of(rng, a % 50)
        elif kind == "window":
            budget = 200 + a * 5


@pytest.mark.parametrize("window", [300, 8_192, 32_768, 262_144])
@pytest.mark.parametrize("turn_tokens", [30, 700, 2_100, 20_000])
def test_long_threads_stay_exact_with_one_call_a_turn(window: int, turn_tokens: int) -> None:
    rng = random.Random(window + turn_tokens)
    budget = window - min(2_000, window // 8)
    thread = Thread("l", system_prompt="You are a smart assistant")
    tokenizer = Tokenizer()
    calls = []
    turns = max(12, min(120, 4 * window // turn_tokens))
    for _ in range(turns):
        size = rng.randint(turn_tokens // 2, turn_tokens * 3 // 2) or 1
        question = text_of(rng, max(1, size // 3))
        called, _start = take_turn(thread, question, text_of(rng, size - size // 3), budget,
                                   tokenizer)
        calls.append(called)
    assert max(calls) <= 1


def test_a_thread_well_inside_needs_no_tokenizer_call() -> None:
    rng = random.Random(1)
    thread, tokenizer = Thread("t", system_prompt="Hi"), Tokenizer()
    for _ in range(30):
        take_turn(thread, text_of(rng, 20), text_of(rng, 60), 30_000, tokenizer)
    assert tokenizer.calls == 0


def test_cost_is_flat_in_the_threads_length() -> None:
    """2,000 turns at a 4k window: one call a turn at most, and every turn exact."""
    rng = random.Random(2)
    thread, tokenizer = Thread("f", system_prompt="Terse."), Tokenizer()
    calls = [take_turn(thread, text_of(rng, rng.randint(5, 80)), text_of(rng, rng.randint(5, 300)),
                       4_000, tokenizer)[0] for _ in range(2_000)]
    assert max(calls) <= 1 and sum(calls[-500:]) <= 500


# -- end to end: a shell with the extension, what the emulator received ------------


def _chat(shell: Any, text: str) -> None:
    shell.run_cell("%%chat\n" + text).raise_error()


def _room(request: Any, window: int, max_tokens: int) -> float:
    return count_tokens(request.messages) / (window - max_tokens)


def _brute_force(emulator: Emulator, thread: Thread, budget: int) -> None:
    """Each request the emulator got fits, and one more older turn would not have."""
    for index, turn in enumerate(thread.turns):
        request = emulator.completions[index]
        assert count_tokens(request.messages) <= budget
        assert turn.context_start is not None
        if turn.context_start > 0:
            older = thread.turns[turn.context_start - 1]
            more = [request.messages[0], ("user", older.user), ("assistant", older.reply)]
            assert count_tokens(more + request.messages[1:]) > budget


def test_small_window_keeps_every_turn_that_fits(
    shell: Any, emulator: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 12, first case: 300 tokens, max_tokens 40, ~25-token questions."""
    shell.run_cell("%config ChatMagics.context_window = 300").raise_error()
    shell.run_cell("%config ChatMagics.max_tokens = 40").raise_error()
    shell.run_line_magic("chat", "system Answer briefly.")
    rng = random.Random(3)
    for i in range(12):
        calls = emulator.tokenize_calls
        _chat(shell, f"Question {i}: " + text_of(rng, 20))
        assert emulator.tokenize_calls - calls <= 1
    thread = magics_of(shell).session.thread()
    _brute_force(emulator, thread, 260)
    assert all(len(r.messages) >= 6 for r in emulator.completions[3:])  # 2 earlier turns at least
    left = thread.turns[-1].context_start
    assert left and f"[{left} earlier turns left out to fit the 300-token window.]" in (
        capsys.readouterr().out)


@pytest.mark.parametrize(("window", "reserve", "turn_tokens", "turns"),
                         [(32_768, 2_000, 2_100, 20), (8_192, 500, 730, 16)])
def test_large_turns_fill_the_window(
    shell: Any, emulator: Emulator, window: int, reserve: int, turn_tokens: int, turns: int
) -> None:
    """Issue 12, second and third cases: pasted tables in 32k, 730-token turns in 8k."""
    shell.run_cell(f"%config ChatMagics.context_window = {window}").raise_error()
    shell.run_cell(f"%config ChatMagics.max_tokens = {reserve}").raise_error()
    rng = random.Random(window)
    for i in range(turns):
        calls = emulator.tokenize_calls
        _chat(shell, f"Table {i}:\n" + text_of(rng, turn_tokens))
        assert emulator.tokenize_calls - calls <= 1
    thread = magics_of(shell).session.thread()
    _brute_force(emulator, thread, window - reserve)
    over = [r for r, t in zip(emulator.completions, thread.turns) if t.context_start]
    assert over, "the thread never reached the window's edge"
    # Exact, so each request over the edge is within one turn of the whole room.
    for request in over:
        assert _room(request, window, reserve) > 1 - (turn_tokens + 200) / (window - reserve)


def test_a_message_over_the_window_or_the_grpc_limit_is_refused_before_sending(
    shell: Any, emulator: Emulator
) -> None:
    shell.run_cell("%config ChatMagics.context_window = 3000").raise_error()
    message = fails(shell, "%%chat --max-tokens 1000\n" + "lorem ipsum " * 1000)
    assert "tokens over" in message and "2000" in message
    tokenized = emulator.tokenize_calls
    message = fails(shell, "%%chat\n" + "x" * (5 * 1024 * 1024))
    assert "MB" in message and "4 MB" in message
    assert emulator.completions == [] and emulator.tokenize_calls == tokenized


def test_fit_is_exact_through_the_real_sdk(emulator: Emulator, sdk_for: Any) -> None:
    """The counter is the SDK's tokenize against the emulator: the same exactness."""
    model = sdk_for(emulator).models.completions("yandexgpt")

    def count(messages: Sequence[Message]) -> int:
        return len(model.tokenize(list(messages)))

    rng = random.Random(5)
    thread = Thread("sdk", system_prompt="Short.")
    for _ in range(10):
        text, reply = text_of(rng, rng.randint(5, 120)), text_of(rng, rng.randint(5, 200))
        calls = emulator.tokenize_calls
        fit = fit_to_window(thread, text, budget=700, count=count)
        assert emulator.tokenize_calls - calls <= 1
        sent = thread.request(text, start=fit.start)
        result = model.run(sent)
        assert result.usage.input_text_tokens <= 700
        if fit.start:
            assert exact(thread.request(text, start=fit.start - 1)) > 700
        thread.commit(Turn(text, reply, usage=Usage(result.usage.input_text_tokens,
                                                    len(tokenize_text(reply)), 0, 0),
                           system_prompt=thread.system_prompt, context_start=fit.start,
                           probe=fit.probe, tail=fit.tail))


def test_each_model_has_its_window_and_config_overrides_all(shell: Any, emulator: Emulator) -> None:
    from yagpt_magic.core import models

    assert models.context_window("yandexgpt") == 32_768
    assert models.context_window("yandexgpt-lite/rc") == 32_768
    assert models.context_window("gpt://b1g/qwen3-235b-a22b-fp8/latest") == 262_144
    assert models.context_window("no-such-model") == models.DEFAULT_WINDOW
    assert models.context_window("gpt-oss-20b", 4_000) == 4_000
    table = shell.run_line_magic("chat", "models")
    rows = {row[0]: row for row in table.rows}
    assert rows["yandexgpt"][-1] == "current" and rows["yandexgpt"][2] == "32,768"
    assert "override" in repr(table)
    _chat(shell, "hello")
    assert "(%config)" not in repr(table)
    shell.run_cell("%config ChatMagics.context_window = 300").raise_error()
    shell.run_cell("%config ChatMagics.max_tokens = 40").raise_error()
    rows = {row[0]: row for row in shell.run_line_magic("chat", "models").rows}
    assert rows["gemma-3-27b-it"][3] == "300 (%config)"
    shell.run_cell("%%chat -m aliceai-llm\n" + "word " * 200).raise_error()  # 300 overrides
    assert count_tokens(emulator.completions[-1].messages) <= 260
    assert "models" in shell.run_line_magic("chat", "help")
    shell.run_cell("%config ChatMagics.context_window = 0").raise_error()
    shell.run_cell("%config ChatMagics.context_window = -1")  # refused: %config logs it
    assert magics_of(shell).context_window == 0


def test_near_the_edge_of_a_large_window_only_the_new_messages_are_counted() -> None:
    """The tokenizer never returns a full window's tokens once the framing is known."""
    rng = random.Random(9)
    thread, seen = Thread("big", system_prompt="Be exact."), []

    def counter(messages: Sequence[Message]) -> int:
        seen.append(len(messages))
        return exact(messages)

    budget = 32_768 - 2_000
    for _ in range(40):
        text, reply = text_of(rng, rng.randint(500, 1_500)), text_of(rng, rng.randint(200, 900))
        fit = fit_to_window(thread, text, budget=budget, count=counter)
        sent = thread.request(text, start=fit.start)
        size = exact(sent)
        assert size <= budget
        if fit.start:
            assert exact(thread.request(text, start=fit.start - 1)) > budget
        done = len(tokenize_text(reply))
        thread.commit(Turn(text, reply, usage=Usage(size, done, 0, size + done),
                           system_prompt=thread.system_prompt, context_start=fit.start,
                           probe=fit.probe, tail=fit.tail))
    assert thread.framing("") == REQUEST_FRAMING  # learned, not assumed
    assert seen and seen[-10:] == [2] * len(seen[-10:])


# -- without a tokenizer (the OpenAI-compatible API), and across a change of model --------


def take_bounded_turn(thread: Thread, text: str, reply: str, budget: int,
                      model: str = "gpt://f/qwen3-235b-a22b-fp8/latest") -> tuple[int, int]:
    """Fit with no tokenizer, check by brute force, commit as the session does.

    Returns (the request's size, the size with the next older turn: 0 if none)."""
    upto = len(thread.turns)
    fit = fit_to_window(thread, text, budget=budget, count=None, model=model)
    size = exact(thread.request(text, start=fit.start))
    assert size <= budget, "the request does not fit"
    assert fit.tokens >= size  # an upper bound, never an undercount
    longer = exact(thread.request(text, start=fit.start - 1)) if fit.start else 0
    done = len(tokenize_text(reply))
    thread.commit(Turn(text, reply, model=model, usage=Usage(size, done, 0, size + done),
                       system_prompt=thread.system_prompt, context_start=fit.start),
                  upto if upto < len(thread.turns) else None)
    return size, longer


@given(
    seed=st.integers(0, 2**32 - 1),
    window=st.one_of(st.integers(300, 4_000), st.sampled_from([8_192, 131_072, 262_144])),
    system=st.one_of(st.just(""), st.integers(1, 200)),
    shape=st.lists(st.tuples(sizes, sizes), min_size=3, max_size=30),
)
@settings(max_examples=100, deadline=None)
def test_without_a_tokenizer_no_request_is_over_the_window(
    seed: int, window: int, system: int, shape: list[tuple[int, int]]
) -> None:
    """SPEC 4's note: bounded by UTF-8 length, the request is never over, at any size."""
    rng = random.Random(seed)
    thread = Thread("b", system_prompt=text_of(rng, system) if system else "")
    for user, reply in shape:
        try:
            take_bounded_turn(thread, text_of(rng, user), text_of(rng, reply), window)
        except WindowOverflow as err:
            assert err.bound and err.tokens > window  # its bytes alone are over the room


@pytest.mark.parametrize("window", [4_000, 8_192, 32_768, 262_144])
def test_without_a_tokenizer_near_the_edge_the_room_used_is_within_5_percent(window: int) -> None:
    """A turn that fits is left out only where the message's bytes (its bound) made the
    difference: the request with it would use more than 95% of the room, or this one
    already does. Chat-sized messages (a line to a paragraph), turns of any size."""
    rng = random.Random(window)
    thread = Thread("near", system_prompt="Answer briefly.")
    reached, largest = 0, max(window // 40, 200)
    for _ in range(120):
        question = text_of(rng, rng.randint(3, 60))
        reply = text_of(rng, rng.randint(10, largest))
        size, longer = take_bounded_turn(thread, question, reply, window)
        if longer:
            reached += 1
            assert longer > window or max(size, longer) > 0.95 * window, (size, longer)
    assert reached, "the thread never reached the window's edge"


def test_a_plainly_fitting_thread_needs_no_count_and_says_its_size_is_a_bound() -> None:
    rng = random.Random(11)
    thread = Thread("plain")
    for _ in range(10):
        fit = fit_to_window(thread, text_of(rng, 20), budget=262_144, count=None,
                            model="qwen3-235b-a22b-fp8")
        assert fit.start == 0 and fit.tokenize_calls == 0
        take_bounded_turn(thread, text_of(rng, 20), text_of(rng, 80), 262_144)
    rng = random.Random(12)
    small = Thread("edge")
    for _ in range(12):
        take_bounded_turn(small, text_of(rng, 20), text_of(rng, 120), 600)
    fit = fit_to_window(small, text_of(rng, 20), budget=600, count=None,
                        model="qwen3-235b-a22b-fp8")
    assert fit.left_out and fit.bounded


def test_a_thread_that_switches_model_relearns_its_costs() -> None:
    """Costs learned in one model's tokens are not another's: a model whose tokenizer
    cuts the same text into more tokens never gets a request over its window."""
    rng = random.Random(13)
    thread = Thread("switch", system_prompt="Be brief.")
    budget = 1_500
    # The first model counts half the tokens the second does, and says so in its usage.
    for _ in range(12):
        text, reply = text_of(rng, rng.randint(20, 80)), text_of(rng, rng.randint(40, 200))
        fit = fit_to_window(thread, text, budget=2 * budget, count=lambda m: exact(m) // 2,
                            model="yandexgpt")
        half = exact(thread.request(text, start=fit.start)) // 2
        done = len(tokenize_text(reply)) // 2
        thread.commit(Turn(text, reply, model="gpt://f/yandexgpt/latest",
                           usage=Usage(half, done, 0, half + done),
                           system_prompt=thread.system_prompt, context_start=fit.start,
                           probe=fit.probe, tail=fit.tail))
    assert any(thread.cost(i) is not None for i in range(len(thread.turns)))
    for _ in range(12):
        take_bounded_turn(thread, text_of(rng, rng.randint(20, 80)),
                          text_of(rng, rng.randint(40, 200)), budget)
    # ...and back: the first model's costs are re-learned, its requests exact again.
    text = text_of(rng, 30)
    fit = fit_to_window(thread, text, budget=budget, count=lambda m: exact(m) // 2,
                        model="yandexgpt")
    assert exact(thread.request(text, start=fit.start)) // 2 <= budget
