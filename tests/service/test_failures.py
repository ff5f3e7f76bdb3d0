"""``service/failures.py``: every status becomes one domain error, with what it means."""

from __future__ import annotations

import grpc
import pytest

from yagpt_magic.core.backend import Request, RequestOptions
from yagpt_magic.core.errors import ServiceError
from yagpt_magic.emulator import Emulator
from yagpt_magic.service.connection import Connection, Credential
from yagpt_magic.service.failures import http_error, service_error
from yagpt_magic.service.text_generation import TextGenerationBackend

from ..conftest import TEST_API_KEY

CONNECTION = Connection(Credential("api_key", TEST_API_KEY, "test"), "b1gtest",
                        "127.0.0.1:1", insecure=True, timeout=5.0)


def kind_of(code: str, details: str = "") -> str:
    return service_error(code, details, endpoint="e", folder="f", timeout=1.0,
                         secrets=()).kind


@pytest.mark.parametrize(("code", "details", "kind"), [
    ("UNAUTHENTICATED", "", "auth"),
    ("PERMISSION_DENIED", "", "permission"),
    ("RESOURCE_EXHAUSTED", "rate limit", "quota"),
    ("RESOURCE_EXHAUSTED", "message larger than max (5000000 vs. 4194304)", "too_large"),
    ("INVALID_ARGUMENT", "Number of input tokens must be no more than 8192, got 9000",
     "context_overflow"),
    ("INVALID_ARGUMENT", "Error in session x: unknown model gpt://b1g/nope", "unknown_model"),
    ("INVALID_ARGUMENT", "temperature out of range", "invalid"),
    ("UNAVAILABLE", "", "unreachable"),
    ("DEADLINE_EXCEEDED", "", "timeout"),
    ("INTERNAL", "boom", "failed"),
])
def test_a_status_means_one_kind(code: str, details: str, kind: str) -> None:
    assert kind_of(code, details) == kind


def test_an_http_status_reads_as_its_grpc_counterpart() -> None:
    for status, code in ((401, "UNAUTHENTICATED"), (429, "RESOURCE_EXHAUSTED"),
                         (503, "UNAVAILABLE")):
        error = http_error(status, f"denied for {TEST_API_KEY}", CONNECTION)
        expected = service_error(code, f"denied for {TEST_API_KEY}", endpoint="127.0.0.1:1",
                                 folder="b1gtest", timeout=5.0, secrets=[TEST_API_KEY])
        assert (error.code, error.kind, str(error)) == (code, expected.kind, str(expected))
        assert TEST_API_KEY not in str(error)


def test_the_backend_raises_the_domain_error_unary_and_async(emulator: Emulator) -> None:
    connection = Connection(Credential("api_key", TEST_API_KEY, "test"), "b1gtest",
                            emulator.address, insecure=True, timeout=5.0)
    backend = TextGenerationBackend(connection)
    messages = ({"role": "user", "text": "hi"},)
    try:
        emulator.fail(grpc.StatusCode.RESOURCE_EXHAUSTED, "rate limit exceeded")
        with pytest.raises(ServiceError) as err:
            backend.complete(Request(messages, RequestOptions(stream=False)))
        assert err.value.kind == "quota"

        async def produce(put: object) -> None:
            emulator.fail(grpc.StatusCode.UNAUTHENTICATED, "bad key")
            put(await backend.complete_async(messages, RequestOptions()))  # type: ignore[operator]

        with pytest.raises(ServiceError) as err:
            list(backend.drive(produce))
        assert err.value.kind == "auth"
    finally:
        backend.close()
