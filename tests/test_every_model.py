"""SPEC 15: everything a thread does works the same on both APIs.

The same end-to-end tests, parametrised by model: YandexGPT goes through the Text
Generation API (gRPC), Qwen3 and Gemma through the OpenAI-compatible API (HTTP), both
served by the emulator and reached through the unmodified SDK. What each API received
is read back from the emulator (gRPC ``Completion``, HTTP ``ChatCompletion``).
"""

from __future__ import annotations

import builtins
import json
import time
from pathlib import Path
from typing import Any

import grpc
import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook, new_output

from yagpt_magic.emulator import Emulator, count_tokens
from yagpt_magic.emulator.catalogue import lookup_chat
from yagpt_magic.emulator.state import RecordedRequest
from yagpt_magic.widget.chat import ChatWidget

from .conftest import TEST_API_KEY, emulator_env, fails, magics_of
from .kernel import Kernel
from .test_widget import send_and_wait, shown_turns

QWEN = "qwen3-235b-a22b-fp8"
GEMMA = "gemma-3-27b-it"
#: One model of each API; Gemma where a second open model's framing matters.
EVERY_API = ["yandexgpt", QWEN]
API_OF = {"yandexgpt": "text-generation", QWEN: "openai-compatible",
          GEMMA: "openai-compatible"}
METHOD_OF = {"text-generation": "Completion", "openai-compatible": "ChatCompletion"}


def sent(emulator: Emulator) -> list[RecordedRequest]:
    """Every completion request either API received, in order."""
    return emulator.state.recorded("Completion", "ChatCompletion")


def exact(model: str, messages: list[tuple[str, str]]) -> int:
    """The emulator's count of a request to ``model`` (each API's model frames its own)."""
    chat = lookup_chat(f"gpt://b1gtest/{model}/latest")
    if chat is None or chat.request_framing is None or chat.message_framing is None:
        return count_tokens(messages)
    return count_tokens(messages, request_framing=chat.request_framing,
                        message_framing=chat.message_framing)


def chat(shell: Any, text: str, flags: str = "") -> None:
    shell.run_cell(f"%%chat {flags}\n{text}").raise_error()


def turns(shell: Any, thread: str = "default") -> Any:
    return magics_of(shell).session.thread(thread).turns


@pytest.fixture(params=EVERY_API)
def model(request: Any, shell: Any) -> str:
    """The notebook's model: every %%chat cell below goes to its API."""
    shell.run_cell(f"%config ChatMagics.model = {request.param!r}").raise_error()
    return str(request.param)


# -- threads, and a thread that changes model -----------------------------------------------


def test_each_turn_sends_the_thread_and_records_the_api(
    shell: Any, emulator: Emulator, model: str
) -> None:
    chat(shell, "What fields did Einstein study?", '-s "Be brief"')
    chat(shell, "What did he discover?")
    chat(shell, "Make it shorter")
    requests = sent(emulator)
    assert [r.method for r in requests] == [METHOD_OF[API_OF[model]]] * 3
    first, second = turns(shell)[:2]
    assert requests[2].messages == [
        ("system", "Be brief"), ("user", first.user), ("assistant", first.reply),
        ("user", second.user), ("assistant", second.reply), ("user", "Make it shorter")]
    assert {t.api for t in turns(shell)} == {API_OF[model]}
    assert all(f"/{model}/" in t.model for t in turns(shell))
    history = shell.run_line_magic("chat", "history")
    assert [row[5] for row in history.rows] == [model] * 3


def test_a_thread_switches_model_and_api_between_turns(shell: Any, emulator: Emulator) -> None:
    chat(shell, "Hello from YandexGPT")
    chat(shell, "Now Qwen", f"-m {QWEN}")
    chat(shell, "Now Gemma", f"-m {GEMMA}")
    chat(shell, "Back to YandexGPT")
    requests = sent(emulator)
    assert [r.method for r in requests] == ["Completion", "ChatCompletion", "ChatCompletion",
                                            "Completion"]
    assert [r.model_uri.split("/")[3] for r in requests] == [
        "yandexgpt", QWEN, GEMMA, "yandexgpt"]
    assert len(requests[3].messages) == 7  # the whole thread, whichever API answered it
    assert [t.api for t in turns(shell)] == [
        "text-generation", "openai-compatible", "openai-compatible", "text-generation"]


