"""The chat widget (SPEC 7), driven as a user would (type, click) against the emulator."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import ipywidgets as widgets
import pytest
from IPython.utils.capture import capture_output
from ipywidgets.widgets.widget import _instances

from yagpt_magic.display.render import reply_html
from yagpt_magic.emulator import Emulator
from yagpt_magic.widget.chat import ChatWidget

from .commcount import counting_comms
from .conftest import emulator_env, magics_of
from .kernel import Kernel

ROOT = Path(__file__).resolve().parent.parent


# -- helpers -----------------------------------------------------------------------


def wait_for(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    """Wait for something another thread does (a wait, not a timing assertion)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        time.sleep(0.005)


def shown_turns(w: ChatWidget) -> list[dict[str, Any]]:
    """The turns as the front end would draw them: walk the history's widget tree."""
    found: list[dict[str, Any]] = []

    def walk(box: widgets.Box) -> None:
        for child in box.children:
            if "yagpt-turn" in child._dom_classes:
                user, reply = child.children[0], child.children[1]
                data = reply.outputs[0]["data"] if reply.outputs else {}
                found.append({
                    "user": user.outputs[0]["data"]["text/plain"],
                    "reply": data.get("text/plain", ""),
                    "html": data.get("text/html", ""),
                    "classes": set(child._dom_classes) | set(reply._dom_classes),
                    "meta": next((c.value for c in child.children
                                  if "yagpt-meta" in c._dom_classes), None),
                })
            elif isinstance(child, widgets.Box):
                walk(child)

    walk(w.history)
    return found


def send(w: ChatWidget, text: str) -> None:
    w.message_box.value = text
    w.send_button.click()


def send_and_wait(w: ChatWidget, text: str) -> None:
    send(w, text)
    assert w.wait(30)


@pytest.fixture
def magics(shell: Any) -> Any:
    return magics_of(shell)


@pytest.fixture
def widget(magics: Any) -> Any:
    w = ChatWidget(session=magics.session)
    yield w
    w.close()


# -- a turn from the widget --------------------------------------------------------


def test_send_adds_a_turn_shared_with_chat_cells(
    shell: Any, magics: Any, widget: ChatWidget, emulator: Emulator
) -> None:
    assert widget.status_line.value == "idle"
    assert "no turns yet" in widget.usage_line.value

    send_and_wait(widget, "Name three **rivers**")

    thread = magics.session.thread("default")
    assert [t.user for t in thread.turns] == ["Name three **rivers**"]
    reply = thread.turns[0].reply
    assert widget.status_line.value == "idle"
    assert widget.message_box.value == ""
    assert not widget.send_button.disabled and widget.stop_button.disabled
    (turn,) = shown_turns(widget)
    assert turn["user"] == "Name three **rivers**"  # user text is inert, shown as typed
    assert turn["reply"] == reply
    assert turn["html"] == reply_html(reply)
    assert "yagpt-live" not in turn["classes"]
    usage = thread.turns[0].usage
    # The usage line: the thread's size against the window; the turn's own line too.
    assert f"1 turn, {usage.total_tokens} of 32768 tokens in the window" in (
        widget.usage_line.value)
    assert turn["meta"] == (f"#1 · yandexgpt/latest · {usage.total_tokens} tokens "
                            f"({usage.input_tokens} in, {usage.completion_tokens} out)")

    # The widget's turn is in %chat history and is context for the next %%chat.
    with capture_output() as out:
        shell.run_cell("%chat history").raise_error()
    assert "Name three **rivers**" in out.stdout
    shell.run_cell("%%chat\nAnd two lakes?").raise_error()
    assert emulator.completions[-1].messages == [
        ("user", "Name three **rivers**"), ("assistant", reply), ("user", "And two lakes?")]
    assert [t["user"] for t in shown_turns(widget)] == ["Name three **rivers**", "And two lakes?"]


def test_reply_html_is_shown_inert(widget: ChatWidget, emulator: Emulator) -> None:
    emulator.reply_with('Hi <img src=x onerror="alert(1)"> ![t](https://evil.example/?q=1)')
    send_and_wait(widget, "hello")
    (turn,) = shown_turns(widget)
    assert turn["html"] == reply_html(turn["reply"])
    assert "<img" not in turn["html"]


