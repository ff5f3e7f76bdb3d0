"""Loading, unloading, credentials and the first %chat commands (SPEC 1, 2, 5)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import grpc
import pytest
from IPython.core.error import UsageError

from yagpt_magic.emulator import Emulator

from .conftest import magics_of


def chat(shell: Any, body: str, line: str = "") -> Any:
    result = shell.run_cell(f"%%chat {line}\n{body}")
    return result


def history(shell: Any, thread: str = "default") -> list[tuple[str, str]]:
    return [(t.user, t.reply) for t in magics_of(shell).session.thread(thread).turns]


def test_without_credentials_says_what_to_set_and_sends_nothing(
    bare_shell: Any, emulator: Emulator
) -> None:
    result = chat(bare_shell, "hello")
    assert isinstance(result.error_in_exec, UsageError)
    message = str(result.error_in_exec)
    assert "\n" not in message
    assert "YC_API_KEY" in message and "%chat offline" in message
    assert emulator.requests == []
    assert history(bare_shell) == []


def test_missing_folder_is_named(bare_shell: Any, clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("YC_API_KEY", "some-key")
    result = chat(bare_shell, "hello")
    assert "YC_FOLDER_ID" in str(result.error_in_exec)


def test_offline_works_with_no_credentials(bare_shell: Any) -> None:
    import threading

    before = set(threading.enumerate())
    bare_shell.run_line_magic("chat", "offline")
    chat(bare_shell, "Hi there", "-o answer").raise_error()
    assert "offline emulator" in bare_shell.user_ns["answer"]
    chat(bare_shell, "And again?").raise_error()
    assert len(history(bare_shell)) == 2
    ours = [t for t in set(threading.enumerate()) - before if t.name.startswith("yagpt")]
    assert ours
    # Unloading stops the in-kernel emulator and the backend's loop: no thread it
    # started is left (grpc's own process-wide poller is not ours to stop).
    bare_shell.run_line_magic("unload_ext", "yagpt_magic")
    assert [t.name for t in ours if t.is_alive()] == []
    bare_shell.run_line_magic("load_ext", "yagpt_magic")


def test_failed_requests_leave_history_unchanged(shell: Any, emulator: Emulator) -> None:
    chat(shell, "first").raise_error()
    before = history(shell)
    for code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.INVALID_ARGUMENT):
        emulator.fail(code, "nope")
        result = chat(shell, "second")
        assert isinstance(result.error_in_exec, UsageError)
        assert history(shell) == before
    chat(shell, "second").raise_error()
    assert len(history(shell)) == 2


def test_follow_up_sees_the_whole_conversation(shell: Any, emulator: Emulator) -> None:
    chat(shell, "Hi! What fields of science did Albert Einstein study?",
         '-s "You are a smart assistant"').raise_error()
    chat(shell, "What important discoveries did he make?").raise_error()
    chat(shell, "Make it shorter", "--no-stream").raise_error()
    roles = [role for role, _ in emulator.completions[-1].messages]
    assert roles == ["system", "user", "assistant", "user", "assistant", "user"]
    assert emulator.completions[-1].options["stream"] is False
    assert emulator.completions[0].options["stream"] is True


def test_flags_reach_the_request(shell: Any, emulator: Emulator) -> None:
    chat(shell, "hi", "-m yandexgpt-lite/rc --temperature 0.2 --max-tokens 77").raise_error()
    request = emulator.completions[-1]
    assert request.model_uri == "gpt://b1gtest/yandexgpt-lite/rc"
    assert request.options["temperature"] == pytest.approx(0.2)
    assert request.options["max_tokens"] == 77
    chat(shell, "hi", "-m gpt://b1gother/yandexgpt/latest").raise_error()
    assert emulator.completions[-1].model_uri == "gpt://b1gother/yandexgpt/latest"
    # Per-cell flags apply to that turn only.
    chat(shell, "again").raise_error()
    assert emulator.completions[-1].model_uri == "gpt://b1gtest/yandexgpt/latest"
    assert emulator.completions[-1].options["temperature"] == pytest.approx(0.6)
    assert emulator.completions[-1].metadata.get("x-data-logging-enabled") == "false"


def test_unload_and_reload_keep_history_and_leave_nothing(shell: Any) -> None:
    chat(shell, "remember me").raise_error()
    magics = magics_of(shell)
    backends = magics.live.opened()
    shell.run_line_magic("unload_ext", "yagpt_magic")
    assert "chat" not in shell.magics_manager.magics["cell"]
    assert "chat" not in shell.magics_manager.magics["line"]
    assert magics not in shell.configurables
    assert all(b._thread is None for b in backends)
    shell.run_line_magic("load_ext", "yagpt_magic")
    assert history(shell)[0][0] == "remember me"
    shell.run_line_magic("reload_ext", "yagpt_magic")
    assert history(shell)[0][0] == "remember me"
    chat(shell, "still here?").raise_error()
    assert len(history(shell)) == 2


def test_config_validation_is_one_line(shell: Any, caplog: pytest.LogCaptureFixture) -> None:
    magics = magics_of(shell)
    shell.run_cell("%config ChatMagics.temperature = 2")
    assert magics.temperature == 0.6
    assert [r.getMessage() for r in caplog.records] == [
        "temperature must be between 0 and 1, not 2.0"]
    caplog.clear()
    shell.run_cell("%config ChatMagics.folder_id = 'AQVNzzzsecret'")
    assert magics.folder_id == ""
    assert "looks like a credential" in caplog.records[0].getMessage()
    assert "AQVNzzzsecret" not in caplog.records[0].getMessage()


def test_magics_from_ipython_config(clean_env: pytest.MonkeyPatch) -> None:
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    config = Config()
    config.ChatMagics.model = "yandexgpt-lite"
    config.ChatMagics.system_prompt = "Be brief."
    InteractiveShell.clear_instance()
    shell = InteractiveShell.instance(config=config)
    try:
        shell.run_line_magic("load_ext", "yagpt_magic")
        magics = magics_of(shell)
        assert magics.model == "yandexgpt-lite"
        assert magics.session.thread("default").system_prompt == "Be brief."
        shell.run_line_magic("unload_ext", "yagpt_magic")
    finally:
        InteractiveShell.clear_instance()


def test_login_asks_with_getpass_and_wins_over_the_environment(
    shell: Any, emulator: Emulator, clean_env: pytest.MonkeyPatch
) -> None:
    clean_env.setenv("YC_API_KEY", "a-stale-key-from-the-environment")
    answers = iter([emulator.api_key, "b1gfromlogin"])
    prompts: list[str] = []

    def fake_getpass(prompt: str = "") -> str:
        prompts.append(prompt)
        return next(answers)

    clean_env.setattr("getpass.getpass", fake_getpass)
    shell.run_line_magic("chat", "login")
    assert len(prompts) == 2 and "hidden" in prompts[0]
    chat(shell, "hello").raise_error()
    request = emulator.completions[-1]
    assert request.metadata["authorization"] == f"Api-Key {emulator.api_key}"
    assert request.model_uri.startswith("gpt://b1gfromlogin/")
    rows = {row[0]: row for row in shell.run_line_magic("chat", "config").rows}
    assert rows["credential"][1:] == ("api_key (hidden)", "%chat login")
    assert rows["folder_id"][1:] == ("b1gfromlogin", "%chat login")


def test_help_is_the_bare_command(shell: Any) -> None:
    assert shell.run_line_magic("chat", "") == shell.run_line_magic("chat", "help")
    text = str(shell.run_line_magic("chat", "help"))
    for command in ("history", "threads", "system", "undo", "reset", "usage", "config",
                    "login", "offline", "save", "load", "record", "replay", "restore",
                    "widget"):
        assert f"%chat {command}" in text
    assert "Examples" in text


def test_reasoning_mode_and_data_logging_reach_the_request(
    shell: Any, emulator: Emulator
) -> None:
    shell.run_cell("%config ChatMagics.reasoning_mode = 'enabled_hidden'").raise_error()
    shell.run_cell("%config ChatMagics.data_logging = True").raise_error()
    chat(shell, "think first").raise_error()
    request = emulator.completions[-1]
    assert request.options["reasoning_mode"] == "ENABLED_HIDDEN"
    assert request.metadata["x-data-logging-enabled"] == "true"


def test_extensions_config_loads_it_like_load_ext(tmp_path: Any) -> None:
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-m", "IPython", "--no-banner", "--HistoryManager.enabled=False",
         "--InteractiveShellApp.extensions=['yagpt_magic']",
         "-c", "print(type(get_ipython()._yagpt_magic).__name__)"],
        capture_output=True, text=True, cwd=tmp_path, timeout=60,
        env={**__import__("os").environ, "IPYTHONDIR": str(tmp_path)},
    )
    assert "ChatMagics" in out.stdout, out.stderr


def test_building_the_package_gives_no_deprecation_warning(tmp_path: Path) -> None:
    """``pip install .`` once warned that ``project.license`` as a table is deprecated."""
    import subprocess
    import sys

    root = Path(__file__).parent.parent
    code = (
        "import warnings, sys\n"
        "warnings.simplefilter('always')\n"
        "from setuptools import build_meta\n"
        f"build_meta.prepare_metadata_for_build_wheel({str(tmp_path)!r})\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "deprecated" not in (done.stdout + done.stderr).lower(), done.stderr[-2000:]
    metadata = next(tmp_path.glob("*.dist-info")) / "METADATA"
    assert "License-Expression: MIT" in metadata.read_text()
