"""SPEC 12 through the session: the notebook's functions as tools, against the emulator.

The emulator calls a tool when the last user text names it ("then" starts a later
round) and answers by quoting the results it got back, so every test here sees what
really went over gRPC, both ways.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import pytest

from yagpt_magic.core.conversation import ToolCall
from yagpt_magic.core.errors import Interrupted, UsageProblem
from yagpt_magic.core.session import ChatSession
from yagpt_magic.core.settings import Settings
from yagpt_magic.core.tools import REFUSED, ToolEvent, build_tool, offer
from yagpt_magic.emulator import Emulator
from yagpt_magic.service.live import LiveBackends
from yagpt_magic.transcript.modes import go_live, start_recording, start_replay

from ..conftest import TEST_API_KEY


class Table:
    """A user's functions, counting their calls."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def lookup(self, column: str, n: int = 3) -> str:
        """Mean of a column of my table."""
        self.calls.append(("lookup", (column, n)))
        return f"mean of {column} is 42.5"

    def total(self) -> int:
        """Sum of all prices."""
        self.calls.append(("total", ()))
        return 1234

    def broken(self) -> str:
        """A function with a bug."""
        self.calls.append(("broken", ()))
        raise ValueError("no such column: 'prise'")


@pytest.fixture
def table() -> Table:
    return Table()


@pytest.fixture
def session(emulator: Emulator, clean_env: pytest.MonkeyPatch, table: Table
            ) -> Iterator[ChatSession]:
    settings = Settings(endpoint=emulator.address, insecure=True, stream=False,
                        tool_calls="auto")
    live = LiveBackends(settings)
    live.log_in(TEST_API_KEY, "b1gtest")
    found = ChatSession(settings, live, secrets=live.secrets)
    found.namespace = {"lookup": table.lookup, "total": table.total, "broken": table.broken,
                       "not_a_function": 3}
    yield found
    found.close()


def texts(emulator: Emulator, k: int = -1) -> list[tuple[str, str]]:
    return emulator.completions[k].messages


def test_a_call_runs_once_with_the_models_arguments_and_its_result_reaches_the_model(
    session: ChatSession, emulator: Emulator, table: Table
) -> None:
    events: list[ToolEvent] = []
    answer = session.ask("default", 'Use lookup for "price"', tools="lookup",
                         on_tool=events.append)
    assert table.calls == [("lookup", ("price", 3))]
    assert texts(emulator)[1:] == [("assistant", 'lookup({"column":"price"})'),
                                   ("user", "lookup: mean of price is 42.5")]
    assert "mean of price is 42.5" in answer.turn.reply  # the model quoted it: on screen
    assert answer.turn.tool_rounds[0].calls == (
        ToolCall("lookup", {"column": "price"}, "mean of price is 42.5", "ran"),)
    assert [e.kind for e in events] == ["call", "done"]
    assert len(emulator.completions) == 2


def test_the_offered_definition_comes_from_signature_and_docstring(table: Table) -> None:
    tool = build_tool("lookup", table.lookup)
    schema = json.loads(tool.definition.parameters)
    assert tool.definition.description == "Mean of a column of my table."
    assert schema["properties"]["column"] == {"type": "string"}
    assert schema["properties"]["n"] == {"type": "integer", "default": 3}
    assert schema["required"] == ["column"]


def test_json_numbers_become_the_annotated_type(session: ChatSession, emulator: Emulator,
                                               table: Table) -> None:
    emulator.call_tools([("lookup", {"column": "price", "n": 5.0})])
    session.ask("default", "go", tools="lookup")
    assert table.calls == [("lookup", ("price", 5))]
    assert isinstance(table.calls[0][1][1], int)


@pytest.mark.parametrize("policy", ["never", "ask"])
def test_never_and_ask_no_do_not_run_and_tell_the_model(
    session: ChatSession, emulator: Emulator, table: Table, policy: Literal["never", "ask"]
) -> None:
    session.settings.set("tool_calls", policy)
    asked: list[str] = []

    def approve(name: str, arguments: Any) -> bool:
        asked.append(name)
        return False

    answer = session.ask("default", 'Use lookup for "price"', tools="lookup", approve=approve)
    assert table.calls == []
    assert asked == (["lookup"] if policy == "ask" else [])
    assert texts(emulator)[-1] == ("user", f"lookup: {REFUSED}")
    assert answer.turn.tool_rounds[0].calls[0].outcome == "refused"


