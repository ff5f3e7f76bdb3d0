"""``service/replay.py``: a backend that answers from a transcript and never calls the
network; a request it does not hold is refused naming the first difference."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from yagpt_magic.core.backend import Request, RequestOptions
from yagpt_magic.core.conversation import Thread, Turn, messages_sha256
from yagpt_magic.core.errors import ReplayMiss, UsageProblem
from yagpt_magic.emulator import Emulator
from yagpt_magic.service.replay import ReplayBackends


def test_replay_answers_only_the_recorded_request(emulator: Emulator) -> None:
    thread = Thread("default")
    messages = [{"role": "user", "text": "q"}]
    thread.commit(Turn("q", "recorded answer", model="gpt://b1g/yandexgpt/latest",
                       sha256=messages_sha256(messages), context_start=0,
                       api="text-generation"), None)
    backend = ReplayBackends({"default": thread}, "rec.jsonl").backend(RequestOptions())
    assert backend.count(messages, RequestOptions()) is None
    assert backend.context_start("default", 0) == 0
    seen: list[str] = []
    reply = backend.complete(Request(tuple(messages), RequestOptions(), "default", 0),
                             on_text=seen.append)
    assert (reply.text, reply.api, seen) == ("recorded answer", "text-generation",
                                             ["recorded answer"])
    with pytest.raises(ReplayMiss, match="the user message differs"):
        backend.complete(Request(({"role": "user", "text": "other"},), RequestOptions(),
                                 "default", 0))
    assert emulator.completions == []  # never the network


def recorded(system: str = "Be brief.") -> ReplayBackends:
    """A transcript of one thread with two turns, as ``%chat replay`` reads one."""
    thread = Thread("default", system_prompt=system)
    first = [{"role": "system", "text": system}, {"role": "user", "text": "What is 2+2?"}]
    thread.commit(Turn("What is 2+2?", "4", model="gpt://b1g/yandexgpt/latest",
                       sha256=messages_sha256(first), context_start=0, system_prompt=system,
                       api="text-generation"), None)
    second = [*first, {"role": "assistant", "text": "4"}, {"role": "user", "text": "And 3+3?"}]
    thread.commit(Turn("And 3+3?", "6", model="gpt://b1g/yandexgpt/latest",
                       sha256=messages_sha256(second), context_start=0, system_prompt=system,
                       api="text-generation"), None)
    return ReplayBackends({"default": thread}, "rec.jsonl")


def ask(backends: ReplayBackends, messages: list[dict[str, str]], index: int,
        thread: str = "default") -> str:
    request = Request(tuple(messages), RequestOptions(), thread, index)
    return backends.backend(RequestOptions()).complete(request).text


SYSTEM = {"role": "system", "text": "Be brief."}
FIRST = {"role": "user", "text": "What is 2+2?"}


def test_each_recorded_turn_is_answered_in_turn_whatever_the_model() -> None:
    backends = recorded()
    assert ask(backends, [SYSTEM, FIRST], 0) == "4"
    assert ask(backends, [SYSTEM, FIRST, {"role": "assistant", "text": "4"},
                          {"role": "user", "text": "And 3+3?"}], 1) == "6"
    qwen = RequestOptions(model="qwen3-235b-a22b-fp8")
    assert backends.backend(qwen) is backends.backend(RequestOptions())


@pytest.mark.parametrize(("messages", "index", "thread", "says"), [
    ([SYSTEM, FIRST], 0, "other", "rec.jsonl has no thread 'other' (it holds 'default')"),
    ([SYSTEM, FIRST], 2, "default", "rec.jsonl holds only 2 turns of it"),
    ([{"role": "system", "text": "Be long."}, FIRST], 0, "default",
     "the system prompt differs: recorded 'Be brief.', now 'Be long.'"),
    ([SYSTEM, {"role": "user", "text": "What is 2+3?"}], 0, "default",
     "the user message differs"),
    ([SYSTEM, FIRST, {"role": "user", "text": "more"}], 0, "default",
     "there is an extra user message ('more')"),
])
def test_a_request_the_transcript_does_not_hold_is_refused_naming_where(
    messages: list[dict[str, str]], index: int, thread: str, says: str, emulator: Emulator,
) -> None:
    with pytest.raises(ReplayMiss) as miss:
        ask(recorded(), messages, index, thread)
    message = str(miss.value)
    assert says in message, message
    assert "nothing was sent" in message and "%chat live" in message
    assert "\n" not in message
    assert emulator.completions == []


def run_alone(coroutine: Coroutine[Any, Any, Any]) -> Any:
    """Run ``coroutine`` on a loop in a thread of its own: after the browser tests,
    Playwright's sync API keeps a loop running in the main thread."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def test_bulk_work_is_refused_in_one_line_before_any_row_is_sent() -> None:
    backend = recorded().backend(RequestOptions())
    with pytest.raises(UsageProblem, match="do not run in replay mode; %chat live first"):
        run_alone(backend.complete_async([SYSTEM, FIRST], RequestOptions()))
    with pytest.raises(UsageProblem, match="do not run in replay mode"):
        next(iter(backend.drive(lambda put: None)))
