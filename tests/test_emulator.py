"""The emulator, driven through the unmodified SDK over real gRPC (no mocks)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
import pytest
from hypothesis import given
from hypothesis import strategies as st

from yagpt_magic.emulator import (
    MESSAGE_OVERHEAD,
    REQUEST_FRAMING,
    Emulator,
    count_tokens,
    reply_for,
    tokenize_text,
)

MESSAGES = [
    {"role": "system", "text": "You are a terse assistant."},
    {"role": "user", "text": "What is a monad?\nExplain with Python."},
    {"role": "assistant", "text": "A design pattern."},
    {"role": "user", "text": "Make it shorter"},
]
PAIRS = [(m["role"], m["text"]) for m in MESSAGES]
URI = "gpt://b1gtest/yandexgpt/latest"

SdkFor = Callable[..., Any]


def _model(sdk: Any, **config: Any) -> Any:
    return sdk.models.completions("yandexgpt", model_version="latest").configure(
        temperature=0.3, **config
    )


def _wait_for(predicate: Callable[[], bool], timeout: float = 3.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


# -- tokenizer and replies, no server ---------------------------------------------


@given(st.text())
def test_tokens_cover_the_text_and_cost_at_most_a_byte_each(text: str) -> None:
    tokens = tokenize_text(text)
    assert "".join(tokens) == text
    assert all(tokens)
    assert len(tokens) <= len(text.encode("utf-8"))
    assert count_tokens([("user", text)]) <= (
        len(text.encode("utf-8")) + MESSAGE_OVERHEAD + REQUEST_FRAMING)


@given(st.lists(st.tuples(st.sampled_from(["system", "user", "assistant"]), st.text())))
def test_count_is_additive_over_messages(messages: list[tuple[str, str]]) -> None:
    framed = sum(count_tokens([m]) - REQUEST_FRAMING for m in messages)
    assert count_tokens(messages) == REQUEST_FRAMING + framed


def test_tokenizer_is_about_four_characters_per_token() -> None:
    prose = "The quick brown fox jumps over the lazy dog, again and again. " * 20
    assert 3.0 <= len(prose) / len(tokenize_text(prose)) <= 6.0


def test_reply_is_deterministic_and_says_it_is_offline() -> None:
    reply = reply_for(URI, PAIRS)
    assert reply == reply_for(URI, list(PAIRS))
    assert "offline emulator" in reply
    assert "Reply to message 4: “Make it shorter”" in reply
    assert reply != reply_for(URI, PAIRS[:2])
    assert reply != reply_for("gpt://b1gtest/yandexgpt-lite/latest", PAIRS)


def test_reply_quotes_the_first_line_of_the_last_user_message_unescaped() -> None:
    long_line = "<b>x</b> " + "word " * 40
    reply = reply_for(URI, [("user", long_line + "\nsecond line"), ("assistant", "ok")])
    assert "Reply to message 1: “<b>x</b> word" in reply
    assert "second line" not in reply
    quoted = re.search(r"“(.*?)”", reply)
    assert quoted is not None
    assert len(quoted.group(1)) == 80
    assert quoted.group(1).endswith("…")


# -- completions through the SDK ---------------------------------------------------


def test_unary_completion(emulator: Emulator, sdk_for: SdkFor) -> None:
    result = _model(sdk_for(emulator), max_tokens=500).run(MESSAGES)

    assert result.text == reply_for(URI, PAIRS)
    assert result.alternatives[0].status.name == "FINAL"
    assert result.usage.input_text_tokens == count_tokens(PAIRS)
    assert result.usage.completion_tokens == len(tokenize_text(result.text))
    assert result.usage.total_tokens == result.usage.input_text_tokens + (
        result.usage.completion_tokens
    )
    [call] = emulator.completions
    assert call.method == "Completion"
    assert call.model_uri == URI
    assert call.messages == PAIRS
    assert call.options == {
        "stream": False,
        "temperature": 0.3,
        "max_tokens": 500,
        "reasoning_mode": None,
    }
    assert call.metadata["authorization"] == f"Api-Key {emulator.api_key}"


def test_streamed_completion_is_cumulative_and_ends_as_the_unary_reply(
    emulator: Emulator, sdk_for: SdkFor
) -> None:
    model = _model(sdk_for(emulator))
    parts = list(model.run_stream(MESSAGES))

    assert len(parts) >= 2
    texts = [p.text for p in parts]
    assert all(b.startswith(a) for a, b in zip(texts, texts[1:], strict=False))
    assert [p.alternatives[0].status.name for p in parts] == ["PARTIAL"] * (len(parts) - 1) + [
        "FINAL"
    ]
    assert texts[-1] == model.run(MESSAGES).text
    assert parts[-1].usage.input_text_tokens == count_tokens(PAIRS)
    assert parts[-1].usage.completion_tokens == len(tokenize_text(texts[-1]))
    assert emulator.completions[0].options["stream"] is True


def test_tokenize_agrees_with_usage(emulator: Emulator, sdk_for: SdkFor) -> None:
    model = _model(sdk_for(emulator))
    tokens = model.tokenize(MESSAGES)

    assert len(tokens) == count_tokens(PAIRS) == model.run(MESSAGES).usage.input_text_tokens
    assert sum(t.special for t in tokens) == MESSAGE_OVERHEAD * len(MESSAGES) + REQUEST_FRAMING
    assert emulator.tokenize_calls == 1
    assert len(emulator.completions) == 1


def test_deferred_run(emulator: Emulator, sdk_for: SdkFor) -> None:
    model = _model(sdk_for(emulator))
    operation = model.run_deferred(MESSAGES)
    assert operation.id.startswith("emu-op-")

    started = time.monotonic()
    result = operation.wait()
    assert time.monotonic() - started < 2
    assert result.text == reply_for(URI, PAIRS)
    assert result.usage.input_text_tokens == count_tokens(PAIRS)
    methods = [r.method for r in emulator.requests]
    assert "AsyncCompletion" in methods
    assert "OperationGet" in methods


def test_deferred_failure_is_reported_by_the_operation(emulator: Emulator, sdk_for: SdkFor) -> None:
    emulator.fail(
        grpc.StatusCode.INTERNAL, "model crashed", method="AsyncCompletion", after_chunks=1
    )
    operation = _model(sdk_for(emulator)).run_deferred(MESSAGES)
    with pytest.raises(Exception, match="model crashed"):
        operation.wait()


# -- discovery and connection ----------------------------------------------------------


def test_discovery_through_endpoint_over_plaintext(emulator: Emulator, sdk_for: SdkFor) -> None:
    _model(sdk_for(emulator)).run(MESSAGES)
    discovery = emulator.requests[0]
    assert discovery.method == "List"
    assert "authorization" not in discovery.metadata


def test_service_map_without_endpoint(emulator: Emulator, sdk_for: SdkFor) -> None:
    sdk = sdk_for(
        emulator,
        endpoint=None,
        service_map={"ai-foundation-models": emulator.address, "operation": emulator.address},
    )
    model = _model(sdk)
    assert model.run(MESSAGES).text == reply_for(URI, PAIRS)
    assert model.run_deferred(MESSAGES).wait().text == reply_for(URI, PAIRS)
    assert "List" not in [r.method for r in emulator.requests]


def test_data_logging_header_is_recorded(emulator: Emulator, sdk_for: SdkFor) -> None:
    _model(sdk_for(emulator, enable_server_data_logging=False)).run(MESSAGES)
    assert emulator.completions[0].metadata["x-data-logging-enabled"] == "false"


def test_wrong_key_is_unauthenticated(emulator: Emulator, sdk_for: SdkFor) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        _model(sdk_for(emulator, auth="wrong-key")).run(MESSAGES)
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "API key is invalid" in (caught.value.details() or "")


@pytest.mark.filterwarnings("ignore:Sharing your personal OAuth token")
def test_iam_token_and_oauth_exchange(sdk_for: SdkFor) -> None:
    with Emulator(iam_token="t1.emulator-token") as emu:
        # An OAuth-looking credential is exchanged through IamTokenService/Create.
        result = _model(sdk_for(emu, auth="y0_emulator-oauth")).run(MESSAGES)
        assert result.text == reply_for(URI, PAIRS)
        assert emu.completions[0].metadata["authorization"] == "Bearer t1.emulator-token"
        assert "IamTokenCreate" in [r.method for r in emu.requests]


def test_empty_messages_are_invalid(emulator: Emulator, sdk_for: SdkFor) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        _model(sdk_for(emulator)).run([])
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_context_window_is_enforced(emulator: Emulator, sdk_for: SdkFor) -> None:
    emulator.context_window = 10
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        _model(sdk_for(emulator)).run(MESSAGES)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "no more than 10" in (caught.value.details() or "")


# -- faults, scripts, delays and cancellation --------------------------------------------


@pytest.mark.parametrize("code", [grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.UNAVAILABLE])
def test_fault_before_the_first_chunk(
    emulator: Emulator, sdk_for: SdkFor, code: grpc.StatusCode
) -> None:
    emulator.fail(code, "injected")
    model = _model(sdk_for(emulator))
    received = []
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        for part in model.run_stream(MESSAGES):
            received.append(part)
    assert caught.value.code() == code
    assert caught.value.details() == "injected"
    assert received == []
    # One fault, one call: the next one succeeds.
    assert model.run(MESSAGES).text == reply_for(URI, PAIRS)


def test_fault_after_three_chunks(emulator: Emulator, sdk_for: SdkFor) -> None:
    emulator.fail(grpc.StatusCode.INTERNAL, "stream broke", after_chunks=3)
    received = []
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        for part in _model(sdk_for(emulator)).run_stream(MESSAGES):
            received.append(part.text)
    assert caught.value.code() == grpc.StatusCode.INTERNAL
    assert len(received) == 3
    assert emulator.cancelled == 0


def test_fault_on_other_methods_and_repeated(emulator: Emulator, sdk_for: SdkFor) -> None:
    emulator.fail(grpc.StatusCode.UNAVAILABLE, method="TokenizeCompletion", times=2)
    model = _model(sdk_for(emulator))
    for _ in range(2):
        with pytest.raises(grpc.aio.AioRpcError):
            model.tokenize(MESSAGES)
    assert len(model.tokenize(MESSAGES)) == count_tokens(PAIRS)
    assert emulator.tokenize_calls == 3


def test_fault_details_can_echo_the_credential(emulator: Emulator, sdk_for: SdkFor) -> None:
    emulator.fail(grpc.StatusCode.PERMISSION_DENIED, "denied for {authorization}")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        _model(sdk_for(emulator)).run(MESSAGES)
    assert caught.value.details() == f"denied for Api-Key {emulator.api_key}"


def test_delay(emulator: Emulator, sdk_for: SdkFor) -> None:
    model = _model(sdk_for(emulator))
    model.run(MESSAGES)  # discovery and channel set-up out of the timing
    emulator.delay = 0.3
    started = time.monotonic()
    model.run(MESSAGES)
    assert time.monotonic() - started >= 0.3


def test_client_deadline_during_delay_counts_as_cancelled(
    emulator: Emulator, sdk_for: SdkFor
) -> None:
    model = _model(sdk_for(emulator))
    model.run(MESSAGES)
    emulator.delay = 5
    started = time.monotonic()
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        model.run(MESSAGES, timeout=0.2)
    assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert _wait_for(lambda: emulator.cancelled == 1)
    assert time.monotonic() - started < 2


def test_closing_the_stream_early_counts_as_cancelled(emulator: Emulator, sdk_for: SdkFor) -> None:
    emulator.chunk_delay = 0.05
    stream = _model(sdk_for(emulator)).run_stream(MESSAGES)
    first = next(stream)
    assert first.alternatives[0].status.name == "PARTIAL"
    stream.close()
    assert _wait_for(lambda: emulator.cancelled == 1)


def test_max_tokens_truncates(emulator: Emulator, sdk_for: SdkFor) -> None:
    model = _model(sdk_for(emulator), max_tokens=5)
    result = model.run(MESSAGES)
    assert result.alternatives[0].status.name == "TRUNCATED_FINAL"
    assert result.text == "".join(tokenize_text(reply_for(URI, PAIRS))[:5])
    assert result.usage.completion_tokens == 5
    assert list(model.run_stream(MESSAGES))[-1].status.name == "TRUNCATED_FINAL"


def test_scripted_replies(emulator: Emulator, sdk_for: SdkFor) -> None:
    emulator.reply_with("Blocked.", status="CONTENT_FILTER")
    emulator.reply_with("one two three four five six", chunks=3, times=2)
    model = _model(sdk_for(emulator))

    blocked = model.run(MESSAGES)
    assert blocked.alternatives[0].status.name == "CONTENT_FILTER"
    assert blocked.text == "Blocked."
    parts = list(model.run_stream(MESSAGES))
    assert [p.text for p in parts][-1] == "one two three four five six"
    assert len(parts) == 3
    assert model.run(MESSAGES).text == "one two three four five six"
    assert model.run(MESSAGES).text == reply_for(URI, PAIRS)


def test_scripted_reply_is_truncated_by_max_tokens(emulator: Emulator, sdk_for: SdkFor) -> None:
    emulator.reply_with("one two three four five six")
    result = _model(sdk_for(emulator), max_tokens=2).run(MESSAGES)
    assert result.text == "one two"
    assert result.alternatives[0].status.name == "TRUNCATED_FINAL"


def test_reset_clears_everything(emulator: Emulator, sdk_for: SdkFor) -> None:
    emulator.fail(grpc.StatusCode.INTERNAL)
    emulator.reply_with("scripted")
    emulator.delay = 1
    emulator.reset()
    assert _model(sdk_for(emulator)).run(MESSAGES).text == reply_for(URI, PAIRS)
    emulator.reset()
    assert emulator.requests == []


def test_concurrent_streams_are_recorded_safely(emulator: Emulator, sdk_for: SdkFor) -> None:
    emulator.chunk_delay = 0.01
    model = _model(sdk_for(emulator))
    conversations = [[{"role": "user", "text": f"question {i}"}] for i in range(8)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        finals = list(pool.map(lambda m: list(model.run_stream(m))[-1].text, conversations))
    assert finals == [reply_for(URI, [("user", f"question {i}")]) for i in range(8)]
    assert sorted(r.messages[0][1] for r in emulator.completions) == sorted(
        f"question {i}" for i in range(8)
    )


# -- lifecycle and the command line -------------------------------------------------------


def test_start_is_fast_and_stop_is_idempotent() -> None:
    started = time.monotonic()
    emu = Emulator().start()
    assert time.monotonic() - started < 0.5
    assert emu.port > 0
    assert emu.address == f"127.0.0.1:{emu.port}"
    emu.stop()
    emu.stop()


def test_a_taken_port_is_an_error(emulator: Emulator) -> None:
    with pytest.raises(OSError, match="could not listen"):
        Emulator(port=emulator.port).start()


def test_command_line_serves_until_terminated(sdk_for: SdkFor) -> None:
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(root)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "yagpt_magic.emulator", "--port", "0", "--api-key", "cli-key"],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.fullmatch(r"yagpt-magic emulator listening on (127\.0\.0\.1:(\d+))\n", line)
        assert match, line
        result = _model(sdk_for(match.group(1), auth="cli-key")).run(MESSAGES)
        assert result.text == reply_for(URI, PAIRS)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
