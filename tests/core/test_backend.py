"""``core/backend.py``: the neutral request and reply types, and what a session without
backends does: it keeps threads and, asked for a reply, says in one line how to get one."""

from __future__ import annotations

from dataclasses import fields

import pytest

from yagpt_magic.core.backend import RequestOptions
from yagpt_magic.core.errors import ConfigProblem
from yagpt_magic.core.session import ChatSession
from yagpt_magic.core.settings import Settings


def test_options_made_without_a_session_ask_what_a_fresh_session_asks() -> None:
    assert RequestOptions() == ChatSession(Settings()).options()
    defaults = Settings()
    shared = {f.name for f in fields(RequestOptions)} & {f.name for f in fields(Settings)}
    assert {"model", "model_version", "temperature", "max_tokens"} <= shared
    for name in ("model", "model_version", "temperature", "max_tokens"):
        assert getattr(RequestOptions(), name) == getattr(defaults, name)


def test_a_session_without_backends_keeps_threads_and_says_how_to_ask() -> None:
    session = ChatSession()
    session.set_system("notes", "Be brief.")
    assert session.thread("notes").system_prompt == "Be brief."
    with pytest.raises(ConfigProblem) as refused:
        session.ask("notes", "hello")
    message = str(refused.value)
    assert "current_session()" in message and "LiveBackends" in message
    assert "\n" not in message
    assert session.thread("notes").turns == []
    session.close()  # nothing to close, and no error
