"""Shared fixtures: the offline emulator is the test double for the service (no SDK mocks)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from yagpt_magic.emulator import Emulator

#: The API key the `emulator` fixture requires.
TEST_API_KEY = "test-key-0000"

# The SDK sets its loggers to TRACE on import; keep test output readable.
for _name in ("yandex_cloud_ml_sdk", "yandex_ai_studio_sdk"):
    logging.getLogger(_name).setLevel(logging.WARNING)


# -- the emulator ---------------------------------------------------------------


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    """A started emulator requiring TEST_API_KEY, stopped after the test."""
    emu = Emulator(api_key=TEST_API_KEY).start()
    try:
        yield emu
    finally:
        emu.stop()


@pytest.fixture
def sdk_for() -> Callable[..., Any]:
    """Build a YCloudML aimed at an emulator (or its address): plaintext, one attempt.

    ``sdk_for(emu, auth="other", endpoint=None, service_map={...})`` overrides any
    constructor argument; the default auth is TEST_API_KEY.
    """

    def build(target: Emulator | str, **overrides: Any) -> Any:
        # Imported here so tests that never touch the SDK don't pay for it.
        from yandex_cloud_ml_sdk import YCloudML
        from yandex_cloud_ml_sdk.retry import RetryPolicy

        kwargs: dict[str, Any] = {
            "folder_id": "b1gtest",
            "auth": TEST_API_KEY,
            "endpoint": target if isinstance(target, str) else target.address,
            "verify": False,
            "retry_policy": RetryPolicy(max_attempts=1),
        }
        kwargs.update(overrides)
        return YCloudML(**kwargs)

    return build


# -- fixtures for other modules go below ------------------------------------------


def emulator_env(emu: Emulator) -> dict[str, str]:
    """Environment that points the extension (in this process or a kernel) at ``emu``."""
    return {
        "YC_API_KEY": emu.api_key or "",
        "YC_FOLDER_ID": "b1gtest",
        "YC_API_ENDPOINT": emu.address,
        "YAGPT_CHAT_ENDPOINT": emu.chat_url,
        "YAGPT_INSECURE": "1",
    }


_CREDENTIAL_VARS = ("YC_API_KEY", "YC_IAM_TOKEN", "YC_OAUTH_TOKEN", "API_KEY", "IAM_TOKEN",
                    "YC_FOLDER_ID", "FOLDER_ID", "YC_API_ENDPOINT", "YAGPT_CHAT_ENDPOINT",
                    "YAGPT_INSECURE", "YAGPT_OFFLINE")


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No credential or endpoint from the machine leaks into a test."""
    for name in _CREDENTIAL_VARS:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.fixture
def bare_shell(clean_env: pytest.MonkeyPatch) -> Iterator[Any]:
    """A fresh InteractiveShell with the extension loaded and no credentials at all."""
    from IPython.core.interactiveshell import InteractiveShell

    InteractiveShell.clear_instance()
    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "yagpt_magic")
    try:
        yield shell
    finally:
        shell.run_line_magic("unload_ext", "yagpt_magic")
        shell.__dict__.pop("_yagpt_magic_threads", None)
        InteractiveShell.clear_instance()


@pytest.fixture
def shell(bare_shell: Any, emulator: Emulator, clean_env: pytest.MonkeyPatch) -> Any:
    """An InteractiveShell with the extension loaded, talking to the `emulator` fixture."""
    for name, value in emulator_env(emulator).items():
        clean_env.setenv(name, value)
    return bare_shell


def magics_of(shell: Any) -> Any:
    """The loaded ChatMagics instance, as IPython registered it."""
    return shell.magics_manager.registry["ChatMagics"]


def fails(shell: Any, code: str) -> str:
    """Run a cell that must fail with a one-line UsageError; return the message."""
    from IPython.core.error import UsageError

    result = shell.run_cell(code)
    assert isinstance(result.error_in_exec, UsageError), result.error_in_exec
    message = str(result.error_in_exec)
    assert "\n" not in message and len(message) < 400
    return message