def test_ask_yes_runs_the_call(session: ChatSession, table: Table) -> None:
    session.settings.set("tool_calls", "ask")
    session.ask("default", 'Use lookup for "price"', tools="lookup",
                approve=lambda name, arguments: True)
    assert table.calls == [("lookup", ("price", 3))]


def test_a_raising_tool_sends_type_and_message_back(
    session: ChatSession, emulator: Emulator, table: Table
) -> None:
    answer = session.ask("default", "call broken", tools="broken")
    assert texts(emulator)[-1] == ("user", "broken: ValueError: no such column: 'prise'")
    assert answer.turn.tool_rounds[0].calls[0].outcome == "raised"
    assert "ValueError: no such column" in answer.turn.reply


@pytest.mark.parametrize("stream", [False, True])
def test_two_rounds(session: ChatSession, emulator: Emulator, table: Table,
                    stream: bool) -> None:
    shown: list[str] = []
    answer = session.ask("default", 'Call total, then lookup "price"', tools="total,lookup",
                         options=session.options(stream=stream), on_text=shown.append)
    if stream:
        assert shown[-1] == answer.turn.reply  # the answer streamed in after the calls
    assert [name for name, _ in table.calls] == ["total", "lookup"]
    assert len(answer.turn.tool_rounds) == 2
    assert len(emulator.completions) == 3
    assert [role for role, _ in texts(emulator)] == ["user", "assistant", "user", "assistant",
                                                     "user"]


def test_parallel_calls_run_in_the_order_given(
    session: ChatSession, emulator: Emulator, table: Table
) -> None:
    answer = session.ask("default", 'Use lookup on "price" and total', tools="total,lookup")
    assert [name for name, _ in table.calls] == ["lookup", "total"]
    (only,) = answer.turn.tool_rounds
    assert [c.name for c in only.calls] == ["lookup", "total"]
    assert texts(emulator)[-1] == ("user", "lookup: mean of price is 42.5; total: 1234")


def test_an_interrupt_during_a_call_stops_the_loop_and_commits_nothing(
    session: ChatSession, emulator: Emulator
) -> None:
    def slow() -> str:
        """Takes too long: the user presses interrupt."""
        raise KeyboardInterrupt

    session.namespace = {"slow": slow}
    with pytest.raises(KeyboardInterrupt):
        session.ask("default", "run slow", tools="slow")
    assert session.thread("default").turns == []
    assert len(emulator.completions) == 1  # no result went back


def test_stop_while_waiting_for_approval_commits_nothing(
    session: ChatSession, table: Table
) -> None:
    session.settings.set("tool_calls", "ask")
    cancel = threading.Event()

    def approve(name: str, arguments: Any) -> bool:
        cancel.set()  # Stop pressed while the question is open
        return True

    with pytest.raises(Interrupted):
        session.ask("default", 'lookup "price"', tools="lookup", approve=approve,
                    cancel=cancel)
    assert table.calls == [] and session.thread("default").turns == []


def test_an_unknown_name_is_reported_not_run(
    session: ChatSession, emulator: Emulator, table: Table
) -> None:
    emulator.call_tools([("broken", {}), ("lookup", {"column": "a"})])
    answer = session.ask("default", "hello", tools="lookup")
    assert table.calls == [("lookup", ("a", 3))]  # broken exists but was not offered
    outcomes = [c.outcome for c in answer.turn.tool_rounds[0].calls]
    assert outcomes == ["unknown", "ran"]
    assert "no function named 'broken' is offered" in texts(emulator)[-1][1]


def test_calls_without_any_offered_tool_are_refused(
    session: ChatSession, emulator: Emulator, table: Table
) -> None:
    emulator.call_tools([("total", {})])
    answer = session.ask("default", "hello")
    assert table.calls == [] and answer.turn.tool_rounds[0].calls[0].outcome == "unknown"


def test_bad_arguments_go_back_as_an_error(session: ChatSession, emulator: Emulator,
                                           table: Table) -> None:
    emulator.call_tools([("lookup", {"n": "many"})])
    answer = session.ask("default", "hello", tools="lookup")
    assert table.calls == []
    call = answer.turn.tool_rounds[0].calls[0]
    assert call.outcome == "invalid" and "missing required argument: 'column'" in call.result


