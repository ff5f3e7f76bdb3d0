"""The official SDK's own example scripts run to the end against the emulator.

The scripts in tests/sdk_examples are copied unchanged from yandex-cloud/yandex-ai-studio-sdk
(see tests/sdk_examples/README.md for the commit and licence). Each runs in a subprocess of
its own through tests/example_runner.py, which changes only where the SDK connects (the
emulator's gRPC address, plaintext, and its HTTP API as ``service_map["http_completions"]``),
against one emulator shared by all of them, a few at a time. Each must exit 0; where a
script prints what it did (a tool it ran), the output must show it.

Domains the emulator claims, all run, sync and async: ``completions`` (run, stream,
deferred, tokenize, structured output, batch), ``function_calling/completions`` (tools on
the gRPC API), ``chat`` (the OpenAI-compatible HTTP API: run, stream, history, tools,
streamed tools, images, reasoning, structured output, tool_choice, extra_query), ``batch``
and ``datasets``.

Skipped, because the emulator does not serve them: ``chat/embeddings.py`` and
``text_embeddings`` (no embeddings API), ``assistants``, ``search_api``, ``speechkit``,
``image_generation``, ``text_classifiers`` and ``tuning`` (other services), ``misc``
(``grpc_credentials.py``: credentials machinery, no model call) and ``langchain`` (a
third-party integration).

The shared emulator runs with the service's documented limits, but for the async mode's
submit and poll quotas, raised for ``batch_async.py`` (see :func:`outcomes`).

What a script asks on stdin is what a person would type: the number of a model from the
list the script prints (the one named below; ``stream.py`` asserts its last chunk finishes
with ``length``, which holds for a model that sends no usage chunk after it, so it gets
YandexGPT), and for the two chat loops a couple of messages, then end of input.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from yagpt_magic.emulator import Emulator
from yagpt_magic.emulator.catalogue import chat_model_ids

from .conftest import TEST_API_KEY

HERE = Path(__file__).parent
EXAMPLES = HERE / "sdk_examples"
RUNNER = HERE / "example_runner.py"
FOLDER = "b1gexamples"
#: Scripts run at once against the shared emulator.
PARALLEL = 3
TIMEOUT = 240


def _choice(name: str) -> str:
    """What a person types to pick ``name`` from the list ``get_model()`` prints."""
    ids = chat_model_ids(FOLDER)
    return f"{ids.index(f'gpt://{FOLDER}/{name}')}\n"


@dataclass(frozen=True)
class Example:
    """How to run one script: its stdin, whether EOF ends it, what its output must show."""

    stdin: str = ""
    until_eof: bool = False
    shows: tuple[str, ...] = ()


_TOOLS_RAN = ("calculator got expression='7@8'", "weather func got location=")
_CHAT = {
    "run.py": Example(_choice("qwen3-235b-a22b-fp8/latest")),
    "stream.py": Example(_choice("yandexgpt/latest")),
    "history.py": Example(
        _choice("qwen3-235b-a22b-fp8/latest") + "Hello!\nWhat did I just say?\n",
        until_eof=True,
        shows=("saw 3 messages",),
    ),
    "function_calling.py": Example(_choice("qwen3-235b-a22b-fp8/latest"), shows=_TOOLS_RAN),
    "stream_function_calling.py": Example(_choice("gemma-3-27b-it/latest"), shows=_TOOLS_RAN),
    "multimodal.py": Example(shows=("It also received 1 image",)),
    "reasoning.py": Example(_choice("gpt-oss-120b/latest")),
    "structured_output.py": Example(_choice("yandexgpt/rc"), shows=("JSONSchema from",)),
    "tool_choice.py": Example(_choice("qwen3-235b-a22b-fp8/latest")),
    "extra_query.py": Example(_choice("yandexgpt-lite/latest")),
}
_OTHERS = {
    "completions/run.py": Example(),
    "completions/run_stream.py": Example(),
    "completions/run_deferred.py": Example(),
    "completions/tokenize_.py": Example(),
    "completions/structured_output.py": Example(),
    "completions/batch.py": Example(),
    "function_calling/completions/raw_tool_calls_processing.py": Example(shows=_TOOLS_RAN),
    "function_calling/completions/stream_raw_tool_calls_processing.py": Example(
        shows=_TOOLS_RAN
    ),
    "function_calling/completions/tool_choice.py": Example(),
    "batch/manage.py": Example(),
    "datasets/upload.py": Example(),
    "datasets/upload_schemas.py": Example(),
    "datasets/read.py": Example(),
    "datasets/download.py": Example(),
    "datasets/errors_handling.py": Example(),
}
CASES: dict[str, Example] = {
    **{f"{side}/chat/{name}": ex for side in ("sync", "async") for name, ex in _CHAT.items()},
    **{f"{side}/{name}": ex for side in ("sync", "async") for name, ex in _OTHERS.items()},
    "async/completions/batch_async.py": Example(),
    "async/completions/chat.py": Example(
        "Hello!\nWhat is my name?\n", until_eof=True, shows=("saw 4 messages",)
    ),
}


def test_every_copied_script_is_run() -> None:
    copied = {str(p.relative_to(EXAMPLES)) for p in EXAMPLES.rglob("*.py")}
    assert copied == set(CASES)


@dataclass(frozen=True)
class Outcome:
    code: int | str
    stdout: str
    stderr: str


def _run(path: str, example: Example, env: dict[str, str]) -> Outcome:
    args = [sys.executable, str(RUNNER), str(EXAMPLES / path)]
    if example.until_eof:
        args.append("--until-eof")
    try:
        done = subprocess.run(
            args, input=example.stdin, capture_output=True, text=True, env=env,
            timeout=TIMEOUT, cwd=EXAMPLES / Path(path).parent,
        )
    except subprocess.TimeoutExpired as err:
        return Outcome("timeout", str(err.stdout or ""), str(err.stderr or ""))
    return Outcome(done.returncode, done.stdout, done.stderr)


@pytest.fixture(scope="module")
def outcomes(request: pytest.FixtureRequest) -> Iterator[dict[str, Outcome]]:
    """Every selected script, run a few at a time against one shared emulator."""
    selected = [
        item.callspec.params["path"]
        for item in request.session.items
        if item.module is sys.modules[__name__] and hasattr(item, "callspec")
    ]
    with Emulator(api_key=TEST_API_KEY) as emu:
        emu.pending_polls = 0  # deferred runs are done at the first poll
        # A batch task finishes in one progress step after it starts (the SDK polls it
        # every 10 s): the batch examples take half a minute, not several.
        emu.batch.rows_per_batch = 1000
        # async/completions/batch_async.py submits and polls 100 deferred requests a
        # second, ten times the default quota of 10 submits (and twice the 50 polls) a
        # second: its authors' folder had the quota raised, and so does this one's.
        emu.limits.async_submit_rps = 100
        emu.limits.operation_poll_rps = 100
        env = {
            **os.environ,
            "YC_API_KEY": TEST_API_KEY,
            "YC_FOLDER_ID": FOLDER,
            "YAGPT_EXAMPLE_ENDPOINT": emu.address,
            "YAGPT_EXAMPLE_CHAT_URL": emu.chat_url,
        }
        for name in ("YC_IAM_TOKEN", "YC_OAUTH_TOKEN", "YC_TOKEN", "YC_API_ENDPOINT"):
            env.pop(name, None)
        with ThreadPoolExecutor(max_workers=PARALLEL) as pool:
            futures = {p: pool.submit(_run, p, CASES[p], env) for p in selected}
            yield {p: f.result() for p, f in futures.items()}


@pytest.mark.parametrize("path", sorted(CASES))
def test_the_sdk_example_runs_to_the_end(outcomes: dict[str, Any], path: str) -> None:
    outcome = outcomes[path]
    assert outcome.code == 0, f"{path} exited {outcome.code}:\n{outcome.stderr[-3000:]}"
    for words in CASES[path].shows:
        assert words in outcome.stdout, f"{path} did not print {words!r}:\n{outcome.stdout[-2000:]}"