def test_each_model_is_sent_the_reasoning_setting_it_takes(
    shell: Any, emulator: Emulator
) -> None:
    shell.run_cell('%config ChatMagics.reasoning_mode = "high"').raise_error()
    for name in ("yandexgpt", QWEN, GEMMA):
        chat(shell, "Think about it", f"-m {name}")
    grpc_request, qwen, gemma = sent(emulator)
    assert grpc_request.options["reasoning_mode"] == "ENABLED_HIDDEN"
    assert qwen.options["reasoning_effort"] == "high"
    assert gemma.options["reasoning_effort"] is None  # Gemma takes none: none is sent
    shell.run_cell('%config ChatMagics.reasoning_mode = "enabled_hidden"').raise_error()
    chat(shell, "And now?", f"-m {QWEN}")
    assert sent(emulator)[-1].options["reasoning_effort"] == "medium"


# -- streaming in place, re-running a cell, an interrupt: a real kernel ------------------


@pytest.mark.parametrize("name", EVERY_API)
def test_streams_in_place_reruns_replace_and_an_interrupt_commits_nothing(
    emulator: Emulator, name: str
) -> None:
    count = ("print([t.user for t in get_ipython()._yagpt_magic.session.thread().turns])")
    with Kernel(emulator_env(emulator)) as kernel:
        assert kernel.run("%load_ext yagpt_magic").ok
        assert kernel.run(f"%config ChatMagics.model = {name!r}").ok
        reply = " ".join(f"w{i}" for i in range(400))
        emulator.reply_with(reply, chunks=200)
        run = kernel.run("%%chat --max-tokens 4000\nfirst question", cell_id="c1")
        assert run.ok, run.error
        shown, updates = run.of_type("display_data"), run.of_type("update_display_data")
        assert len(shown) == 1 and updates
        assert shown[0]["content"]["data"]["text/plain"] == f"Waiting for {name}…"
        growing = [u["content"]["data"]["text/plain"] for u in updates]
        assert all(b.startswith(a) for a, b in zip(growing, growing[1:]))  # cumulative
        assert growing[-1] == reply
        assert updates[-1]["content"]["metadata"]["yagpt_magic"]["api"] == API_OF[name]

        assert kernel.run("%%chat\nsecond question", cell_id="c2").ok
        assert kernel.run("%%chat\nfirst question, again", cell_id="c1").ok
        assert "['first question, again', 'second question']" in kernel.run(count).text
        assert sent(emulator)[-1].messages == [("user", "first question, again")]

        emulator.reply_with("slow words " * 200, chunks=200)
        emulator.chunk_delay = 0.05
        before = len(sent(emulator))
        msg_id = kernel.send("%%chat\nthird question, slowly", cell_id="c3")
        deadline = time.monotonic() + 30
        while len(sent(emulator)) == before and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(1.0)
        interrupted_at = time.monotonic()
        kernel.manager.interrupt_kernel()
        interrupted = kernel.collect(msg_id)
        assert time.monotonic() - interrupted_at < 2.0  # the cell ends at once
        while emulator.cancelled < 1 and time.monotonic() - interrupted_at < 10:
            time.sleep(0.01)
        assert emulator.cancelled == 1  # and the service hears of it
        emulator.chunk_delay = 0.0
        assert not interrupted.ok and "Interrupted" in interrupted.error
        assert "['first question, again', 'second question']" in kernel.run(count).text


# -- fitting near the edge of a small window -------------------------------------------------


@pytest.mark.parametrize("name", [*EVERY_API, GEMMA])
def test_near_the_edge_of_a_small_window_every_request_fits(
    shell: Any, emulator: Emulator, name: str, capsys: Any
) -> None:
    window, reserve = 1_500, 100
    budget = window - reserve
    shell.run_cell(f"%config ChatMagics.context_window = {window}").raise_error()
    shell.run_cell(f"%config ChatMagics.max_tokens = {reserve}").raise_error()
    emulator.context_window = window  # the service refuses anything over it
    words = ["data", "frame", "index", "column", "merge", "join", "group", "plot", "axis",
             "model"]
    for i in range(16):
        emulator.reply_with(" ".join(words[(i + k) % 10] for k in range(60 + 7 * i)))
        chat(shell, f"Question {i}: " + " ".join(words[k % 10] for k in range(i, i + 12)),
             f"-m {name}")
    thread = magics_of(shell).session.thread()
    requests = sent(emulator)
    left = 0
    for index, (turn, request) in enumerate(zip(thread.turns, requests)):
        size = exact(name, request.messages)
        assert size == turn.usage.input_tokens <= budget  # never over the window
        start = turn.context_start or 0
        if start:
            left += 1
            older = thread.turns[start - 1]
            system, rest = request.messages[:1], request.messages[1:]
            if system and system[0][0] != "system":
                system, rest = [], request.messages
            longer = exact(name, [*system, ("user", older.user), ("assistant", older.reply),
                                  *rest])
            # A turn that fits is left out only where it would fill the room (2% on gRPC,
            # whose tokenizer counts; 5% without one, where bytes bound the new message).
            slack = 0.02 if API_OF[name] == "text-generation" else 0.05
            assert longer > budget or longer > (1 - slack) * budget, (index, size, longer)
    assert left > 4, "the thread never reached the window's edge"
    out = capsys.readouterr().out
    assert "left out to fit the 1500-token window" in out
    assert ("upper bounds" in out) is (API_OF[name] == "openai-compatible")