def test_model_and_temperature_controls_apply_to_the_request(
    widget: ChatWidget, emulator: Emulator
) -> None:
    assert widget.model_box.value == "yandexgpt"
    assert set(widget.model_box.options) >= {"yandexgpt", "yandexgpt-lite"}
    widget.model_box.value = "yandexgpt-lite"
    widget.temperature_slider.value = 0.2
    send_and_wait(widget, "hi")
    request = emulator.completions[-1]
    assert request.model_uri == "gpt://b1gtest/yandexgpt-lite/latest"
    assert request.options["temperature"] == pytest.approx(0.2)


def test_with_the_last_cells_sends_them_before_new_messages_only(
    shell: Any, magics: Any, widget: ChatWidget, emulator: Emulator
) -> None:
    """SPEC 16: the toggle does what %%chat --cells N does, once per new message."""
    assert not widget.cells_toggle.value  # off unless asked for
    shell.run_cell("zero = 0", store_history=True)
    send_and_wait(widget, "Q")
    assert emulator.completions[-1].messages[-1] == ("user", "Q")
    widget.cells_toggle.value = True
    widget.cells_count.value = 2
    for code in ("a = 'cell one'", "b = 'cell two'\nb", "c = 'cell three'"):
        shell.run_cell(code, store_history=True)
    send_and_wait(widget, "What did I just do?")
    text = emulator.completions[-1].messages[-1][1]
    assert "cell two" in text and "cell three" in text and "cell one" not in text
    assert text.endswith("My message:\n\nWhat did I just do?")
    assert magics.session.thread().turns[-1].user == text
    last = shown_turns(widget)[-1]
    assert last["user"] == text
    assert "[The last 2 code cells went in before the message.]" in last["reply"]
    # Regenerate resends the turn as it was: the cells are not put before it twice.
    widget.regenerate_button.click()
    assert widget.wait(30)
    assert emulator.completions[-1].messages[-1][1] == text


def test_with_the_last_cells_and_none_run_is_an_error_and_sends_nothing(
    widget: ChatWidget, emulator: Emulator
) -> None:
    widget.cells_toggle.value = True
    send(widget, "What did I just do?")
    assert "nothing to send" in widget.status_line.value
    assert widget.message_box.value == "What did I just do?" and not widget.busy
    assert emulator.completions == []


def test_empty_message_is_refused(widget: ChatWidget, emulator: Emulator) -> None:
    send(widget, "   ")
    assert widget.status_line.value.startswith("error: the message is empty")
    assert not widget.busy and emulator.completions == []


def test_service_error_shows_in_the_status_line(
    magics: Any, widget: ChatWidget, emulator: Emulator
) -> None:
    emulator.fail(grpc.StatusCode.RESOURCE_EXHAUSTED, "quota exceeded")
    send_and_wait(widget, "hello")
    assert widget.status_line.value.startswith("error: ")
    assert "quota" in widget.status_line.value.lower()
    assert magics.session.thread("default").turns == []
    assert shown_turns(widget) == []
    assert widget.message_box.value == "hello"  # kept, so the user can send it again
    assert not widget.send_button.disabled


# -- off the main thread -----------------------------------------------------------


def test_a_cell_runs_while_a_reply_streams(
    shell: Any, magics: Any, widget: ChatWidget, emulator: Emulator
) -> None:
    emulator.reply_with("one two three four five six seven eight", chunks=8)
    emulator.chunk_delay = 0.3
    events: list[str] = []
    widget.status_line.observe(lambda change: events.append(change["new"]), "value")
    magics.session.subscribe(lambda event: events.append(f"commit {event.index}"))
    shell.user_ns.update(events=events, w=widget)

    send(widget, "count slowly")
    assert events == ["sending…"]  # the click returned at once: nothing is committed
    wait_for(lambda: "streaming…" in events)
    shell.run_cell(
        "events.append(f'cell ran while {w.status_line.value} with {len(w._turns)} turns')"
    ).raise_error()
    assert widget.wait(30)

    assert events == [
        "sending…", "streaming…", "cell ran while streaming… with 0 turns", "commit 0", "idle"]
    assert shown_turns(widget)[0]["reply"] == "one two three four five six seven eight"


def test_stop_cancels_the_request_and_commits_nothing(
    magics: Any, widget: ChatWidget, emulator: Emulator
) -> None:
    emulator.reply_with("a long reply " * 20, chunks=20)
    emulator.chunk_delay = 0.3
    send(widget, "write a lot")
    assert not widget.stop_button.disabled and widget.send_button.disabled
    wait_for(lambda: widget.status_line.value == "streaming…")
    assert "yagpt-live" in shown_turns(widget)[0]["classes"]

    widget.stop_button.click()
    assert widget.wait(30)
    wait_for(lambda: emulator.cancelled == 1)

    assert widget.status_line.value.startswith("stopped")
    assert magics.session.thread("default").turns == []
    assert shown_turns(widget) == []
    assert widget.message_box.value == "write a lot"
    assert widget.stop_button.disabled and not widget.send_button.disabled


