"""``service/live.py``: the backends a live session is handed, one per connection and API."""

from __future__ import annotations

import pytest

from yagpt_magic.core.backend import Request, RequestOptions
from yagpt_magic.core.errors import ConfigProblem
from yagpt_magic.core.settings import Settings
from yagpt_magic.emulator import Emulator
from yagpt_magic.service.live import LiveBackends

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
