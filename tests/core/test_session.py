"""``ChatSession`` on its own: no IPython, the real SDK, the emulator over gRPC."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from yagpt_magic.core.errors import ContentFiltered, ReplayMiss, UsageProblem
from yagpt_magic.core.session import ChatSession, EventKind, ThreadEvent
from yagpt_magic.core.settings import Settings
from yagpt_magic.emulator import Emulator
from yagpt_magic.service.live import LiveBackends
from yagpt_magic.transcript.modes import go_live, start_recording, start_replay

from ..conftest import TEST_API_KEY


@pytest.fixture
def session(emulator: Emulator, clean_env: pytest.MonkeyPatch) -> ChatSession:
    settings = Settings(endpoint=emulator.address, insecure=True, stream=False,
                        system_prompt="Be brief.")
    live = LiveBackends(settings)
    live.log_in(TEST_API_KEY, "b1gtest")
    found = ChatSession(settings, live, secrets=live.secrets)
    yield found
    found.close()


def test_ask_sends_settings_and_history_and_commits(
    session: ChatSession, emulator: Emulator
) -> None:
    events: list[ThreadEvent] = []
    session.subscribe(events.append)
    session.ask("default", "one")
    answer = session.ask("default", "two")
    request = emulator.completions[-1]
    assert [role for role, _ in request.messages] == [
        "system", "user", "assistant", "user"]
    assert request.messages[0] == ("system", "Be brief.")
    assert request.model_uri == "gpt://b1gtest/yandexgpt/latest"
    assert answer.index == 1 and answer.turn.reply == emulator_reply(emulator)
    assert [e.kind for e in events] == [EventKind.COMMIT, EventKind.COMMIT]


def emulator_reply(emulator: Emulator) -> str:
    from yagpt_magic.emulator import reply_for

    last = emulator.completions[-1]
    return reply_for(last.model_uri, last.messages)


def test_settings_changes_apply_to_the_next_request(
    session: ChatSession, emulator: Emulator
) -> None:
    session.settings.set("temperature", 0.1)
    session.settings.set("model", "yandexgpt-lite")
    session.ask("default", "hi")
    request = emulator.completions[-1]
    assert request.options["temperature"] == pytest.approx(0.1)
    assert request.model_uri == "gpt://b1gtest/yandexgpt-lite/latest"
    session.ask("default", "again", options=session.options(temperature=0.9))
    assert emulator.completions[-1].options["temperature"] == pytest.approx(0.9)


def test_a_failed_or_filtered_request_changes_nothing(
    session: ChatSession, emulator: Emulator
) -> None:
    session.ask("default", "kept")
    before = session.thread().copy()
    emulator.reply_with("withheld", status="CONTENT_FILTER")
    with pytest.raises(ContentFiltered):
        session.ask("default", "filtered")
    assert session.thread() == before


def test_one_reply_at_a_time_per_thread(session: ChatSession, emulator: Emulator) -> None:
    emulator.delay = 0.5
    worker = threading.Thread(target=session.ask, args=("default", "slow"))
    worker.start()
    try:
        for _ in range(100):
            if emulator.completions:
                break
            threading.Event().wait(0.01)
        with pytest.raises(UsageProblem, match="already being written"):
            session.ask("default", "second")
        with pytest.raises(UsageProblem, match="being written"):
            session.reset("default")
    finally:
        worker.join()
    assert [t.user for t in session.thread().turns] == ["slow"]


def test_record_replay_and_live_switch_the_sessions_mode(
    session: ChatSession, emulator: Emulator, tmp_path: Path
) -> None:
    path = tmp_path / "rec.jsonl"
    live = session.backends
    assert start_recording(session, live, path) == ""
    session.ask("default", "q1")
    assert session.recorder is not None
    ended, turns = start_replay(session, live, path)
    assert (ended, turns) == ("Recording", 1)
    sent = len(emulator.completions)
    session.reset("default")
    assert session.ask("default", "q1").turn.reply == emulator_reply(emulator)
    assert len(emulator.completions) == sent  # answered from the file
    with pytest.raises(ReplayMiss):
        session.ask("default", "not recorded")
    assert go_live(session, live) == "Replay"
    assert go_live(session, live) == ""


def test_a_refused_recording_keeps_the_current_mode(
    session: ChatSession, tmp_path: Path
) -> None:
    live = session.backends
    start_recording(session, live, tmp_path / "ok.jsonl")
    with pytest.raises(Exception, match="unknown transcript type"):
        start_recording(session, live, tmp_path / "bad.txt")
    assert session.recorder is not None


def test_offline_needs_no_credential(clean_env: pytest.MonkeyPatch) -> None:
    settings = Settings(stream=False)
    live = LiveBackends(settings)
    session = ChatSession(settings, live, secrets=live.secrets)
    try:
        emulator = live.start_offline()
        answer = session.ask("default", "hello")
        assert "offline emulator" in answer.turn.reply
        assert live.connection().endpoint == emulator.address
    finally:
        session.close()
    assert live.offline is None and live.login is None


def test_a_script_that_went_offline_exits_without_unloading(tmp_path: Path) -> None:
    """The emulator's server threads must not keep the interpreter alive at exit."""
    import subprocess
    import sys

    script = (
        "from IPython.core.interactiveshell import InteractiveShell\n"
        "shell = InteractiveShell.instance()\n"
        "shell.run_line_magic('load_ext', 'yagpt_magic')\n"
        "shell.run_line_magic('chat', 'offline')\n"
        "shell.run_cell('%%chat\\nhello').raise_error()\n"
        "print('done')\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60, cwd=tmp_path)
    assert done.returncode == 0 and "done" in done.stdout