def test_a_message_too_long_for_an_http_model_is_refused_before_sending(
    shell: Any, emulator: Emulator
) -> None:
    shell.run_cell("%config ChatMagics.context_window = 3000").raise_error()
    message = fails(shell, f"%%chat -m {QWEN} --max-tokens 1000\n" + "lorem ipsum " * 1000)
    assert "tokens over the room" in message and "UTF-8" in message
    assert sent(emulator) == []


# -- structured output, tools ----------------------------------------------------------------


def test_schema_gives_a_validated_object(shell: Any, model: str) -> None:
    shell.run_cell("import pydantic\nclass Fact(pydantic.BaseModel):\n"
                   "    person: str\n    year: int").raise_error()
    chat(shell, "Who published special relativity, and when?", "--schema Fact -o fact")
    fact = shell.user_ns["fact"]
    assert type(fact).__name__ == "Fact" and isinstance(fact.year, int)
    (turn,) = turns(shell)
    assert turn.schema == "Fact" and turn.value == {"person": fact.person, "year": fact.year}
    chat(shell, "Any JSON object about Einstein", "--json -o anything")
    assert isinstance(shell.user_ns["anything"], dict)


DEFINE = '''
calls = []
def calculator(expression: str) -> str:
    """A simple calculator that performs basic arithmetic and @ operations; call it on ANY
    arithmetic questions"""
    calls.append(expression)
    return "-5"
'''


@pytest.mark.parametrize(("policy", "typed", "runs"), [
    ("auto", "", True), ("ask", "y", True), ("ask", "n", False), ("never", "", False)])
def test_tools_run_only_as_the_policy_says_and_results_answer_their_calls(
    shell: Any, emulator: Emulator, model: str, monkeypatch: pytest.MonkeyPatch,
    policy: str, typed: str, runs: bool,
) -> None:
    shell.run_cell(DEFINE).raise_error()
    shell.run_cell(f"%config ChatMagics.tool_calls = {policy!r}").raise_error()
    prompts: list[str] = []
    monkeypatch.setattr(builtins, "input", lambda prompt="": prompts.append(prompt) or typed)
    chat(shell, "How much it would be 7@8?", "--tools calculator")
    assert shell.user_ns["calls"] == (["7@8"] if runs else [])
    assert prompts == (["Run calculator? [y/N] "] if policy == "ask" else [])
    (turn,) = turns(shell)
    (call,) = turn.tool_rounds[0].calls
    assert call.outcome == ("ran" if runs else "refused")
    requests = sent(emulator)
    assert len(requests) == 2 and ("-5" in requests[1].messages[-1][1]) is runs
    if API_OF[model] == "openai-compatible":  # the result names the call it answers
        assert call.id.startswith("chatcmpl-tool-")
    else:
        assert call.id == ""
    chat(shell, "And 2@3?", "--tools calculator")  # the round goes again as context
    assert len(turns(shell)) == 2


# -- many prompts at once -------------------------------------------------------------------


def test_map_runs_every_row(shell: Any, emulator: Emulator, model: str) -> None:
    shell.user_ns["items"] = ["apple", "pear", "plum"]
    chat(shell, "Colour of {item}?", "--map items -o colours")
    colours = shell.user_ns["colours"]
    assert len(colours) == 3 and all(isinstance(c, str) and c for c in colours)
    requests = sent(emulator)
    assert sorted(r.messages[-1][1] for r in requests) == [
        "Colour of apple?", "Colour of pear?", "Colour of plum?"]
    assert {r.method for r in requests} == {METHOD_OF[API_OF[model]]}


# -- transcripts ----------------------------------------------------------------------------


def _converse(shell: Any) -> None:
    chat(shell, "What is a monad?", '-s "Be brief"')
    shell.run_cell(DEFINE).raise_error()
    shell.run_cell('%config ChatMagics.tool_calls = "auto"').raise_error()
    chat(shell, "How much it would be 7@8?", "--tools calculator")
    chat(shell, "And a functor?")


