"""``service/sdk_loop.py``: what every live backend shares. Work runs on the backend's own
loop thread and is yielded to the caller's; Stop, a first-answer timeout or closing the
generator cancels it there at once; a failure leaves as one scrubbed line."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from yagpt_magic.core.errors import ChatError, Interrupted, ServiceError
from yagpt_magic.service.connection import Connection, Credential
from yagpt_magic.service.sdk_loop import SDKLoop, sdk_arguments

KEY = "AQVNsdk-loop-test-key-0123456789"


def connection(**changes: Any) -> Connection:
    values: dict[str, Any] = {"credential": Credential("api_key", KEY, "env YC_API_KEY"),
                              "folder_id": "b1gtest", "endpoint": "127.0.0.1:1", **changes}
    return Connection(**values)


@pytest.fixture
def loop() -> Any:
    backend = SDKLoop(connection())
    yield backend
    backend.close()


def test_what_the_coroutine_puts_arrives_in_order_in_the_callers_thread(loop: SDKLoop) -> None:
    where: list[str] = []

    async def produce(put: Callable[[Any], None]) -> None:
        where.append(threading.current_thread().name)
        for piece in ("Hel", "lo", "!"):
            put(piece)
            await asyncio.sleep(0)

    assert list(loop.drive(produce)) == ["Hel", "lo", "!"]
    assert where == ["yagpt-magic-backend"]


def test_stop_cancels_the_work_on_the_loop_at_once(loop: SDKLoop) -> None:
    cancelled = threading.Event()
    stop = threading.Event()

    async def produce(put: Callable[[Any], None]) -> None:
        put("started")
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    began = time.monotonic()
    with pytest.raises(Interrupted):
        for _ in loop.drive(produce, cancel=stop):
            stop.set()
    assert time.monotonic() - began < 2
    assert cancelled.wait(2)


def test_closing_the_generator_cancels_the_work_too(loop: SDKLoop) -> None:
    cancelled = threading.Event()

    async def produce(put: Callable[[Any], None]) -> None:
        put("first")
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    items = loop.drive(produce)
    assert next(items) == "first"
    items.close()
    assert cancelled.wait(2)


def test_no_first_answer_in_time_is_the_services_deadline(loop: SDKLoop) -> None:
    async def produce(put: Callable[[Any], None]) -> None:
        await asyncio.sleep(30)

    began = time.monotonic()
    with pytest.raises(ServiceError) as late:
        list(loop.run(produce, first_timeout=0.3))
    assert 0.3 <= time.monotonic() - began < 2
    assert "\n" not in str(late.value)


def test_a_failure_on_the_loop_is_one_line_without_the_key(loop: SDKLoop) -> None:
    async def produce(put: Callable[[Any], None]) -> None:
        raise RuntimeError(f"header Api-Key {KEY} was refused\nsecond line")

    with pytest.raises(ChatError) as failed:
        list(loop.drive(produce))
    message = str(failed.value)
    assert "RuntimeError" in message and "127.0.0.1:1" in message
    assert KEY not in message and "\n" not in message
    assert KEY not in repr(failed.value.__cause__)


def test_close_leaves_no_thread_and_a_second_close_is_harmless() -> None:
    backend = SDKLoop(connection())
    before = set(threading.enumerate())

    async def produce(put: Callable[[Any], None]) -> None:
        put(1)

    assert list(backend.drive(produce)) == [1]
    mine = [t for t in threading.enumerate() if t not in before]
    assert [t.name for t in mine] == ["yagpt-magic-backend"]
    backend.close()
    backend.close()
    assert not mine[0].is_alive()


def test_the_sdk_gets_the_connection_with_one_attempt_and_both_addresses() -> None:
    arguments = sdk_arguments(connection(insecure=True, data_logging=True,
                                         chat_endpoint="http://127.0.0.1:2/v1/"))
    assert type(arguments["auth"]).__name__ == "APIKeyAuth"
    assert arguments["retry_policy"].max_attempts == 1
    assert arguments["folder_id"] == "b1gtest" and arguments["endpoint"] == "127.0.0.1:1"
    assert arguments["service_map"] == {"http_completions": "http://127.0.0.1:2/v1/"}
    assert arguments["verify"] is False and arguments["enable_server_data_logging"] is True
    plain = sdk_arguments(connection(endpoint=None))
    assert "endpoint" not in plain and "service_map" not in plain and "verify" not in plain
