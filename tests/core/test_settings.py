"""``Settings``: plain data the session owns, fed by the ``ChatMagics`` traitlets."""

from __future__ import annotations

from typing import Any

import pytest
from traitlets.config import Config

from yagpt_magic.core.settings import NAMES, Settings

from ..conftest import magics_of


def test_every_traitlet_setting_is_a_settings_field() -> None:
    from yagpt_magic.ipython.magics import ChatMagics

    traits = set(ChatMagics.class_trait_names(config=True))
    assert set(NAMES) == traits


def test_config_changes_reach_the_session_settings(shell: Any) -> None:
    magics = magics_of(shell)
    settings = magics.session.settings
    assert settings.source("temperature") == "default"
    shell.run_cell("%config ChatMagics.temperature = 0.2").raise_error()
    shell.run_cell("%config ChatMagics.image_hosts = ['example.org']").raise_error()
    assert settings.temperature == 0.2
    assert settings.image_hosts == ("example.org",)
    assert settings.source("temperature") == "%config"
    assert magics.session.options().temperature == 0.2


def test_values_from_a_config_file_are_marked_configured(clean_env: Any) -> None:
    from IPython.core.interactiveshell import InteractiveShell

    InteractiveShell.clear_instance()
    config = Config()
    config.ChatMagics.model = "yandexgpt-lite"
    shell = InteractiveShell.instance(config=config)
    try:
        shell.run_line_magic("load_ext", "yagpt_magic")
        settings = magics_of(shell).settings
        assert settings.model == "yandexgpt-lite"
        assert settings.source("model") == "%config"
        assert settings.source("max_tokens") == "default"
        shell.run_line_magic("unload_ext", "yagpt_magic")
    finally:
        InteractiveShell.clear_instance()


def test_a_new_thread_takes_the_configured_system_prompt_once(shell: Any) -> None:
    shell.run_cell("%config ChatMagics.system_prompt = 'Be brief.'").raise_error()
    session = magics_of(shell).session
    assert session.thread("fresh").system_prompt == "Be brief."
    session.set_system("fresh", "Be long.")
    assert session.thread("fresh").system_prompt == "Be long."  # not re-applied


def test_unknown_setting_is_refused() -> None:
    with pytest.raises(AttributeError):
        Settings().set("api_key", "x")


def test_each_traitlet_takes_its_default_and_help_from_the_settings() -> None:
    from yagpt_magic.core.settings import SPECS
    from yagpt_magic.ipython.magics import ChatMagics

    defaults = Settings()
    for name, trait in ChatMagics.class_traits(config=True).items():
        default = trait.default()
        assert (tuple(default) if isinstance(default, list) else default) == getattr(defaults, name)
        assert trait.help == SPECS[name].help and trait.help


@pytest.mark.parametrize(("name", "bad", "good"), [
    ("temperature", 1.5, 1.0), ("max_tokens", 0, 1), ("context_window", -1, 0),
    ("timeout", 0.0, 0.5), ("max_tool_rounds", 0, 1), ("tool_result_limit", -5, 10),
    ("max_concurrency", 0, 1),
])
def test_one_range_check_refuses_a_bad_value_in_config_and_in_the_settings(
    shell: Any, caplog: pytest.LogCaptureFixture, name: str, bad: Any, good: Any,
) -> None:
    from yagpt_magic.core.settings import problem

    magics = magics_of(shell)
    rule = problem(name, bad)
    assert rule is not None and rule.startswith(f"{name} must be ")
    assert problem(name, good) is None
    shell.run_cell(f"%config ChatMagics.{name} = {bad!r}")
    assert [r.getMessage() for r in caplog.records] == [rule]
    assert getattr(magics.settings, name) == getattr(Settings(), name)
    with pytest.raises(ValueError, match=rule):
        magics.settings.set(name, bad)
    with pytest.raises(ValueError, match=rule):
        Settings(**{name: bad})
    shell.run_cell(f"%config ChatMagics.{name} = {good!r}").raise_error()
    assert getattr(magics.settings, name) == good


def test_a_per_cell_flag_is_refused_by_its_settings_rule(shell: Any) -> None:
    from ..conftest import fails

    assert fails(shell, "%%chat --temperature 1.5\nhello") == (
        "--temperature must be between 0 and 1, not 1.5.")
    assert fails(shell, "%%chat --max-tokens -3\nhello") == (
        "--max-tokens must be a positive number of tokens, not -3.")
    shell.user_ns["items"] = ["a", "b"]
    assert fails(shell, "%%chat --map items --concurrency 0\n{item}") == (
        "--concurrency must be a positive number of requests, not 0.")