def test_a_second_send_while_in_flight_is_refused(
    magics: Any, widget: ChatWidget, emulator: Emulator
) -> None:
    emulator.delay = 0.5
    send(widget, "first")
    send(widget, "second")
    assert widget.status_line.value.startswith("busy: a reply is still being written")
    widget.clear_button.click()
    assert widget.status_line.value.startswith("busy")
    assert widget.wait(30)
    assert [t.user for t in magics.session.thread("default").turns] == ["first"]
    assert len(emulator.completions) == 1
    assert widget.message_box.value == "second"  # the refused message is still there


# -- live sharing ------------------------------------------------------------------


def test_chat_cells_reset_and_undo_show_up_live(
    shell: Any, magics: Any, widget: ChatWidget
) -> None:
    shell.run_cell("%%chat\nfirst question").raise_error()
    shell.run_cell("%%chat\nsecond question").raise_error()
    thread = magics.session.thread("default")
    assert [(t["user"], t["reply"]) for t in shown_turns(widget)] == [
        (t.user, t.reply) for t in thread.turns]
    assert ": 2 turns" in widget.usage_line.value

    shell.run_cell("%chat undo").raise_error()
    assert [t["user"] for t in shown_turns(widget)] == ["first question"]

    shell.run_cell("%chat reset").raise_error()
    assert shown_turns(widget) == []
    assert widget.history.children == (widget._tail,)
    assert "no turns yet" in widget.usage_line.value

    send_and_wait(widget, "after the reset")
    assert [t["user"] for t in shown_turns(widget)] == ["after the reset"]


def test_other_threads_do_not_show(shell: Any, widget: ChatWidget) -> None:
    shell.run_cell("%%chat -t other\nelsewhere").raise_error()
    assert shown_turns(widget) == []


def test_a_rerun_replaces_its_turn_in_place_and_marks_later_ones_stale(
    magics: Any, widget: ChatWidget
) -> None:
    session, options = magics.session, magics.options()
    for text, cell in (("q1", "c1"), ("q2", "c2"), ("q1 again", "c1")):
        session.ask("default", text, options=options, context_window=32768, cell_id=cell)
    turns = shown_turns(widget)
    assert [t["user"] for t in turns] == ["q1 again", "q2"]
    assert turns[0]["reply"] == session.thread("default").turns[0].reply
    assert "yagpt-stale" not in turns[0]["classes"]
    assert "yagpt-stale" in turns[1]["classes"]

    session.ask("default", "q2 again", options=options, context_window=32768, cell_id="c2")
    assert all("yagpt-stale" not in t["classes"] for t in shown_turns(widget))


def test_load_redraws_the_history(
    shell: Any, magics: Any, widget: ChatWidget, tmp_path: Path
) -> None:
    shell.run_cell("%%chat\nto be saved").raise_error()
    shell.run_cell("%%chat\nand this too").raise_error()
    saved = [(t.user, t.reply) for t in magics.session.thread("default").turns]
    path = tmp_path / "chat.json"
    shell.run_cell(f"%chat save {path}").raise_error()
    shell.run_cell("%chat reset").raise_error()
    assert shown_turns(widget) == []

    shell.run_cell(f"%chat load {path}").raise_error()
    assert [(t["user"], t["reply"]) for t in shown_turns(widget)] == saved
    assert ": 2 turns" in widget.usage_line.value


def test_two_widgets_on_one_thread_stay_in_step(magics: Any, widget: ChatWidget) -> None:
    other = ChatWidget("default", session=magics.session)
    try:
        send_and_wait(widget, "from the first")
        send_and_wait(other, "from the second")
        assert shown_turns(widget) == shown_turns(other)
        assert [t["user"] for t in shown_turns(other)] == ["from the first", "from the second"]
        other.clear_button.click()
        assert shown_turns(widget) == [] == shown_turns(other)
    finally:
        other.close()


def test_close_stops_listening(shell: Any, magics: Any) -> None:
    w = ChatWidget(session=magics.session)
    w.close()
    assert w.comm is None and w.history.comm is None
    shell.run_cell("%%chat\nafter close").raise_error()  # no error from a closed widget
    assert magics.session.thread("default").turns[0].user == "after close"


