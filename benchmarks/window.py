"""Figure 7: how much of the room a request uses once the thread is over the window.

Threads are built turn by turn the way the session does it: ``fit_to_window`` with a
counter that is the emulator's own tokenizer (the count TokenizeCompletion and usage
report, framing included), the request's usage committed with the turn. For every
turn past the window's edge, the request's exact size is a share of the room
(window less max_tokens); the baseline is the optimum, found by brute force: the
largest run of newest whole turns that fits. A ratio of 1.000 is exact fitting.
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence

from yagpt_magic.core.conversation import Message, Thread, Turn, Usage
from yagpt_magic.core.fitting import fit_to_window
from yagpt_magic.emulator import count_tokens, tokenize_text

from .common import Row

_VOCABULARY = """data frame index column merge join group plot axis model train test split
loss tensor batch epoch kernel cell output error import module function class value why how
what when explain show compare example memory cache"""
_WORDS = _VOCABULARY.split()

#: (label, window, max_tokens, question tokens, reply tokens, turns)
SCENARIOS = (
    ("300 window, 25-token questions", 300, 40, 25, 40, 60),
    ("8k window, 730-token turns", 8_192, 500, 250, 480, 80),
    ("32k window, 2,100-token turns", 32_768, 2_000, 1_600, 500, 80),
    ("32k window, 100-token turns", 32_768, 2_000, 30, 70, 1_000),
)


def _text(rng: random.Random, tokens: int) -> str:
    return " ".join(rng.choice(_WORDS) for _ in range(max(1, tokens // 2)))


def _count(messages: Sequence[Message]) -> int:
    return count_tokens([(m["role"], m["text"]) for m in messages])


def scenario(window: int, reserve: int, question: int, reply: int, turns: int,
             seed: int = 11) -> tuple[list[float], list[float], list[int], float]:
    """(our shares, optimal shares, tokenizer calls per turn, seconds per fit)."""
    rng = random.Random(seed)
    budget = window - reserve
    thread = Thread("w", system_prompt="You are a patient tutor. Keep answers short.")
    ours, best, calls = [], [], []
    spent = 0.0
    tokenized = 0

    def counter(messages: Sequence[Message]) -> int:
        nonlocal tokenized
        tokenized += 1
        return _count(messages)

    for _ in range(turns):
        text = _text(rng, rng.randint(question // 2, question * 3 // 2))
        answer = _text(rng, rng.randint(reply // 2, reply * 3 // 2))
        before = tokenized
        started = time.perf_counter()
        fit = fit_to_window(thread, text, budget=budget, count=counter)
        spent += time.perf_counter() - started
        calls.append(tokenized - before)
        size = _count(thread.request(text, start=fit.start))
        if fit.start > 0:
            optimum = fit.start
            while optimum > 0 and _count(thread.request(text, start=optimum - 1)) <= budget:
                optimum -= 1
            while _count(thread.request(text, start=optimum)) > budget:
                optimum += 1
            ours.append(size / budget)
            best.append(_count(thread.request(text, start=optimum)) / budget)
        done = len(tokenize_text(answer))
        thread.commit(Turn(text, answer, usage=Usage(size, done, 0, size + done),
                           system_prompt=thread.system_prompt, context_start=fit.start,
                           probe=fit.probe, tail=fit.tail))
    return ours, best, calls, spent / turns


def run(quick: bool) -> Row:
    details = []
    all_ours: list[float] = []
    all_best: list[float] = []
    most_calls = 0
    for label, window, reserve, question, reply, turns in SCENARIOS:
        turns = min(turns, 40) if quick else turns
        ours, best, calls, per_fit = scenario(window, reserve, question, reply, turns)
        all_ours += ours
        all_best += best
        most_calls = max(most_calls, max(calls))
        if ours:
            details.append(
                f"{label}: {len(ours)} of {turns} turns over the window; room used mean "
                f"{100 * sum(ours) / len(ours):.1f}% (optimum {100 * sum(best) / len(best):.1f}%),"
                f" min {100 * min(ours):.1f}%; tokenizer calls per turn: max {max(calls)}, "
                f"mean {sum(calls) / len(calls):.2f}; fit {per_fit * 1e6:.0f} µs"
            )
        else:
            details.append(f"{label}: {turns} turns, never over the window")
    mean_ours = 100 * sum(all_ours) / max(len(all_ours), 1)
    mean_best = 100 * sum(all_best) / max(len(all_best), 1)
    return Row(
        figure="7. room used past the window's edge (mean)",
        baseline=mean_best,
        ours=mean_ours,
        unit="%",
        target="ratio >= 0.98; <= 1 tokenize call a turn",
        passed=mean_ours >= 0.98 * mean_best and most_calls <= 1,
        details=["requests' exact size / (window - max_tokens), for each turn past the edge;"
                 " baseline: the brute-force optimum of whole turns"] + details,
    )
