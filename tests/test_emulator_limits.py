"""The emulator enforces the service's documented limits and can take as long as it does.

Foundation Models "Quotas and limits": 10 concurrent generations per model in
synchronous mode, 10 deferred submits a second and 5,000 an hour, 50 result polls a
second, 50 tokenizer calls a second. Each test drives the real SDK over gRPC; the
refusals carry the service's RESOURCE_EXHAUSTED and its quota wording.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
import pytest

from yagpt_magic.emulator import Emulator, tokenize_text
from yagpt_magic.emulator.cli import build_parser, limits_from, service_time_from
from yagpt_magic.emulator.limits import Limits
from yagpt_magic.emulator.service_time import ServiceClock, ServiceTime

from .conftest import TEST_API_KEY

SdkFor = Callable[..., Any]

CONCURRENCY_REFUSAL = (
    "ai.textGenerationCompletionConcurrentGenerations.count quota limit exceed: "
    "allowed {n} concurrent generations"
)


def _model(sdk: Any, name: str = "yandexgpt") -> Any:
    return sdk.models.completions(name, model_version="latest")


def _outcome(call: Callable[[], Any]) -> str:
    """"ok", or the details of a RESOURCE_EXHAUSTED refusal (any other error fails)."""
    try:
        call()
    except grpc.aio.AioRpcError as err:
        assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, err
        return err.details() or ""
    return "ok"


def _burst(calls: list[Callable[[], Any]]) -> list[str]:
    """Start every call at once (a barrier), each on its own thread; their outcomes."""
    barrier = threading.Barrier(len(calls))

    def one(call: Callable[[], Any]) -> str:
        barrier.wait()
        return _outcome(call)

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(one, calls))


# -- the defaults are the documented values ---------------------------------------------


def test_the_defaults_are_the_documented_limits_and_no_service_time() -> None:
    emu = Emulator()
    assert emu.limits == Limits(
        concurrent_generations=10,
        async_submit_rps=10,
        async_submit_per_hour=5000,
        operation_poll_rps=50,
        tokenizer_rps=50,
    )
    assert emu.service_time is None
    assert Emulator(limits=False).limits == Limits.off()
    assert limits_from(build_parser().parse_args([])) == emu.limits
    with pytest.raises(ValueError, match="tokenizer_rps must be positive"):
        Limits(tokenizer_rps=0)


# -- synchronous mode: 10 generations in flight per model --------------------------------


def test_the_eleventh_concurrent_generation_on_a_model_is_refused(
    emulator: Emulator, sdk_for: SdkFor
) -> None:
    sdk = sdk_for(emulator)
    pro, lite = _model(sdk), _model(sdk, "yandexgpt-lite")
    pro.run("warm up")  # discovery and the channel, out of the burst
    emulator.delay = 1.5  # every generation stays in flight while the others arrive

    def streamed(i: int) -> Callable[[], Any]:
        return lambda: list(pro.run_stream(f"stream {i}"))

    def unary(model: Any, i: int) -> Callable[[], Any]:
        return lambda: model.run(f"unary {i}")

    on_pro = [streamed(i) for i in range(5)] + [unary(pro, i) for i in range(6)]
    on_lite = [unary(lite, i) for i in range(4)]
    outcomes = _burst(on_pro + on_lite)

    assert outcomes[len(on_pro):] == ["ok"] * 4, "another model has slots of its own"
    refused = [o for o in outcomes[: len(on_pro)] if o != "ok"]
    assert refused == [CONCURRENCY_REFUSAL.format(n=10)], outcomes
    assert emulator.refusals == {"concurrent_generations": 1}
    assert emulator.rejected == 1

    # The slots come back when the generations end.
    emulator.delay = 0.3
    assert _burst([unary(pro, i) for i in range(10)]) == ["ok"] * 10


def test_a_generation_the_client_abandons_gives_its_slot_back(
    emulator: Emulator, sdk_for: SdkFor
) -> None:
    model = _model(sdk_for(emulator))
    model.run("warm up")
    emulator.limits.concurrent_generations = 1
    emulator.reply_with(" ".join(["word"] * 40), chunks=4)
    emulator.chunk_delay = 1.0
    stream = iter(model.run_stream("a long answer"))
    next(stream)  # one chunk arrived: the generation holds the only slot
    assert _outcome(lambda: model.run("meanwhile")) == CONCURRENCY_REFUSAL.format(n=1)
    stream.close()  # type: ignore[attr-defined]  # the client walks away mid-stream
    deadline = time.monotonic() + 3
    while _outcome(lambda: model.run("after")) != "ok":
        assert time.monotonic() < deadline, "the abandoned stream kept its slot"
        time.sleep(0.1)


def test_limits_off_lets_any_number_through(sdk_for: SdkFor) -> None:
    with Emulator(api_key=TEST_API_KEY, limits=False) as emu:
        model = _model(sdk_for(emu))
        model.run("warm up")
        emu.delay = 0.5
        assert _burst([lambda i=i: model.run(f"r{i}") for i in range(14)]) == ["ok"] * 14
        assert emu.rejected == 0


# -- asynchronous mode: submits and polls -------------------------------------------------


def test_deferred_submits_are_limited_to_ten_a_second(
    emulator: Emulator, sdk_for: SdkFor
) -> None:
    model = _model(sdk_for(emulator))
    model.run("warm up")
    outcomes = _burst([lambda i=i: model.run_deferred(f"d{i}") for i in range(16)])
    refused = [o for o in outcomes if o != "ok"]
    assert 10 <= outcomes.count("ok") <= 12, outcomes  # a second's worth, plus what refills
    assert set(refused) == {
        "ai.textGenerationAsyncCompletionRequestsPerSecond.rate rate quota limit exceed: "
        "allowed 10 requests"
    }
    assert emulator.refusals == {"async_submit_rps": len(refused)}
    time.sleep(0.3)
    assert _outcome(lambda: model.run_deferred("later")) == "ok", "the quota refills"


def test_deferred_submits_are_limited_per_hour(emulator: Emulator, sdk_for: SdkFor) -> None:
    emulator.limits.async_submit_rps = None
    emulator.limits.async_submit_per_hour = 3
    model = _model(sdk_for(emulator))
    outcomes = [_outcome(lambda i=i: model.run_deferred(f"d{i}")) for i in range(4)]
    assert outcomes == ["ok"] * 3 + [
        "ai.textGenerationAsyncCompletionRequestsPerHour.rate rate quota limit exceed: "
        "allowed 3 requests"
    ]


def test_polls_of_deferred_results_are_limited(emulator: Emulator, sdk_for: SdkFor) -> None:
    emulator.limits.operation_poll_rps = 2
    emulator.pending_polls = 100  # still running: every poll is a real Get
    operation = _model(sdk_for(emulator)).run_deferred("slow")
    outcomes = [_outcome(operation.get_status) for _ in range(3)]
    assert outcomes == ["ok", "ok", (
        "ai.textGenerationAsyncOperationGetRequestsPerSecond.rate rate quota limit exceed: "
        "allowed 2 requests"
    )]
    assert emulator.refusals == {"operation_poll_rps": 1}


# -- the tokenizer ----------------------------------------------------------------------------


def test_the_tokenizer_is_rate_limited(emulator: Emulator, sdk_for: SdkFor) -> None:
    emulator.limits.tokenizer_rps = 3
    model = _model(sdk_for(emulator))
    outcomes = [_outcome(lambda: model.tokenize("count me")) for _ in range(4)]
    assert outcomes == ["ok"] * 3 + [
        "ai.textGenerationTokenizeRequestsPerSecond.rate rate quota limit exceed: "
        "allowed 3 requests"
    ]
    other_folder = _model(sdk_for(emulator, folder_id="b1gother"))
    assert _outcome(lambda: other_folder.tokenize("mine")) == "ok", "quotas are per folder"


# -- service time ------------------------------------------------------------------------------


def test_service_time_draws_have_the_documented_median_and_tail() -> None:
    model = ServiceTime(first_token=0.5, per_token=0.025, sigma=0.6, seed=11)
    clock = ServiceClock(model)
    totals = sorted(clock.draw().total(20) for _ in range(20000))
    median, p95 = totals[len(totals) // 2], totals[int(len(totals) * 0.95)]
    assert model.median(20) == pytest.approx(1.0)
    assert median == pytest.approx(model.median(20), rel=0.03)
    assert p95 == pytest.approx(model.quantile(20, 0.95), rel=0.05)
    assert p95 / median > 2.5, "a heavy tail: one reply in twenty takes 2.7 times the median"
    first, second = ServiceClock(model), ServiceClock(model)
    assert [first.draw() for _ in range(50)] == [second.draw() for _ in range(50)], "seeded"
    other = ServiceClock(ServiceTime(sigma=0.6, seed=12))
    assert [other.draw() for _ in range(5)] != [ServiceClock(model).draw() for _ in range(5)]


def test_replies_take_the_drawn_service_time(emulator: Emulator, sdk_for: SdkFor) -> None:
    model = _model(sdk_for(emulator))
    model.run("warm up")
    text = " ".join(["token"] * 20)
    tokens = len(tokenize_text(text))
    timing = ServiceTime(first_token=0.03, per_token=0.004, sigma=0.6, seed=7)
    clock = ServiceClock(timing)  # the emulator's draws, in the same order
    expected = [clock.draw().total(tokens) for _ in range(20)]
    emulator.service_time = timing
    emulator.reply_with(text, times=20)
    took = []
    for i in range(20):
        started = time.monotonic()
        model.run(f"r{i}")
        took.append(time.monotonic() - started)
    overheads = [t - e for t, e in zip(took, expected, strict=True)]
    assert min(overheads) > -0.005, "no reply comes before its drawn time"
    assert statistics.median(overheads) < 0.03, "and each comes right after it"
    assert statistics.median(took) == pytest.approx(statistics.median(expected), abs=0.03)


def test_a_stream_starts_after_the_first_token_and_paces_the_rest(
    emulator: Emulator, sdk_for: SdkFor
) -> None:
    model = _model(sdk_for(emulator))
    model.run("warm up")
    emulator.service_time = ServiceTime(first_token=0.4, per_token=0.02, sigma=0.0)
    emulator.reply_with(" ".join(["word"] * 30), chunks=3)
    started = time.monotonic()
    arrivals = [time.monotonic() - started for _chunk in model.run_stream("go")]
    tokens = 30
    assert len(arrivals) == 3
    assert 0.4 <= arrivals[0] < 0.4 + tokens * 0.02 / 3 + 0.1
    assert arrivals[-1] == pytest.approx(0.4 + tokens * 0.02, abs=0.1)


def test_a_deferred_result_is_ready_after_its_service_time(
    emulator: Emulator, sdk_for: SdkFor
) -> None:
    model = _model(sdk_for(emulator))
    emulator.pending_polls = 0
    emulator.service_time = ServiceTime(first_token=0.5, per_token=0.0, sigma=0.0)
    started = time.monotonic()
    result = model.run_deferred("later").wait(poll_interval=0.05)
    assert result.text
    assert time.monotonic() - started >= 0.5


# -- the command line --------------------------------------------------------------------------


def test_limit_and_service_time_flags_become_settings() -> None:
    parse = build_parser().parse_args
    assert limits_from(parse(["--no-limits", "--tokenizer-rps", "5"])) == Limits(
        None, None, None, None, 5
    )
    assert limits_from(parse(["--concurrent-generations", "0"])).concurrent_generations is None
    assert service_time_from(parse([])) is None
    assert service_time_from(parse(["--service-time"])) == ServiceTime()
    assert service_time_from(parse(["--per-token", "0.01", "--seed", "3"])) == ServiceTime(
        per_token=0.01, seed=3
    )


@pytest.fixture
def served() -> Iterator[str]:
    """``python -m yagpt_magic.emulator`` with limits and a service time; its address."""
    process = subprocess.Popen(
        [sys.executable, "-m", "yagpt_magic.emulator", "--port", "0",
         "--api-key", TEST_API_KEY, "--concurrent-generations", "1", "--tokenizer-rps", "2",
         "--first-token", "0.6", "--per-token", "0", "--service-time-sigma", "0"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        banner = process.stdout.readline()
        assert banner.startswith("yagpt-magic emulator listening on "), banner
        yield banner.rsplit(" ", 1)[-1].strip()
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_command_line_flags_reach_the_server(served: str, sdk_for: SdkFor) -> None:
    model = _model(sdk_for(served))
    started = time.monotonic()
    model.run("warm up")
    assert time.monotonic() - started >= 0.6, "--first-token 0.6"
    outcomes = _burst([lambda i=i: model.run(f"r{i}") for i in range(2)])
    assert sorted(outcomes) == sorted(["ok", CONCURRENCY_REFUSAL.format(n=1)])
    tokenized = [_outcome(lambda: model.tokenize("x")) for _ in range(3)]
    assert tokenized[:2] == ["ok", "ok"] and "allowed 2 requests" in tokenized[2]
