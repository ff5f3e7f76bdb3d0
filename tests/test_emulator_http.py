"""The emulator's OpenAI-compatible HTTP API beyond what the recordings show.

Refusals (status and the API's JSON error shape), credentials, quota, queued faults (also
mid-stream, which the SDK raises), ``max_tokens``, images, scripted replies, recordings,
streaming that flushes chunk by chunk, many concurrent requests, and a stop that leaves
no thread behind. Raw httpx where the wire is the point, the SDK where a user's view is.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest

from yagpt_magic.emulator import Emulator
from yagpt_magic.emulator.openai_http import ChatHTTPServer

from .conftest import TEST_API_KEY

FOLDER = "b1gtest"
IAM_TOKEN = "t1.test-iam-token"
QWEN = f"gpt://{FOLDER}/qwen3-235b-a22b-fp8/latest"
GEMMA = f"gpt://{FOLDER}/gemma-3-27b-it/latest"
YANDEXGPT = f"gpt://{FOLDER}/yandexgpt/latest"
# A 1x1 PNG.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)


@pytest.fixture
def served() -> Iterator[tuple[Emulator, ChatHTTPServer]]:
    with Emulator(api_key=TEST_API_KEY, iam_token=IAM_TOKEN) as emu:
        yield emu, emu.http


@pytest.fixture
def client(served: tuple[Emulator, ChatHTTPServer]) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Api-Key {TEST_API_KEY}"}
    with httpx.Client(base_url=served[1].url, headers=headers, timeout=30) as c:
        yield c


def _body(model: str = QWEN, text: str = "hello", **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": text}], **extra}


def _events(response: httpx.Response) -> list[Any]:
    blocks = [b for b in response.text.split("\n\n") if b.strip()]
    return [b[6:] if b[6:] == "[DONE]" else json.loads(b[6:]) for b in blocks]


def _sdk(emu: Emulator, http: ChatHTTPServer, **overrides: Any) -> Any:
    from yandex_ai_studio_sdk import AIStudio
    from yandex_ai_studio_sdk.retry import RetryPolicy

    kwargs: dict[str, Any] = {
        "folder_id": FOLDER,
        "auth": TEST_API_KEY,
        "endpoint": emu.address,
        "verify": False,
        "service_map": {"http_completions": http.url},
        "retry_policy": RetryPolicy(max_attempts=1),
    }
    kwargs.update(overrides)
    return AIStudio(**kwargs)


# -- refusals --------------------------------------------------------------------------


def _image_message(model: str) -> dict[str, Any]:
    url = "data:image/png;base64," + base64.b64encode(PNG).decode()
    parts = [{"type": "text", "text": "what is this?"},
             {"type": "image_url", "image_url": {"url": url}}]
    return {"model": model, "messages": [{"role": "user", "content": parts}]}


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        (_body("gpt://b1gtest/llama-9000/latest"), 404, "does not exist"),
        (_body("gpt://b1gtest/yandexgpt/deprecated"), 404, "does not exist"),
        (_body("gpt://b1gtest/yandexgpt-lite/latest@tamr1234"), 400, "invalid model uri"),
        (_body("yandexgpt"), 400, "invalid model uri"),
        ({"model": QWEN, "messages": []}, 400, "messages must not be empty"),
        ({"model": QWEN, "messages": [{"role": "robot", "content": "x"}]}, 400, "robot"),
        (_image_message(QWEN), 400, "does not support image"),
        (
            {"model": QWEN, "messages": [{"role": "user", "content": "x"},
                                         {"role": "tool", "content": "1", "tool_call_id": "n"}]},
            400, "tool_call_id",
        ),
        (_body(response_format={"type": "xml"}), 400, "response_format"),
        (_body(reasoning_effort="extreme"), 400, "reasoning_effort"),
        (_body(tools=[{"type": "function", "function": {"name": "f", "parameters": {}}}],
               tool_choice={"type": "function", "function": {"name": "g"}}), 400, "'g'"),
        (_body(max_tokens=0), 400, "max_tokens"),
    ],
    ids=["unknown", "grpc-only version", "fine-tune", "not a URI", "no messages", "bad role",
         "image to a text model", "orphan tool result", "bad response_format",
         "bad reasoning_effort", "tool_choice not offered", "max_tokens 0"],
)
def test_bad_requests_are_refused_in_the_api_shape(
    client: httpx.Client, body: dict[str, Any], status: int, words: str
) -> None:
    response = client.post("chat/completions", json=body)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert words in error["message"]


def test_malformed_json_is_a_bad_request(client: httpx.Client) -> None:
    response = client.post("chat/completions", content=b"{not json")
    assert response.status_code == 400
    assert "not valid JSON" in response.json()["error"]["message"]


def test_credentials_are_checked(served: tuple[Emulator, ChatHTTPServer]) -> None:
    url = served[1].url
    for header, status in [
        ({"Authorization": "Api-Key wrong"}, 401),
        ({}, 401),
        ({"Authorization": f"Bearer {IAM_TOKEN}"}, 200),
        ({"Authorization": f"Api-Key {TEST_API_KEY}"}, 200),
    ]:
        response = httpx.post(f"{url}chat/completions", json=_body(), headers=header)
        assert response.status_code == status, header
        listed = httpx.get(f"{url}models", headers=header)
        assert listed.status_code == status
    refused = httpx.post(f"{url}chat/completions", json=_body(),
                         headers={"Authorization": "Api-Key wrong"})
    assert refused.json()["error"]["type"] == "authentication_error"


def test_a_model_only_one_api_serves_is_refused_by_the_other(
    served: tuple[Emulator, ChatHTTPServer],
) -> None:
    emu, http = served
    sdk = _sdk(emu, http)
    with pytest.raises(Exception, match="invalid model_uri"):
        sdk.models.completions("qwen3-235b-a22b-fp8").run("hi")
    with pytest.raises(httpx.HTTPStatusError) as caught:
        sdk.chat.completions("yandexgpt", model_version="deprecated").run("hi")
    assert caught.value.response.status_code == 404


def test_the_context_window_is_the_models_own_unless_a_test_lowers_it(
    served: tuple[Emulator, ChatHTTPServer], client: httpx.Client
) -> None:
    emu = served[0]
    long_text = "word " * 9000  # ~9000 tokens: over 8192, under every model's window
    assert client.post("chat/completions", json=_body(text=long_text)).status_code == 200
    emu.context_window = 8192
    refused = client.post("chat/completions", json=_body(text=long_text))
    assert refused.status_code == 400
    assert "number of input tokens must be no more than 8192" in refused.json()["error"]["message"]


def test_the_folder_quota_answers_429(
    served: tuple[Emulator, ChatHTTPServer], client: httpx.Client
) -> None:
    emu = served[0]
    emu.quota_rps = 1
    statuses = [client.post("chat/completions", json=_body()).status_code for _ in range(3)]
    assert statuses[0] == 200 and 429 in statuses
    refused = client.post("chat/completions", json=_body())
    assert refused.status_code == 429
    assert "rate quota limit exceed" in refused.json()["error"]["message"]
    assert emu.rejected >= 2


# -- faults ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "status"),
    [(grpc.StatusCode.UNAVAILABLE, 503), (grpc.StatusCode.INTERNAL, 500),
     (grpc.StatusCode.PERMISSION_DENIED, 403), (grpc.StatusCode.RESOURCE_EXHAUSTED, 429),
     (grpc.StatusCode.DEADLINE_EXCEEDED, 504)],
)
def test_a_queued_fault_answers_its_http_status(
    served: tuple[Emulator, ChatHTTPServer], client: httpx.Client,
    code: grpc.StatusCode, status: int,
) -> None:
    emu = served[0]
    emu.fail(code, "it broke for {authorization}", method="ChatCompletion")
    response = client.post("chat/completions", json=_body())
    assert response.status_code == status
    assert response.json()["error"]["message"] == f"it broke for Api-Key {TEST_API_KEY}"
    assert client.post("chat/completions", json=_body()).status_code == 200, "only once"


def test_a_mid_stream_fault_reaches_the_sdk_after_the_chunks_sent(
    served: tuple[Emulator, ChatHTTPServer],
) -> None:
    from yandex_ai_studio_sdk._exceptions import HttpSseError

    emu, http = served
    emu.fail(grpc.StatusCode.INTERNAL, "stream broke", after_chunks=4, method="ChatCompletion")
    received = []
    with pytest.raises(HttpSseError, match="stream broke"):
        for chunk in _sdk(emu, http).chat.completions("qwen3-235b-a22b-fp8").run_stream("hi"):
            received.append(chunk)
    assert len(received) == 3, "role chunk (not yielded by the SDK) and three tokens"


# -- what a reply holds -------------------------------------------------------------------


def test_max_tokens_finishes_with_length(served: tuple[Emulator, ChatHTTPServer]) -> None:
    emu, http = served
    sdk = _sdk(emu, http)
    for name in ("qwen3-235b-a22b-fp8", "yandexgpt"):
        model = sdk.chat.completions(name).configure(max_tokens=10)
        result = model.run("How to calculate the Hirsch index in O(N)")
        assert result.finish_reason.name == "LENGTH" and result.usage.completion_tokens == 10
    last = list(sdk.chat.completions("yandexgpt").configure(max_tokens=10).run_stream("hi"))[-1]
    assert last.finish_reason.name == "LENGTH"


def test_an_image_costs_256_tokens_and_the_reply_names_it(client: httpx.Client) -> None:
    with_image = client.post("chat/completions", json=_image_message(GEMMA)).json()
    text_only = client.post("chat/completions", json=_body(GEMMA, "what is this?")).json()
    assert with_image["usage"]["prompt_tokens"] - text_only["usage"]["prompt_tokens"] == 256
    digest = hashlib.sha256(PNG).hexdigest()[:8]
    assert digest in with_image["choices"][0]["message"]["content"]


def test_an_emoji_streams_after_empty_deltas_as_recorded(
    served: tuple[Emulator, ChatHTTPServer], client: httpx.Client
) -> None:
    served[0].reply_with("a duck 🦆!")
    events = _events(client.post("chat/completions", json=_body(stream=True)))
    deltas = [e["choices"][0]["delta"].get("content") for e in events[1:-3]]
    assert deltas == ["a", " duck", "", "", " 🦆", "!"]


def test_scripted_replies_and_calls_come_back_in_this_apis_shape(
    served: tuple[Emulator, ChatHTTPServer], client: httpx.Client
) -> None:
    emu = served[0]
    emu.call_tools([("lookup", {"q": "x"})])
    body = client.post("chat/completions", json=_body()).json()
    call = body["choices"][0]["message"]["tool_calls"][0]
    assert call["id"].startswith("chatcmpl-tool-") and call["function"] == {
        "name": "lookup", "arguments": '{"q": "x"}'}
    assert body["choices"][0]["finish_reason"] == "tool_calls"
    emu.reply_with("filtered", status="CONTENT_FILTER")
    body = client.post("chat/completions", json=_body(YANDEXGPT)).json()
    assert body["choices"][0]["finish_reason"] == "content_filter"


def test_requests_are_recorded_like_grpc_ones(
    served: tuple[Emulator, ChatHTTPServer], client: httpx.Client
) -> None:
    emu = served[0]
    messages = [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "what is 2+2"},
        {"role": "assistant", "tool_calls": [{"id": "c1", "type": "function",
                                              "function": {"name": "add", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "4"},
    ]
    client.post("chat/completions",
                json={"model": QWEN, "messages": messages, "temperature": 0.3, "stream": True})
    recorded = [r for r in emu.requests if r.method == "ChatCompletion"][-1]
    assert recorded.model_uri == QWEN
    assert recorded.messages == [("system", "be brief"), ("user", "what is 2+2"),
                                 ("assistant", "add({})"), ("user", "add: 4")]
    assert recorded.options["stream"] is True and recorded.options["temperature"] == 0.3
    assert recorded.metadata["authorization"] == f"Api-Key {TEST_API_KEY}"
    assert recorded.options["reasoning_effort"] is None


def test_the_reasoning_effort_asked_for_is_recorded(
    served: tuple[Emulator, ChatHTTPServer], client: httpx.Client
) -> None:
    client.post("chat/completions", json=_body(reasoning_effort="high"))
    recorded = [r for r in served[0].requests if r.method == "ChatCompletion"][-1]
    assert recorded.options["reasoning_effort"] == "high"


# -- serving -----------------------------------------------------------------------------


def test_a_stream_is_flushed_chunk_by_chunk(
    served: tuple[Emulator, ChatHTTPServer], client: httpx.Client
) -> None:
    served[0].chunk_delay = 0.05
    started = time.monotonic()
    arrivals = []
    with client.stream("POST", "chat/completions", json=_body(YANDEXGPT, stream=True)) as r:
        for line in r.iter_lines():
            if line.startswith("data: "):
                arrivals.append(time.monotonic() - started)
    assert len(arrivals) >= 4
    assert arrivals[-1] - arrivals[0] >= 0.05 * (len(arrivals) - 3), "spread out, not buffered"


def test_many_requests_are_served_at_once(
    served: tuple[Emulator, ChatHTTPServer],
) -> None:
    emu, http = served
    emu.delay = 0.3
    headers = {"Authorization": f"Api-Key {TEST_API_KEY}"}
    limits = httpx.Limits(max_connections=20)
    with httpx.Client(base_url=http.url, headers=headers, limits=limits, timeout=30) as shared:

        models = (QWEN, GEMMA, YANDEXGPT, f"gpt://{FOLDER}/gpt-oss-20b/latest")

        def one(i: int) -> int:  # five on each model: within its 10 concurrent generations
            body = _body(models[i % 4], f"question {i}", stream=bool(i % 3))
            return shared.post("chat/completions", json=body).status_code

        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=20) as pool:
            statuses = list(pool.map(one, range(20)))
        elapsed = time.monotonic() - started
    assert statuses == [200] * 20
    assert elapsed < 0.3 * 20 / 2, "served concurrently, not one after another"


def test_stop_ends_open_connections_and_leaves_no_thread(
    served: tuple[Emulator, ChatHTTPServer],
) -> None:
    emu, http = served
    before = {t.ident for t in threading.enumerate()}
    idle = httpx.Client(base_url=http.url, headers={"Authorization": f"Api-Key {TEST_API_KEY}"})
    assert idle.post("chat/completions", json=_body()).status_code == 200  # kept alive
    emu.chunk_delay = 5.0
    outcome: list[BaseException] = []

    def stream_forever() -> None:
        try:
            httpx.post(f"{http.url}chat/completions", json=_body(stream=True),
                       headers={"Authorization": f"Api-Key {TEST_API_KEY}"})
        except httpx.TransportError as err:
            outcome.append(err)

    stuck = threading.Thread(target=stream_forever)
    stuck.start()
    time.sleep(0.3)
    started = time.monotonic()
    http.stop()
    assert time.monotonic() - started < 3
    stuck.join(5)
    assert outcome, "the stream in flight was cut off by the stop"
    idle.close()
    left = [t for t in threading.enumerate() if t.ident not in before and t.is_alive()]
    assert not [t for t in left if t.name.startswith(("yagpt-emulator-http", "Thread"))], left
    http.stop()  # twice is fine


def test_the_emulator_serves_both_apis_and_stops_both() -> None:
    emu = Emulator(api_key=TEST_API_KEY).start()
    try:
        assert emu.chat_url == f"http://{emu.http_address}/v1/"
        assert emu.http_address != emu.address
        headers = {"Authorization": f"Api-Key {TEST_API_KEY}"}
        assert httpx.get(f"{emu.chat_url}models", headers=headers).status_code == 200
    finally:
        emu.stop()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{emu.chat_url}models", headers=headers)
    emu.stop()


def test_a_taken_http_port_fails_the_start_and_frees_the_grpc_port() -> None:
    with Emulator() as first:
        taken = int(first.http_address.rsplit(":", 1)[1])
        second = Emulator(http_port=taken)
        with pytest.raises(OSError):
            second.start()
        with Emulator(port=second.port):  # the gRPC port it had bound is free again
            pass


def test_the_command_line_prints_both_addresses() -> None:
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(root)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "yagpt_magic.emulator", "--port", "0", "--api-key", "cli-key"],
        stdout=subprocess.PIPE, text=True, env=env,
    )
    try:
        assert proc.stdout is not None
        first, second = proc.stdout.readline(), proc.stdout.readline()
        assert re.fullmatch(r"yagpt-magic emulator listening on 127\.0\.0\.1:\d+\n", first)
        match = re.fullmatch(
            r"OpenAI-compatible HTTP API at (http://127\.0\.0\.1:\d+/v1/)\n", second
        )
        assert match, second
        listed = httpx.get(f"{match.group(1)}models", headers={"Authorization": "Api-Key cli-key"})
        assert listed.status_code == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0


# -- the service's limits and service time apply to this API too ---------------------------


def test_the_eleventh_generation_on_a_model_is_refused_across_both_apis(
    served: tuple[Emulator, ChatHTTPServer],
) -> None:
    emu, http = served
    grpc_model = _sdk(emu, http).models.completions("yandexgpt", model_version="latest")
    grpc_model.run("warm up")  # discovery and the channel, out of the burst
    emu.delay = 1.5
    headers = {"Authorization": f"Api-Key {TEST_API_KEY}"}
    limits = httpx.Limits(max_connections=20)
    barrier = threading.Barrier(11)
    with httpx.Client(base_url=http.url, headers=headers, limits=limits, timeout=30) as shared:

        def over_http(i: int) -> str:
            barrier.wait()
            response = shared.post("chat/completions", json=_body(YANDEXGPT, f"q{i}"))
            return "ok" if response.status_code == 200 else response.json()["error"]["message"]

        def over_grpc() -> str:
            barrier.wait()
            try:
                grpc_model.run("one more")
            except grpc.aio.AioRpcError as err:
                assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
                return err.details() or ""
            return "ok"

        with ThreadPoolExecutor(11) as pool:
            http_outcomes = [pool.submit(over_http, i) for i in range(10)]
            grpc_outcome = pool.submit(over_grpc)
            outcomes = [f.result() for f in http_outcomes] + [grpc_outcome.result()]
    refused = [o for o in outcomes if o != "ok"]
    assert refused == [
        "ai.textGenerationCompletionConcurrentGenerations.count quota limit exceed: "
        "allowed 10 concurrent generations"
    ], "eleven generations on one model over the two APIs: one is refused"
    emu.delay = 0.0
    emu.limits.concurrent_generations = 1
    emu.chunk_delay = 1.0
    with httpx.Client(base_url=http.url, headers=headers, timeout=30) as one, one.stream(
        "POST", "chat/completions", json=_body(stream=True)
    ) as holding:
        next(holding.iter_lines())  # the stream holds the only slot
        refused = httpx.post(f"{http.url}chat/completions", json=_body(), headers=headers)
    assert refused.status_code == 429
    assert "allowed 1 concurrent generations" in refused.json()["error"]["message"]


def test_replies_take_the_drawn_service_time(
    served: tuple[Emulator, ChatHTTPServer], client: httpx.Client
) -> None:
    from yagpt_magic.emulator.service_time import ServiceTime

    emu = served[0]
    client.post("chat/completions", json=_body())  # the connection, out of the timing
    emu.service_time = ServiceTime(first_token=0.3, per_token=0.01, sigma=0.0)
    text = " ".join(["word"] * 30)
    emu.reply_with(text, times=2)
    started = time.monotonic()
    client.post("chat/completions", json=_body(YANDEXGPT))
    assert time.monotonic() - started == pytest.approx(0.3 + 30 * 0.01, abs=0.15)
    started = time.monotonic()
    arrivals = []
    with client.stream("POST", "chat/completions", json=_body(stream=True)) as response:
        for line in response.iter_lines():
            if line.startswith("data: "):
                arrivals.append(time.monotonic() - started)
    assert arrivals[0] >= 0.3, "the first chunk comes after the first token's time"
    assert arrivals[-1] == pytest.approx(0.3 + 30 * 0.01, abs=0.15)