def test_long_results_are_truncated_with_a_note(session: ChatSession, emulator: Emulator
                                                ) -> None:
    session.settings.set("tool_result_limit", 100)
    session.namespace = {"big": lambda: "x" * 5000}
    answer = session.ask("default", "big", tools="big")
    result = answer.turn.tool_rounds[0].calls[0].result
    assert result.startswith("x" * 100 + "\n[truncated: the result has 5000 characters")
    assert len(texts(emulator)[-1][1]) < 300


def test_max_tool_rounds_then_the_model_must_answer(
    session: ChatSession, emulator: Emulator, table: Table
) -> None:
    session.settings.set("max_tool_rounds", 2)
    emulator.call_tools([("total", {})], times=2)
    answer = session.ask("default", "hello", tools="total")
    assert len(answer.turn.tool_rounds) == 2 and len(table.calls) == 2
    assert len(emulator.completions) == 3
    assert answer.turn.reply  # the third request forbade calls: the model answered


def test_the_next_turn_carries_the_tool_turn(session: ChatSession, emulator: Emulator) -> None:
    session.ask("default", 'Use lookup for "price"', tools="lookup")
    first_reply = session.thread("default").turns[0].reply
    session.ask("default", "thanks")
    assert texts(emulator) == [
        ("user", 'Use lookup for "price"'),
        ("assistant", 'lookup({"column":"price"})'),
        ("user", "lookup: mean of price is 42.5"),
        ("assistant", first_reply),
        ("user", "thanks"),
    ]


def test_fitting_counts_the_tool_messages(session: ChatSession, emulator: Emulator) -> None:
    session.namespace = {"big": lambda: "word " * 700}
    session.settings.set("tool_result_limit", 10_000)
    session.ask("default", "big", tools="big")
    turn = session.thread("default").turns[0]
    assert turn.bound > 3500  # the result is part of the turn's size
    # A window with room for the new message but not for the tool turn leaves it out.
    answer = session.ask("default", "next", context_window=1500,
                         options=session.options(max_tokens=200))
    assert answer.fit.left_out == 1
    assert texts(emulator) == [("user", "next")]


def test_replay_of_a_tool_turn_runs_nothing(
    session: ChatSession, emulator: Emulator, table: Table, tmp_path: Path
) -> None:
    path = tmp_path / "t.jsonl"
    live = session.backends
    start_recording(session, live, path)
    recorded = session.ask("default", 'Use lookup for "price"', tools="lookup")
    go_live(session, live)
    sent = len(emulator.completions)

    settings = Settings(tool_calls="auto")
    other_live = LiveBackends(settings)
    other = ChatSession(settings, other_live)
    other.namespace = session.namespace
    start_replay(other, other_live, path)
    events: list[ToolEvent] = []
    replayed = other.ask("default", 'Use lookup for "price"', tools="lookup",
                         on_tool=events.append)
    assert table.calls == [("lookup", ("price", 3))]  # only the recorded run
    assert len(emulator.completions) == sent
    assert replayed.turn.reply == recorded.turn.reply
    assert replayed.turn.tool_rounds == recorded.turn.tool_rounds
    assert [(e.kind, e.replayed) for e in events] == [("done", True)]


@pytest.mark.parametrize("suffix", [".json", ".jsonl", ".md", ".ipynb"])
def test_transcripts_save_and_load_the_calls(
    session: ChatSession, tmp_path: Path, suffix: str
) -> None:
    from yagpt_magic.transcript import load_threads, save_thread

    session.ask("default", 'Call total, then lookup "price"', tools="total,lookup")
    session.ask("default", "thanks")
    path = tmp_path / f"t{suffix}"
    save_thread(session.thread("default"), path)
    loaded = load_threads(path)["default"]
    assert [t.tool_rounds for t in loaded.turns] == [
        t.tool_rounds for t in session.thread("default").turns]
    assert loaded.turns[0].messages() == session.thread("default").turns[0].messages()


def test_a_malformed_recorded_call_is_a_clear_error(session: ChatSession, tmp_path: Path
                                                    ) -> None:
    from yagpt_magic.core.errors import TranscriptError
    from yagpt_magic.transcript import load_threads, save_thread

    session.ask("default", "call total", tools="total")
    path = tmp_path / "t.json"
    save_thread(session.thread("default"), path)
    text = path.read_text().replace('"outcome": "ran"', '"outcome": "maybe"')
    path.write_text(text)
    with pytest.raises(TranscriptError, match="tool round 0 call 0: unknown outcome 'maybe'"):
        load_threads(path)


