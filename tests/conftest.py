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
