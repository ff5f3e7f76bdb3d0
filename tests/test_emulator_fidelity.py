"""The emulator behaves like the recorded service: framing, catalogue, errors, quota, polls.

Each test here failed on the first emulator (which counted tokens additively, called
every model "emulator (latest)", accepted any model path, finished operations at once,
had no quota and answered in one plain paragraph).
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
import pytest

from yagpt_magic.emulator import (
    MESSAGE_FRAMING,
    REQUEST_FRAMING,
    Emulator,
    count_tokens,
    reply_for,
    tokenize_text,
)
from yagpt_magic.emulator.tokenizer import frame

SdkFor = Callable[..., Any]
URI = "gpt://b1gtest/yandexgpt/latest"
PREFIX_RE = re.compile(
    r"^Error in session internal_id=[0-9a-f]{8}(?:-[0-9a-f]{8}){3}"
    r"&request_id=[0-9a-f-]{36}&client_request_id=(?P<client>[0-9a-f-]*)"
    r"&folder_id=(?P<folder>\w+): (?P<cause>.*)$"
)


def _model(sdk: Any, name: str = "yandexgpt", version: str = "latest", **config: Any) -> Any:
    return sdk.models.completions(name, model_version=version).configure(**config)


def _code(call: Callable[[], Any]) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        call()
    return caught.value


# -- 1. token framing ------------------------------------------------------------------


def test_ping_is_framed_exactly_like_the_recording() -> None:
    assert (REQUEST_FRAMING, MESSAGE_FRAMING) == (10, 4)
    assert tokenize_text("ping") == ["ping"]
    assert count_tokens([("user", "ping")]) == 15
    assert [t for t, _special, _id in frame([("user", "ping")])] == [
        "<s>", "▁Пользователь", ":", "▁ping", "[NL]", "[NL]",
        "А", "сси", "стент", ":", "▁[", "EDIT", "ORS", "]", "[SEP]",
    ]  # fmt: skip


def test_recorded_chat_counts_are_near_but_cannot_be_equal() -> None:
    """test_chat's real counts are 28, 63, 95; the framing is exact, the text is not.

    The emulator's text tokenizer is not the real vocabulary (which is not public), so
    the count of arbitrary text can only be near; it errs high by 2-3 tokens here, which
    keeps a client that fits history to the emulator's counts safe against the service.
    """
    chat = [
        ("system", "Your name is Arkadiy"),
        ("user", "Hello! how is your name?"),
        ("assistant", "Hello! My name is Arkadiy and I'm glad to meet you. How are you?"),
        ("user", "My name is Andrew"),
        ("assistant", "Hello, Andrew! It's a pleasure to meet you. How are you?"),
        ("user", "What is my name?"),
    ]
    ours = [count_tokens(chat[:n]) for n in (2, 4, 6)]
    assert ours == [31, 65, 98]
    for got, real in zip(ours, [28, 63, 95]):
        assert real <= got <= real + 4


def test_a_request_costs_its_framing_once(emulator: Emulator, sdk_for: SdkFor) -> None:
    model = _model(sdk_for(emulator))
    one, two = [{"role": "user", "text": "ping"}], [{"role": "user", "text": "pong"}]
    both = len(model.tokenize(one + two))
    assert both == len(model.tokenize(one)) + len(model.tokenize(two)) - REQUEST_FRAMING
    assert model.run(one + two).usage.input_text_tokens == both


# -- 2. response fields ------------------------------------------------------------------


@pytest.mark.parametrize(("version", "date", "details"), [
    ("latest", "07.03.2024", False), ("rc", "09.02.2025", True)])
def test_model_version_and_usage_in_every_chunk(
    emulator: Emulator, sdk_for: SdkFor, version: str, date: str, details: bool
) -> None:
    model = _model(sdk_for(emulator), version=version)
    parts = list(model.run_stream("hello! could you please tell me about platypuses?"))
    assert len(parts) >= 2
    assert {p.model_version for p in parts} == {date}
    inputs = {p.usage.input_text_tokens for p in parts}
    assert len(inputs) == 1
    completions = [p.usage.completion_tokens for p in parts]
    assert completions == sorted(completions) and completions[0] > 0
    assert completions[-1] == len(tokenize_text(parts[-1].text))
    assert model.tokenize("ping")[0].text == "<s>"
    # completionTokensDetails: absent in the 2024 recordings, present (empty) in 2025's.
    assert [r.usage.HasField("completion_tokens_details") for r in _raw(emulator, version)] == [
        details
    ]


def _raw(emu: Emulator, version: str) -> list[Any]:
    """The raw CompletionResponse messages (the SDK hides whether a field is set)."""
    from yandex.cloud.ai.foundation_models.v1.text_generation import (
        text_generation_service_pb2 as tg,
    )
    from yandex.cloud.ai.foundation_models.v1.text_generation import (
        text_generation_service_pb2_grpc as tg_grpc,
    )

    request = tg.CompletionRequest(model_uri=f"gpt://b1gtest/yandexgpt/{version}")
    request.messages.add(role="user", text="ping")
    auth = (("authorization", f"Api-Key {emu.api_key}"),)
    with grpc.insecure_channel(emu.address) as channel:
        return list(tg_grpc.TextGenerationServiceStub(channel).Completion(request, metadata=auth))


# -- 3. the model catalogue --------------------------------------------------------------


@pytest.mark.parametrize("name", ["yandexgpt", "yandexgpt-lite", "aliceai-llm"])
@pytest.mark.parametrize("version", ["latest", "rc", "deprecated", "latest@tamrabc123"])
def test_catalogue_serves_every_model_and_branch(
    emulator: Emulator, sdk_for: SdkFor, name: str, version: str
) -> None:
    result = _model(sdk_for(emulator), name, version).run("ping")
    assert re.fullmatch(r"\d\d\.\d\d\.20\d\d", result.model_version)


@pytest.mark.parametrize(("name", "version"), [
    ("yandexgtp", "latest"), ("yandexgpt/rc", "latest"), ("yandexgpt", "beta"),
    ("yandexgpt-32k", "latest"), ("YandexGPT", "latest")])
def test_unknown_models_are_invalid_model_uri(
    emulator: Emulator, sdk_for: SdkFor, name: str, version: str
) -> None:
    error = _code(lambda: _model(sdk_for(emulator), name, version).run("ping"))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    # The real gRPC details, recorded unprefixed (see yagpt_magic/emulator/catalogue.py).
    assert error.details() == "invalid model_uri"


def test_unknown_role_is_refused_with_the_session_prefix(
    emulator: Emulator, sdk_for: SdkFor
) -> None:
    error = _code(lambda: _model(sdk_for(emulator)).run([{"role": "robot", "text": "hi"}]))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    match = PREFIX_RE.match(error.details() or "")
    assert match, error.details()
    assert match["cause"] == "invalid message role 'robot'"
    assert match["folder"] == "b1gtest"
    assert match["client"] == emulator.completions[-1].metadata["x-client-request-id"]


# -- 4. the real error prefix ---------------------------------------------------------------


def test_too_many_tokens_carries_the_prefix_and_the_cause(
    emulator: Emulator, sdk_for: SdkFor
) -> None:
    emulator.context_window = 32768
    text = "word " * 40000
    error = _code(lambda: _model(sdk_for(emulator)).run(text))
    match = PREFIX_RE.match(error.details() or "")
    assert match, error.details()
    got = count_tokens([("user", text)])
    assert match["cause"] == f"number of input tokens must be no more than 32768, got {got}"


def test_injected_faults_can_carry_the_prefix(emulator: Emulator, sdk_for: SdkFor) -> None:
    emulator.fail(grpc.StatusCode.INVALID_ARGUMENT, "temperature must be in [0, 1]",
                  prefixed=True)
    emulator.fail(grpc.StatusCode.INTERNAL, "plain")
    model = _model(sdk_for(emulator))
    match = PREFIX_RE.match(_code(lambda: model.run("hi")).details() or "")
    assert match and match["cause"] == "temperature must be in [0, 1]"
    assert _code(lambda: model.run("hi")).details() == "plain", "unprefixed by default"


# -- 5. deferred operations ----------------------------------------------------------------


@pytest.mark.parametrize("pending", [0, 1, 3])
def test_deferred_operation_is_done_after_pending_polls(
    emulator: Emulator, sdk_for: SdkFor, pending: int
) -> None:
    emulator.pending_polls = pending
    operation = _model(sdk_for(emulator)).run_deferred("ping")
    result = operation.wait(poll_interval=0.01)
    assert result.text == reply_for(URI, [("user", "ping")])
    gets = [r for r in emulator.requests if r.method == "OperationGet"]
    assert len(gets) == pending + 1


def test_deferred_default_is_one_pending_poll_as_recorded() -> None:
    assert Emulator().pending_polls == 1


# -- 8. quota and service time ---------------------------------------------------------------


def test_quota_refuses_a_burst_with_the_real_wording(emulator: Emulator, sdk_for: SdkFor) -> None:
    model = _model(sdk_for(emulator))
    model.run("warm up")  # discovery and channel out of the burst
    emulator.quota_rps = 5
    barrier = threading.Barrier(20)

    def one(i: int) -> str:
        barrier.wait()
        try:
            model.run(f"q{i}")
        except grpc.aio.AioRpcError as err:
            assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            return err.details() or ""
        return "ok"

    with ThreadPoolExecutor(20) as pool:
        outcomes = list(pool.map(one, range(20)))
    refused = [o for o in outcomes if o != "ok"]
    assert outcomes.count("ok") >= 5, "the bucket lets a second's worth through"
    assert len(refused) >= 1, "a burst of 20 against 5 a second loses some"
    assert set(refused) == {
        "ai.textGenerationCompletionRequestsPerSecond.rate rate quota limit exceed: "
        "allowed 5 requests"
    }
    assert emulator.rejected == len(refused)
    time.sleep(0.5)
    assert model.run("after a pause").text


def test_quota_is_per_folder(emulator: Emulator, sdk_for: SdkFor) -> None:
    emulator.quota_rps = 1
    first = _model(sdk_for(emulator))
    other = _model(sdk_for(emulator, folder_id="b1gother"))
    first.run("a")
    assert _code(lambda: first.run("b")).code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert other.run("c").text


def test_benchmark_setting_paces_forty_a_second(emulator: Emulator, sdk_for: SdkFor) -> None:
    model = _model(sdk_for(emulator))
    model.run("warm up")
    emulator.delay, emulator.quota_rps = 0.1, 40
    started = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: model.run(f"r{i}"), range(8)))
    assert time.monotonic() - started >= 0.1
    assert emulator.rejected == 0


# -- 9. replies a person can learn from --------------------------------------------------------


def test_reply_is_markdown_with_a_list_and_says_what_it_saw() -> None:
    reply = reply_for(URI, [("system", "Be brief."), ("user", "What is a monad?")])
    assert reply.startswith("*(offline emulator — no model was called)*")
    assert "\n\n" in reply and "\n- " in reply and "**" in reply
    assert "saw 2 messages of context (digest " in reply
    assert "```" not in reply and "$" not in reply


def test_reply_shows_code_for_a_code_question() -> None:
    reply = reply_for(URI, [("user", "Write a Python function that reverses a list")])
    assert re.search(r"```python\n.+\n```", reply, re.DOTALL)
    sql = reply_for(URI, [("user", "Show me the SQL code for counting rows")])
    assert "```sql\n" in sql


def test_reply_shows_math_for_a_math_question() -> None:
    reply = reply_for(URI, [("user", "Give me the formula for the sum of 1..n")])
    assert re.search(r"(?<!\$)\$[^$\n]+\$(?!\$)", reply)
    assert re.search(r"\$\$[^$]+\$\$", reply)
    assert reply == reply_for(URI, [("user", "Give me the formula for the sum of 1..n")])