def test_names_are_checked_before_anything_is_sent(session: ChatSession, emulator: Emulator
                                                   ) -> None:
    with pytest.raises(UsageProblem, match="'nope' is not defined"):
        session.ask("default", "hi", tools="lookup,nope")
    with pytest.raises(UsageProblem, match="'not_a_function' is a int, not a function"):
        session.ask("default", "hi", tools="not_a_function")
    assert emulator.completions == []


def test_an_unsupported_annotation_names_the_parameter() -> None:
    class Frame:
        pass

    def query(frame: Frame, limit: int = 5) -> str:
        """Query a frame."""
        return ""

    with pytest.raises(UsageProblem, match=r"parameter 'frame' of query\(\) has a type"):
        offer({"query": query}, ["query"])

    def star(*columns: str) -> str:
        return ""

    with pytest.raises(UsageProblem, match=r"star\(\) takes \*columns"):
        offer({"star": star}, ["star"])


def test_the_tools_setting_offers_them_on_every_turn(
    session: ChatSession, emulator: Emulator, table: Table
) -> None:
    session.settings.set("tools", ["total"])
    session.ask("default", "what is the total?")
    session.ask("default", "and the total again?")
    assert len(table.calls) == 2
    assert session.thread("default").usage.total_tokens == sum(
        t.usage.total_tokens + sum(r.usage.total_tokens for r in t.tool_rounds)
        for t in session.thread("default").turns)


def test_a_redefined_function_is_offered_with_its_new_signature(
    session: ChatSession, emulator: Emulator
) -> None:
    seen: list[Any] = []

    def pick(count: int) -> str:
        """Pick some rows."""
        seen.append(count)
        return "ok"

    session.namespace = {"pick": pick}
    emulator.call_tools([("pick", {"count": 2.0})])
    session.ask("default", "one", tools="pick")

    def pick(rows: int) -> str:  # type: ignore[no-redef]  # the user re-ran the cell
        """Pick some rows."""
        seen.append(rows)
        return "ok"

    session.namespace = {"pick": pick}
    emulator.call_tools([("pick", {"rows": 3.0})])
    answer = session.ask("default", "two", tools="pick")
    assert seen == [2, 3]
    assert answer.turn.tool_rounds[0].calls[0].outcome == "ran"


# -- issue 25: what the user approves, what a tool may give away, what a tool may raise ----
def test_arguments_keep_the_signature_order(session: ChatSession, emulator: Emulator) -> None:
    def send(recipient: str, message: str, cc: str = "") -> str:
        """Send a message."""
        return "sent"

    session.namespace = {"send": send}
    emulator.call_tools([("send", {"message": "m", "cc": "c", "recipient": "r"})])
    events: list[ToolEvent] = []
    answer = session.ask("default", "go", tools="send", on_tool=events.append)
    assert [list(e.arguments) for e in events] == [["recipient", "message", "cc"]] * 2
    assert list(answer.turn.tool_rounds[0].calls[0].arguments) == ["recipient", "message", "cc"]


class Custom(BaseException):
    """Not an Exception: a library's own control-flow signal."""


class LoudStr:
    def __str__(self) -> str:
        raise SystemExit("from __str__")


@pytest.mark.parametrize("error", [SystemExit(3), GeneratorExit("closed"), Custom("odd"),
                                   "str"])
def test_a_base_exception_from_a_tool_is_its_error_result(
    session: ChatSession, emulator: Emulator, error: Any
) -> None:
    def quits() -> Any:
        """Stops in a way the model should hear of."""
        if error == "str":
            return LoudStr()
        raise error

    session.namespace = {"quits": quits}
    answer = session.ask("default", "call quits", tools="quits")
    (call,) = answer.turn.tool_rounds[0].calls
    name = "SystemExit" if error == "str" else type(error).__name__
    assert call.outcome == "raised" and call.result.startswith(f"{name}: ")
    assert texts(emulator)[-1] == ("user", f"quits: {call.result}")


def test_a_tools_result_is_scrubbed_before_it_is_kept_or_sent(
    session: ChatSession, emulator: Emulator
) -> None:
    from ..leaks import leaked

    def whoami() -> str:
        """The credential, as a careless helper might return it."""
        return f"key={TEST_API_KEY} hex={TEST_API_KEY.encode().hex()} rev={TEST_API_KEY[::-1]}"

    session.namespace = {"whoami": whoami}
    events: list[ToolEvent] = []
    answer = session.ask("default", "call whoami", tools="whoami", on_tool=events.append)
    (call,) = answer.turn.tool_rounds[0].calls
    assert call.result.startswith("key=*** hex=***")
    assert leaked(TEST_API_KEY, call.result) == []
    assert leaked(TEST_API_KEY, texts(emulator)[-1][1]) == []
    assert all(e.record is None or e.record.result == call.result for e in events)


