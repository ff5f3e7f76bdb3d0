"""``%chat`` commands on their own: a ``Context`` (a session and a shell), no magics."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from yagpt_magic import command_table
from yagpt_magic.core.conversation import Turn
from yagpt_magic.core.errors import UsageProblem
from yagpt_magic.core.session import ChatSession
from yagpt_magic.core.settings import Settings
from yagpt_magic.emulator import Emulator
from yagpt_magic.ipython.commands import Context, dispatch
from yagpt_magic.ipython.commands import help as help_command
from yagpt_magic.service.live import LiveBackends

from .conftest import magics_of

TABLE = command_table()
COMMANDS = TABLE.names
module = TABLE.module


def summary(name: str) -> str:
    return help_command.summary(module(name))


def usage(name: str) -> str:
    return help_command.usage(module(name))


class Shell:
    """What commands use of IPython's shell: a user namespace (and no magics here)."""

    def __init__(self) -> None:
        self.user_ns: dict[str, Any] = {}
        self.magics_manager = None


@pytest.fixture
def ctx(clean_env: pytest.MonkeyPatch) -> Context:
    settings = Settings()
    live = LiveBackends(settings)
    session = ChatSession(settings, live, secrets=live.secrets)
    session.thread().commit(Turn("What is a monad?", "A *burrito*, some say."))
    return Context(session, Shell(), TABLE, live)


def run(ctx: Context, line: str) -> Any:
    return dispatch(ctx, line)


def test_every_command_has_a_summary_and_a_usage() -> None:
    for name in COMMANDS:
        assert module(name).run
        assert summary(name) and not summary(name).startswith("``")
        assert usage(name).startswith(f"%chat {name}")


def test_help_is_built_from_the_commands(ctx: Context) -> None:
    text = str(run(ctx, "help"))
    for name in COMMANDS[1:]:
        assert usage(name) in text
        assert summary(name) in text
    assert str(run(ctx, "")) == text


def test_history_threads_usage_undo_reset(ctx: Context, capsys: Any) -> None:
    table = run(ctx, "history")
    assert table.rows[0][1:3] == ("What is a monad?", "A *burrito*, some say.")
    assert [row[0] for row in run(ctx, "threads").rows] == ["default"]
    assert dict(run(ctx, "usage").rows)["total"] == 0
    run(ctx, "undo")
    assert ctx.session.thread().turns == []
    run(ctx, "system -t other Be terse.")
    run(ctx, "reset --all")
    assert "Reset all threads." in capsys.readouterr().out


def test_system_takes_the_thread_before_or_after_the_text(ctx: Context) -> None:
    run(ctx, "system -t x You are thread X.")
    run(ctx, "system You are thread Y. -t y")
    run(ctx, "system It's plain text, isn't it?")
    assert ctx.session.thread("x").system_prompt == "You are thread X."
    assert ctx.session.thread("y").system_prompt == "You are thread Y."
    assert ctx.session.thread().system_prompt == "It's plain text, isn't it?"


def test_config_reads_the_settings(ctx: Context) -> None:
    ctx.session.settings.set("temperature", 0.3)
    rows = {row[0]: row[1:] for row in run(ctx, "config").rows}
    assert rows["temperature"] == ("0.3", "%config")
    assert rows["max_tokens"] == ("2000", "default")
    assert rows["credential"][0] == "(none)"


def test_save_and_load_round_trip(ctx: Context, tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    run(ctx, f"save {path}")
    run(ctx, "reset")
    run(ctx, f"load {path}")
    assert ctx.session.thread().turns[0].reply == "A *burrito*, some say."


def test_restore_without_a_known_notebook_says_how(ctx: Context) -> None:
    with pytest.raises(UsageProblem, match="restore PATH.ipynb"):
        run(ctx, "restore")


@pytest.mark.parametrize("line, message", [
    ("bogus", "Unknown command %chat bogus"),
    ("history --nope", "unrecognized arguments: --nope"),
    ("history -t missing", "No thread named 'missing'"),
    ("reset -t a --all", "either -t THREAD or --all"),
])
def test_bad_commands_are_one_line(ctx: Context, line: str, message: str) -> None:
    with pytest.raises(UsageProblem) as err:
        run(ctx, line)
    assert message in str(err.value) and "\n" not in str(err.value)


# -- issue 25: the bundled notebooks go offline by themselves only when they must -------
def test_offline_if_needed_uses_the_service_when_credentials_are_set(
    shell: Any, emulator: Emulator, capsys: Any
) -> None:
    shell.run_line_magic("chat", "offline --if-needed")
    assert "Credentials found (env YC_API_KEY): replies come from YandexGPT" in (
        capsys.readouterr().out)
    assert magics_of(shell).live.offline is None
    shell.run_cell("%%chat\nHi").raise_error()
    assert len(emulator.completions) == 1  # the service (here the test's emulator) answered


def test_offline_if_needed_goes_offline_and_says_so_without_credentials(
    bare_shell: Any, capsys: Any
) -> None:
    bare_shell.run_line_magic("chat", "offline --if-needed")
    out = capsys.readouterr().out
    assert out.startswith("No credentials found: replies now come from the built-in offline "
                          "emulator")
    assert "Set YC_API_KEY and YC_FOLDER_ID" in out
    assert magics_of(bare_shell).live.offline is not None
    bare_shell.run_cell("%%chat\nHi").raise_error()
    assert "offline emulator" in capsys.readouterr().out


def test_a_misspelt_command_gets_did_you_mean(ctx: Context) -> None:
    with pytest.raises(UsageProblem, match=r"Unknown command %chat histroy; did you mean "
                                           r"%chat history\?"):
        run(ctx, "histroy")
    with pytest.raises(UsageProblem) as unknown:
        run(ctx, "frobnicate")
    assert "did you mean" not in str(unknown.value) and "history" in str(unknown.value)


def test_one_turn_is_one_turn(ctx: Context, tmp_path: Path, capsys: Any) -> None:
    path = tmp_path / "t.md"
    run(ctx, f"save {path}")
    assert "Saved 1 turn of 'default'" in capsys.readouterr().out
    run(ctx, f"load {path}")
    assert "'default' (1 turn)" in capsys.readouterr().out
    assert run(ctx, "history").title == "Thread 'default': 1 turn"
    run(ctx, f"replay {path}")
    assert "Replaying 1 recorded turn from" in capsys.readouterr().out
