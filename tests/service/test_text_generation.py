"""``TextGenerationBackend``: the one module that talks to the SDK, against the emulator."""

from __future__ import annotations

import socket
import threading
import time

import grpc
import pytest

from yagpt_magic.core.backend import Request, RequestOptions
from yagpt_magic.core.errors import Interrupted, ServiceError
from yagpt_magic.emulator import Emulator, reply_for
from yagpt_magic.service.connection import Connection, Credential
from yagpt_magic.service.text_generation import TextGenerationBackend

from ..conftest import TEST_API_KEY

MESSAGES = [{"role": "user", "text": "What is a monad?"}]


def asking(options: RequestOptions) -> Request:
    """The request every test here sends, with ``options``."""
    return Request(tuple(MESSAGES), options)


def backend_for(address: str, *, timeout: float = 5.0) -> TextGenerationBackend:
    credential = Credential("api_key", TEST_API_KEY, "test")
    connection = Connection(credential, "b1gtest", address, insecure=True, timeout=timeout)
    return TextGenerationBackend(connection)


@pytest.fixture
def backend(emulator: Emulator) -> TextGenerationBackend:
    found = backend_for(emulator.address)
    yield found
    found.close()


def test_unary_and_streamed_replies_agree(
    backend: TextGenerationBackend, emulator: Emulator
) -> None:
    seen: list[str] = []
    streamed = backend.complete(asking(RequestOptions()), on_text=seen.append)
    unary = backend.complete(asking(RequestOptions(stream=False)))
    expected = reply_for("gpt://b1gtest/yandexgpt/latest", [("user", "What is a monad?")])
    assert streamed.text == unary.text == expected
    assert len(seen) > 1 and seen[-1] == expected  # cumulative text, growing
    assert all(expected.startswith(part) for part in seen)
    assert streamed.status == "final" and streamed.usage.input_tokens > 0
    assert streamed.model_uri == "gpt://b1gtest/yandexgpt/latest"


def test_count_uses_the_models_tokenizer(
    backend: TextGenerationBackend, emulator: Emulator
) -> None:
    assert backend.count(MESSAGES, RequestOptions()) > 0
    assert emulator.tokenize_calls == 1


def test_a_service_error_is_one_scrubbed_line(
    backend: TextGenerationBackend, emulator: Emulator
) -> None:
    emulator.fail(grpc.StatusCode.PERMISSION_DENIED, "denied for {authorization}")
    with pytest.raises(ServiceError) as err:
        backend.complete(asking(RequestOptions()))
    assert err.value.code == "PERMISSION_DENIED"
    assert TEST_API_KEY not in str(err.value) and "\n" not in str(err.value)


def test_a_closed_port_fails_fast_naming_the_endpoint() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    backend = backend_for(f"127.0.0.1:{port}")
    started = time.monotonic()
    try:
        with pytest.raises(ServiceError) as err:
            backend.complete(asking(RequestOptions()))
    finally:
        backend.close()
    assert f"127.0.0.1:{port}" in str(err.value)
    assert time.monotonic() - started < 10


def test_cancel_stops_the_stream_and_the_rpc(
    backend: TextGenerationBackend, emulator: Emulator
) -> None:
    emulator.chunk_delay = 0.2
    cancel = threading.Event()

    def first_text(_text: str) -> None:
        cancel.set()

    with pytest.raises(Interrupted):
        backend.complete(asking(RequestOptions()), on_text=first_text, cancel=cancel)
    deadline = time.monotonic() + 3
    while emulator.cancelled == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert emulator.cancelled == 1


def test_close_leaves_no_thread(emulator: Emulator) -> None:
    backend = backend_for(emulator.address)
    backend.complete(asking(RequestOptions(stream=False)))
    backend.close()
    assert not [t for t in threading.enumerate() if t.name == "yagpt-magic-backend"]