@pytest.mark.parametrize("suffix", [".ipynb", ".md", ".json", ".jsonl"])
def test_save_load_keep_every_turn_with_its_api_and_call_ids(
    shell: Any, model: str, tmp_path: Path, suffix: str
) -> None:
    _converse(shell)
    before = [t for t in turns(shell)]
    shell.run_line_magic("chat", f"save {tmp_path}/t{suffix}")
    shell.run_line_magic("chat", f"load {tmp_path}/t{suffix} -t again")
    after = turns(shell, "again")
    assert after == before
    assert [t.api for t in after] == [API_OF[model]] * 3
    assert after[1].tool_rounds == before[1].tool_rounds  # ids included


def test_record_then_replay_answers_offline_the_same(
    shell: Any, emulator: Emulator, model: str, tmp_path: Path
) -> None:
    shell.run_line_magic("chat", f"record {tmp_path}/rec.jsonl")
    _converse(shell)
    shell.run_line_magic("chat", "live")
    recorded = [(t.user, t.reply, t.sha256, t.usage, t.api) for t in turns(shell)]
    shell.run_line_magic("chat", "reset --all")
    shell.run_line_magic("chat", f"replay {tmp_path}/rec.jsonl")
    count = len(sent(emulator))
    _converse(shell)
    assert len(sent(emulator)) == count  # nothing went out
    assert [(t.user, t.reply, t.sha256, t.usage, t.api) for t in turns(shell)] == recorded
    assert shell.user_ns["calls"] == []  # defined again above, and replay runs nothing


def test_restore_from_the_notebook_rebuilds_the_thread(
    shell: Any, emulator: Emulator, model: str, tmp_path: Path
) -> None:
    _converse(shell)
    path = tmp_path / "work.ipynb"
    shell.run_line_magic("chat", f"save {path}")
    def kept(thread: Any) -> list[Any]:  # a saved notebook gives each turn its own cell id
        return [(t.user, t.reply, t.model, t.usage, t.sha256, t.api, t.tool_rounds)
                for t in thread]

    before = kept(turns(shell))
    shell.run_line_magic("chat", "reset --all")
    shell.run_line_magic("chat", f"restore {path}")
    assert kept(turns(shell)) == before
    chat(shell, "One more")
    assert len(sent(emulator)[-1].messages) == 1 + 2 * 3 + 2 + 1  # system, turns, round, new
    assert sent(emulator)[-1].method == METHOD_OF[API_OF[model]]


def test_an_old_transcript_without_apis_or_ids_still_loads(shell: Any, tmp_path: Path) -> None:
    _converse(shell)
    path = tmp_path / "t.json"
    shell.run_line_magic("chat", f"save {path}")
    data = json.loads(path.read_text())

    def strip(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k not in ("api", "id")}
        return [strip(v) for v in value] if isinstance(value, list) else value

    path.write_text(json.dumps(strip(data)))
    shell.run_line_magic("chat", f"load {path} -t old")
    old = turns(shell, "old")
    assert len(old) == 3 and {t.api for t in old} == {""}


# -- the widget ------------------------------------------------------------------------------


def test_the_widget_talks_to_either_api_and_lists_the_catalogue(
    shell: Any, emulator: Emulator, model: str
) -> None:
    widget = ChatWidget(session=magics_of(shell).session)
    try:
        assert {QWEN, GEMMA, "gpt-oss-20b", "yandexgpt"} <= set(widget.model_box.options)
        line = widget.usage_line.value
        assert ("OpenAI-compatible API (HTTP)" in line) is (API_OF[model] == "openai-compatible")
        widget.model_box.value = GEMMA  # the line follows the box, the window with it
        assert "Gemma 3 27B: OpenAI-compatible API (HTTP), 131072-token window" in (
            widget.usage_line.value)
        widget.model_box.value = model
        send_and_wait(widget, "Name three rivers")
        chat(shell, "And two lakes?")
        (first, second) = shown_turns(widget)
        assert first["meta"].startswith(f"#1 · {model}/latest")
        assert [t.api for t in turns(shell)] == [API_OF[model]] * 2
        assert sent(emulator)[-1].messages[:2] == [("user", "Name three rivers"),
                                                    ("assistant", turns(shell)[0].reply)]
    finally:
        widget.close()


# -- bad input -------------------------------------------------------------------------------