def test_call_text_is_the_whole_call_as_python_wrapped() -> None:
    import ast

    from yagpt_magic.core.tools import call_text

    notes = "Hi team, here are the meeting notes from today.\n" * 20 + "x" * 500
    text = call_text("send", {"recipient": "attacker@evil.example", "message": notes,
                              "bad\nkey\u202e": [1, {"a": "\x1b[2K"}]})
    assert max(len(line) for line in text.splitlines()) <= 100
    call = ast.parse(text, mode="eval").body
    assert isinstance(call, ast.Call) and ast.unparse(call.func) == "send"
    shown = {k.arg: ast.literal_eval(k.value) for k in call.keywords if k.arg}
    shown.update(*(ast.literal_eval(k.value) for k in call.keywords if k.arg is None))
    assert shown == {"recipient": "attacker@evil.example", "message": notes,
                     "bad\nkey\u202e": [1, {"a": "\x1b[2K"}]}
    assert all(c.isprintable() for c in text.replace("\n", ""))
    assert call_text("lookup", {"column": "price"}) == "lookup(column='price')"


def test_call_text_escapes_a_name_the_model_made_up() -> None:
    from yagpt_magic.core.tools import call_text

    text = call_text("f\x1b[1A\rRun f? [y/N] y\u202e", {})
    assert all(c.isprintable() for c in text) and "\\x1b" in text and "\\u202e" in text


def test_a_result_with_an_unpaired_surrogate_is_sent_and_kept_as_its_escape(
    session: ChatSession, emulator: Emulator, tmp_path: Path
) -> None:
    from yagpt_magic.transcript import load_threads, save_thread

    session.namespace = {"read": lambda: b"caf\xe9".decode("utf-8", "surrogateescape")}
    answer = session.ask("default", "call read", tools="read")
    assert answer.turn.tool_rounds[0].calls[0].result == "caf\\udce9"
    for suffix in (".ipynb", ".md", ".json", ".jsonl"):
        save_thread(session.thread("default"), tmp_path / f"t{suffix}")
        assert load_threads(tmp_path / f"t{suffix}")["default"] == session.thread("default")


def test_arguments_no_file_can_hold_are_refused_before_anything_runs(table: Table) -> None:
    from yagpt_magic.core.backend import Reply, RequestOptions
    from yagpt_magic.core.conversation import Usage
    from yagpt_magic.core.errors import InvalidReply
    from yagpt_magic.core.tools import ToolRun

    deep: Any = "x"
    for _ in range(900):
        deep = [deep]
    reply = Reply("", "tool_calls", Usage(), "gpt://f/m", "1",
                  tool_calls=(("lookup", {"column": "a"}), ("lookup", {"column": deep})))
    run = ToolRun(offer({"lookup": table.lookup}, ["lookup"]), "auto")
    with pytest.raises(InvalidReply, match="nested more than 100 levels deep") as caught:
        run.run_rounds(reply, [], RequestOptions(model="m"), lambda *_: reply)
    assert "\n" not in str(caught.value) and table.calls == []


def test_a_whole_number_argument_reads_the_same_before_and_after_restore(
    session: ChatSession, emulator: Emulator, table: Table
) -> None:
    """Issue 25: the wire's 3.0 showed as 3.0, and as 3 once JupyterLab had saved it."""
    from yagpt_magic.core.tools import call_text

    emulator.call_tools([("lookup", {"column": "a", "n": 3.0, "nested": [2.0, 2.5]})])
    events: list[ToolEvent] = []
    answer = session.ask("default", "go", tools="lookup", on_tool=events.append)
    (call,) = answer.turn.tool_rounds[0].calls
    assert call.arguments == {"column": "a", "n": 3, "nested": [2, 2.5]}
    assert type(call.arguments["n"]) is int and type(call.arguments["nested"][1]) is float
    assert "n=3," in call_text(events[0].name, events[0].arguments)
    reloaded = json.loads(json.dumps(call.arguments).replace(".0", ""))  # as a browser saves
    assert call_text("lookup", reloaded) == call_text("lookup", call.arguments)