def test_chat_widget_command_displays_a_widget_on_the_thread(shell: Any, magics: Any) -> None:
    with capture_output() as out:
        shell.run_cell("%chat widget -t notes").raise_error()
    # The live widget, then the static transcript a saved notebook keeps (issue 19).
    shown, transcript = out.outputs
    assert "application/vnd.jupyter.widget-view+json" in shown.data
    assert "yagpt-static-transcript" in transcript.data["text/html"]
    assert "notes" in magics.session.threads
    model_id = shown.data["application/vnd.jupyter.widget-view+json"]["model_id"]
    w = _instances[model_id]
    assert isinstance(w, ChatWidget) and w.thread_name == "notes"
    w.close()
    with pytest.raises(Exception, match="unrecognized arguments"):
        shell.run_cell("%chat widget --bogus").raise_error()


def test_default_session_comes_from_the_running_shell(shell: Any, magics: Any) -> None:
    # Was `w.magics is magics`: the widget now holds only the session (issue 15).
    w = ChatWidget()
    try:
        assert w.session is magics.session
    finally:
        w.close()


# -- traffic -----------------------------------------------------------------------


def test_one_new_turn_costs_the_same_traffic_after_10_or_200_turns(
    magics: Any, emulator: Emulator
) -> None:
    emulator.reply_with("Same reply.", chunks=1, times=1000)
    session, options = magics.session, magics.options()

    def measure(w: ChatWidget, log: Any) -> tuple[list[tuple[str, str, int]], int, str]:
        mark = log.mark()
        send_and_wait(w, "Same question?")
        sent = log.since(mark)
        # The usage line and the new turn's meta line hold token totals and the turn's
        # number, whose digits grow: those two are compared by message count.
        usage_id, meta_id = w.usage_line.model_id, w._turns[-1].meta.model_id
        others = [(m.msg_type, m.method, m.size) for m in sent
                  if m.comm_id not in (usage_id, meta_id)]
        usage = [m for m in sent if m.comm_id == usage_id]
        meta = [(m.msg_type, m.method) for m in sent if m.comm_id == meta_id]
        return [*others, *meta], len(usage), w.usage_line.value

    with counting_comms() as log:
        w = ChatWidget(session=magics.session)
        try:
            for _ in range(10):
                session.ask("default", "Same question?", options=options, context_window=32768)
            at_10, usage_10, text_10 = measure(w, log)
            for _ in range(200 - 11):
                session.ask("default", "Same question?", options=options, context_window=32768)
            assert len(session.thread("default").turns) == 200
            at_200, usage_200, text_200 = measure(w, log)
        finally:
            w.close()

    # Identical messages, byte for byte, except the token totals' digits in the usage line.
    assert at_200 == at_10
    assert usage_200 == usage_10 == 1
    assert text_10 != text_200 and len(text_200) - len(text_10) <= 8
    opened = [m for m in at_10 if m[0] == "comm_open"]
    # The user and reply Outputs, the turn's meta line, the turn box, the new tail.
    assert len(opened) == 5
    assert len(at_10) < 25


# -- a real kernel -----------------------------------------------------------------


def test_in_a_kernel_cells_run_while_the_widget_streams(emulator: Emulator) -> None:
    emulator.reply_with("slow words " * 6, chunks=6)
    emulator.chunk_delay = 0.3
    with Kernel(emulator_env(emulator)) as kernel:
        kernel.run("%load_ext yagpt_magic\nfrom yagpt_magic import ChatWidget\nw = ChatWidget()")
        click = kernel.run(
            "w.message_box.value = 'hello'\nw.send_button.click()\nprint(w.status_line.value)")
        during = kernel.run("print(w.status_line.value, len(w._turns))")
        after = kernel.run("w.wait(30)\nprint(w.status_line.value, len(w._turns))\n%chat history")
    assert click.ok and click.text.strip() == "sending…"
    assert during.ok and during.text.strip().endswith(" 0")
    assert after.ok and after.text.strip().startswith("idle 1"), after.text
    assert "hello" in after.text
    # The worker's updates reach the front end as comm messages on iopub.
    updates = [m for m in click.messages + during.messages + after.messages
               if m["msg_type"] == "comm_msg"]
    assert any("outputs" in m["content"]["data"].get("state", {}) for m in updates)