def test_a_model_no_api_serves_is_one_line_naming_both_apis(
    shell: Any, emulator: Emulator
) -> None:
    emulator.fail(grpc.StatusCode.INVALID_ARGUMENT, "invalid model_uri")
    message = fails(shell, "%%chat -m mistral-large\nhello")
    assert "Text Generation API" in message and "OpenAI-compatible API" in message
    assert QWEN in message and "%chat models" in message
    assert sent(emulator)[-1].method == "Completion"  # a model the table does not know


@pytest.mark.parametrize(("code", "words"), [
    (grpc.StatusCode.UNAUTHENTICATED, "Authentication failed"),
    (grpc.StatusCode.PERMISSION_DENIED, "Permission denied"),
    (grpc.StatusCode.RESOURCE_EXHAUSTED, "Quota or rate limit reached"),
    (grpc.StatusCode.INVALID_ARGUMENT, "number of input tokens must be no more than 100"),
    (grpc.StatusCode.UNAVAILABLE, "is unreachable"),
])
def test_http_errors_read_like_grpc_ones_scrubbed(
    shell: Any, emulator: Emulator, code: grpc.StatusCode, words: str
) -> None:
    details = "number of input tokens must be no more than 100, got 120; key {authorization}"
    for method in ("Completion", "ChatCompletion"):
        emulator.fail(code, details, method=method, times=2, prefixed=True)
    grpc_message = fails(shell, "%%chat\nhello")
    http_message = fails(shell, f"%%chat -m {QWEN}\nhello")
    assert words in grpc_message and words in http_message
    for message in (grpc_message, http_message):
        assert TEST_API_KEY not in message and "internal_id" not in message
    assert turns(shell) == []


def test_the_chat_endpoint_is_used_and_a_plain_http_one_needs_insecure(
    shell: Any, emulator: Emulator, clean_env: pytest.MonkeyPatch
) -> None:
    clean_env.delenv("YAGPT_CHAT_ENDPOINT")
    message = fails(shell, f"%%chat -m {QWEN}\nhello")
    assert "chat_endpoint" in message and sent(emulator) == []
    shell.run_cell(f"%config ChatMagics.chat_endpoint = {emulator.chat_url!r}").raise_error()
    chat(shell, "hello", f"-m {QWEN}")
    assert sent(emulator)[-1].method == "ChatCompletion"
    clean_env.delenv("YAGPT_INSECURE")
    assert "Plain HTTP" in fails(shell, f"%%chat -m {QWEN}\nhello")
    rows = {row[0]: row[1:] for row in shell.run_line_magic("chat", "config").rows}
    assert rows["chat_endpoint"][1] == "%config ChatMagics.chat_endpoint"


def test_offline_answers_both_apis(bare_shell: Any) -> None:
    bare_shell.run_line_magic("chat", "offline")
    chat(bare_shell, "hello")
    chat(bare_shell, "hello again", f"-m {QWEN}")
    assert [t.api for t in turns(bare_shell)] == ["text-generation", "openai-compatible"]
    rows = {row[0]: row[1:] for row in bare_shell.run_line_magic("chat", "config").rows}
    assert rows["chat_endpoint"][0].startswith("http://127.0.0.1:")


# -- a notebook saved by a kernel, restored in another ----------------------------------------


def test_restore_after_a_kernel_restart_on_a_qwen_thread(
    emulator: Emulator, tmp_path: Path
) -> None:
    path = tmp_path / "qwen.ipynb"
    cells = [("setup", "%load_ext yagpt_magic"),
             ("c1", f'%%chat -m {QWEN} -s "Be brief"\nFirst question'),
             ("c2", f"%%chat -m {QWEN}\nSecond question")]
    env = {**emulator_env(emulator), "JPY_SESSION_NAME": str(path)}
    with Kernel(env) as kernel:
        notebook = []
        for cell_id, source in cells:
            run = kernel.run(source, cell_id)
            assert run.ok, run.error
            outputs = [new_output(m["msg_type"].replace("update_", ""), data=m["content"]["data"],
                                  metadata=m["content"]["metadata"])
                       for m in run.of_type("display_data", "update_display_data")][-1:]
            notebook.append(new_code_cell(source, id=cell_id, outputs=outputs))
        nbformat.write(new_notebook(cells=notebook), path)
        before = sent(emulator)[-1]
        kernel.restart()
        assert kernel.run("%load_ext yagpt_magic").ok
        restored = kernel.run("%chat restore")
        assert restored.ok and "Restored 2 turns" in restored.text, restored.error
        assert kernel.run(f"%%chat -m {QWEN}\nThird question", "c3").ok
        after = sent(emulator)[-1]
        assert after.method == "ChatCompletion"
        assert after.messages[:len(before.messages)] == before.messages
