"""``service/live.py`` and ``service/replay.py``: the backends a session is handed."""

from __future__ import annotations

import pytest

from yagpt_magic.core.backend import Request, RequestOptions
from yagpt_magic.core.conversation import Thread, Turn, messages_sha256
from yagpt_magic.core.errors import ConfigProblem, ReplayMiss
from yagpt_magic.core.settings import Settings
from yagpt_magic.emulator import Emulator
from yagpt_magic.service.live import LiveBackends
from yagpt_magic.service.replay import ReplayBackends

from ..conftest import TEST_API_KEY


def test_one_backend_per_connection_and_api(
    emulator: Emulator, clean_env: pytest.MonkeyPatch
) -> None:
    settings = Settings(endpoint=emulator.address, insecure=True)
    live = LiveBackends(settings)
    with pytest.raises(ConfigProblem, match="No YandexGPT credential"):
        live.backend(RequestOptions())
    live.log_in(TEST_API_KEY, "b1gtest")
    try:
        first = live.backend(RequestOptions())
        assert first.api == "text-generation"
        assert live.backend(RequestOptions(model="yandexgpt-lite")) is first
        settings.set("timeout", 7.0)  # a new connection: a backend of its own
        second = live.backend(RequestOptions())
        assert second is not first and live.opened() == [first, second]
        reply = second.complete(Request(({"role": "user", "text": "hi"},),
                                        RequestOptions(stream=False)))
        assert reply.api == "text-generation" and emulator.completions
    finally:
        live.close()
    assert live.opened() == []


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
