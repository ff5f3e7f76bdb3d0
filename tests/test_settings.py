"""``Settings``: plain data the session owns, fed by the ``ChatMagics`` traitlets."""

from __future__ import annotations

from typing import Any

import pytest
from traitlets.config import Config

from yagpt_magic.core.settings import NAMES, Settings

from .conftest import magics_of


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