def test_widget_notebook_runs(tmp_path: Path) -> None:
    from .test_quickstart import run_notebook

    nb = run_notebook(ROOT / "notebooks" / "widget.ipynb", {}, tmp_path)
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o["output_type"] == "error"]
    assert errors == []
    shown = [o for c in nb.cells for o in c.get("outputs", [])
             if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    assert len(shown) == 2  # the ChatWidget and %chat widget -t scratch
    texts = ["".join(o.get("text", "")) + o.get("data", {}).get("text/plain", "")
             for c in nb.cells for o in c.get("outputs", [])]
    assert "'idle'" in texts  # the widget's own turn finished cleanly
    history = next(t for t in texts if "Thread 'default': 2 turns" in t)
    assert "Which of them is the longest?" in history  # the widget turn, between two cells


# -- issue 25: what the widget refuses, and text it must never typeset -------------------
@pytest.mark.parametrize("value", ["AQVN" + "k3y" * 10, "  ", "Bearer t1.abcdefghijk"])
def test_the_model_box_refuses_what_dash_m_refuses(
    shell: Any, widget: ChatWidget, emulator: Emulator, value: str
) -> None:
    from .conftest import fails

    widget.model_box.value = value
    send(widget, "hi")
    assert not widget.busy and emulator.completions == []
    status = widget.status_line.value
    assert status.startswith("error: ") and (not value.strip() or value.strip() not in status)
    flag = fails(shell, f"%%chat -m '{value}'\nhi")  # the same check, with the flag's name
    assert status.replace("The model box", "-m") == f"error: {flag}"
    assert widget.message_box.value == "hi"  # kept, to send again with a model


def test_model_controlled_text_is_never_in_a_typesetting_label(
    shell: Any, widget: ChatWidget, emulator: Emulator
) -> None:
    """ipywidgets' Label hands its text to MathJax: ``$\\href{…}{…}$`` became a live link."""
    from yagpt_magic.widget.front import TextLine

    tex = "$\\href{http://evil.example}{click}$"
    shell.run_cell('def echo(x: str) -> str:\n    """Echo."""\n    return x').raise_error()
    shell.run_cell('%config ChatMagics.tools = ["echo"]').raise_error()
    shell.run_cell('%config ChatMagics.tool_calls = "auto"').raise_error()
    emulator.call_tools([(tex, {tex: tex})])
    send_and_wait(widget, "hello")
    texts = [w for w in descendants_of(widget) if "href" in str(getattr(w, "value", ""))]
    assert len(texts) == 2 and all(isinstance(w, TextLine) for w in texts)  # call, result
    emulator.fail(grpc.StatusCode.INVALID_ARGUMENT, f"bad model {tex}")
    send_and_wait(widget, "again")
    assert "href" in widget.status_line.value and isinstance(widget.status_line, TextLine)
    labels = [w for w in descendants_of(widget) if isinstance(w, widgets.Label)]
    assert labels == [], "a Label typesets; every line of the widget is a TextLine"
    assert isinstance(widget.usage_line, TextLine)


def descendants_of(w: widgets.Widget) -> list[widgets.Widget]:
    found = [w]
    for child in getattr(w, "children", ()):
        found += descendants_of(child)
    return found


def test_a_later_turn_clears_an_old_error(
    shell: Any, widget: ChatWidget, emulator: Emulator
) -> None:
    emulator.fail(grpc.StatusCode.UNAVAILABLE, "down")
    send_and_wait(widget, "hello")
    assert widget.status_line.value.startswith("error: ")
    shell.run_cell("%%chat\nfrom a cell").raise_error()
    assert widget.status_line.value == "idle"


def test_the_widget_and_history_number_and_count_a_tool_turn_alike(
    shell: Any, widget: ChatWidget, emulator: Emulator
) -> None:
    """Issue 25: #1 in the widget was 0 in %chat history; 1,484 tokens against 2,839."""
    shell.run_cell('def lookup(column: str) -> str:\n    """Mean of a column."""\n'
                   '    return "42.5"').raise_error()
    shell.run_cell('%config ChatMagics.tools = ["lookup"]').raise_error()
    shell.run_cell('%config ChatMagics.tool_calls = "auto"').raise_error()
    send_and_wait(widget, "hello")
    send_and_wait(widget, 'Use lookup for "price"')
    rows = shell.run_line_magic("chat", "history").rows
    metas = [t["meta"] for t in shown_turns(widget)]
    assert [row[0] for row in rows] == [1, 2]
    assert [meta.split(" · ")[0] for meta in metas] == ["#1", "#2"]
    tool_turn = magics_of(shell).session.thread().turns[1]
    assert tool_turn.tool_rounds and tool_turn.spent.total_tokens > tool_turn.usage.total_tokens
    assert rows[1][4] == tool_turn.spent.total_tokens
    assert metas[1].split(" · ")[2].startswith(f"{tool_turn.spent.total_tokens} tokens")
