"""Issue 19 in Python: regenerate, edit-and-resend, Enter from the front end, settings,
the static transcript a saved notebook keeps, and the terminal's one-line answer.

The browser side (keys, scrolling, code-block buttons, themes) is in
``tests/browser/test_widget_ux_browser.py``; here the same flows are driven through
the widget's controls and the messages its front end sends, against the emulator.
"""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import grpc
import pytest

from yagpt_magic.core.errors import UsageProblem
from yagpt_magic.emulator import Emulator
from yagpt_magic.widget.chat import ChatWidget
from yagpt_magic.widget.front import TRANSCRIPT_TURNS

from .commcount import counting_comms
from .conftest import emulator_env, magics_of
from .kernel import Kernel
from .test_widget import send_and_wait, shown_turns

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def magics(shell: Any) -> Any:
    return magics_of(shell)


@pytest.fixture
def widget(magics: Any) -> Any:
    w = ChatWidget(session=magics.session)
    yield w
    w.close()


def front_end_says(w: ChatWidget, **content: Any) -> None:
    """A custom message from the widget's front end, as ipywidgets delivers it."""
    w.behavior._handle_custom_msg(content, [])


# -- Enter from the front end --------------------------------------------------------


def test_enter_sends_the_text_the_front_end_had(
    magics: Any, widget: ChatWidget, emulator: Emulator
) -> None:
    # The box's own value update may still be queued in the browser: the send message
    # carries the text, and that is what is sent.
    widget.message_box.value = "stale text"
    front_end_says(widget, event="send", text="What is a token?")
    assert widget.wait(30)
    assert emulator.completions[-1].messages[-1] == ("user", "What is a token?")
    assert shown_turns(widget)[0]["user"] == "What is a token?"
    assert widget.message_box.value == ""
    assert widget.behavior.recall == "What is a token?"  # Up in an empty box brings it back


def test_enter_while_busy_is_refused_and_the_text_given_back(
    magics: Any, emulator: Emulator
) -> None:
    emulator.delay = 0.5
    with counting_comms() as log:
        widget = ChatWidget(session=magics.session)
        try:
            front_end_says(widget, event="send", text="first")
            mark = log.mark()
            front_end_says(widget, event="send", text="second")
            assert widget.status_line.value.startswith("busy: a reply is still being written")
            restores = [m.data for m in log.since(mark) if m.method == "custom"]
            assert widget.wait(30)
        finally:
            widget.close()
    assert restores == [{"method": "custom", "content": {"event": "restore", "text": "second"}}]
    assert [t.user for t in magics.session.thread("default").turns] == ["first"]


def test_the_send_key_and_height_come_from_the_settings(shell: Any, magics: Any) -> None:
    shell.run_cell('%config ChatMagics.widget_send_key = "shift-enter"').raise_error()
    shell.run_cell('%config ChatMagics.widget_height = "40em"').raise_error()
    w = ChatWidget(session=magics.session)
    try:
        assert w.behavior.send_key == "shift-enter"
        assert "Shift+Enter sends, Enter for a new line" in w.message_box.placeholder
        assert w.history.layout.max_height == "40em"
    finally:
        w.close()


# -- regenerate and edit-and-resend --------------------------------------------------


def test_regenerate_replaces_the_last_turn_like_a_rerun(
    magics: Any, widget: ChatWidget, emulator: Emulator
) -> None:
    send_and_wait(widget, "First question")
    send_and_wait(widget, "Second question")
    first_reply = magics.session.thread("default").turns[1].reply
    emulator.reply_with("A second version.", chunks=2)
    widget.regenerate_button.click()
    assert widget.wait(30)

    turns = magics.session.thread("default").turns
    assert [t.user for t in turns] == ["First question", "Second question"]
    assert turns[1].reply == "A second version." != first_reply
    # Sent with the turns before it as context, not with the reply it replaces.
    sent = emulator.completions[-1].messages
    assert sent[-1] == ("user", "Second question") and len(sent) == 3
    assert [t["reply"] for t in shown_turns(widget)][1] == "A second version."
    assert len(shown_turns(widget)) == 2
    assert widget.message_box.value == ""  # regenerating does not touch the box
    assert widget.status_line.value == "idle"


def test_edit_and_resend_replaces_the_last_turn_and_esc_cancels(
    magics: Any, widget: ChatWidget, emulator: Emulator
) -> None:
    send_and_wait(widget, "Name a river")
    widget.edit_button.click()
    assert widget.message_box.value == "Name a river" and widget.behavior.editing
    assert "yagpt-editing" in shown_turns(widget)[0]["classes"]
    front_end_says(widget, event="cancel-edit")  # Esc
    assert not widget.behavior.editing and widget.message_box.value == ""
    assert "yagpt-editing" not in shown_turns(widget)[0]["classes"]

    widget.edit_button.click()
    front_end_says(widget, event="send", text="Name a long river")
    assert widget.wait(30)
    turns = magics.session.thread("default").turns
    assert [t.user for t in turns] == ["Name a long river"]
    assert emulator.completions[-1].messages == [("user", "Name a long river")]
    assert [t["user"] for t in shown_turns(widget)] == ["Name a long river"]
    assert not widget.behavior.editing and widget.edit_button.description == "Edit last"


def test_a_failed_regenerate_keeps_the_turn_as_it_was(
    magics: Any, widget: ChatWidget, emulator: Emulator
) -> None:
    send_and_wait(widget, "Keep me")
    before = magics.session.thread("default").turns[0]
    emulator.fail(grpc.StatusCode.RESOURCE_EXHAUSTED, "quota exceeded")
    widget.regenerate_button.click()
    assert widget.wait(30)
    assert widget.status_line.value.startswith("error: ") and "quota" in (
        widget.status_line.value.lower())
    assert magics.session.thread("default").turns == [before]
    (shown,) = shown_turns(widget)
    assert shown["reply"] == before.reply and "yagpt-live" not in shown["classes"]
    assert widget.message_box.value == ""  # nothing typed was lost, nothing was added


def test_a_regenerated_cell_turn_stays_that_cells_turn(
    magics: Any, widget: ChatWidget, emulator: Emulator
) -> None:
    # The last turn came from a cell: regenerating it in the widget replaces it, and a
    # later re-run of that cell replaces it again instead of adding a turn.
    session = magics.session
    session.ask("default", "From a cell", cell_id="cell-a")
    emulator.reply_with("Regenerated in the widget.")
    widget.regenerate_button.click()
    assert widget.wait(30)
    (turn,) = session.thread("default").turns
    assert turn.reply == "Regenerated in the widget." and turn.cell_id == "cell-a"
    session.ask("default", "From a cell, edited", cell_id="cell-a")
    assert [t.user for t in session.thread("default").turns] == ["From a cell, edited"]
    assert [t["user"] for t in shown_turns(widget)] == ["From a cell, edited"]


def test_regenerate_and_edit_with_no_turns_say_so(widget: ChatWidget, emulator: Emulator) -> None:
    widget.regenerate_button.click()
    assert widget.status_line.value == "error: there is no reply to regenerate yet."
    widget.edit_button.click()
    assert widget.status_line.value == "error: there is no message to edit yet."
    assert emulator.completions == []


def test_ask_at_a_turn_that_is_gone_is_a_usage_problem(magics: Any, emulator: Emulator) -> None:
    with pytest.raises(UsageProblem, match="has no turn 3"):
        magics.session.ask("default", "hello", at=3)
    assert emulator.completions == []


def test_turn_meta_and_stale_marks(
    shell: Any, magics: Any, widget: ChatWidget, emulator: Emulator
) -> None:
    shell.run_cell("%%chat\nfirst").raise_error()
    send_and_wait(widget, "second")
    assert shown_turns(widget)[1]["meta"].startswith("#2 · yandexgpt/latest · ")
    magics.session.ask("default", "first, again", at=0)  # a re-run of the first turn
    second = shown_turns(widget)[1]
    assert second["meta"].endswith(" · stale") and "yagpt-stale" in second["classes"]


# -- the static transcript and the terminal ------------------------------------------


def iopub_until(kernel: Kernel, predicate: Any, timeout: float = 30) -> list[dict[str, Any]]:
    """Every iopub message, whatever request it belongs to, until one satisfies predicate."""
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            msg = kernel.client.get_iopub_msg(timeout=0.5)
        except queue.Empty:
            continue
        seen.append(msg)
        if predicate(msg):
            return seen
    raise AssertionError(f"not seen in {timeout} s; got {[m['msg_type'] for m in seen]}")


def test_a_saved_notebook_keeps_a_transcript_kept_current(emulator: Emulator) -> None:
    emulator.reply_with("The **Volga** is the longest river in Europe.", chunks=3)
    with Kernel(emulator_env(emulator)) as kernel:
        shown = kernel.run("%load_ext yagpt_magic\n%chat widget")
        widget_out, transcript = shown.of_type("display_data")
        assert "application/vnd.jupyter.widget-view+json" in widget_out["content"]["data"]
        assert "needs a notebook front end" in widget_out["content"]["data"]["text/plain"]
        display_id = transcript["content"]["transient"]["display_id"]
        assert "0 turns" in transcript["content"]["data"]["text/plain"]
        model_id = kernel.run(
            "from ipywidgets.widgets.widget import _instances\n"
            "w = next(v for v in _instances.values() if type(v).__name__ == 'ChatWidget')\n"
            "print(w.behavior.model_id)").text.strip()

        # Enter in the browser: a custom message on the behaviour's comm, like the ESM's.
        msg = kernel.client.session.msg("comm_msg", {"comm_id": model_id, "data": {
            "method": "custom", "content": {"event": "send", "text": "Longest river?"}}})
        kernel.client.shell_channel.send(msg)
        seen = iopub_until(kernel, lambda m: m["msg_type"] == "update_display_data"
                           and "1 turn" in m["content"]["data"]["text/plain"])
        update = seen[-1]["content"]
        assert update["transient"]["display_id"] == display_id
        shown = update["data"]["text/html"]  # the reply's own sanitized HTML
        assert "<pre>Longest river?</pre>" in shown
        assert "The <strong>Volga</strong> is the longest" in shown
        assert shown.startswith('<div class="yagpt-static-transcript"></div>')
        assert "text/markdown" not in update["data"]


def test_the_transcript_is_bounded_and_escapes_user_text(magics: Any) -> None:
    from yagpt_magic.core.conversation import Turn
    from yagpt_magic.display.render import reply_bundle
    from yagpt_magic.widget.front import HIDE_ERROR, transcript_bundle

    turns = [(Turn(user=f"<b>q{i}</b>", reply=f"a{i}"), reply_bundle(f"a{i}"))
             for i in range(TRANSCRIPT_TURNS + 5)]
    bundle = transcript_bundle("default", turns)
    assert "the 5 oldest are in %chat history" in bundle["text/plain"]
    # A user message is escaped text: shown literally, never as HTML.
    assert "<pre>&lt;b&gt;q5&lt;/b&gt;</pre>" in bundle["text/html"]
    assert "<b>q5</b>" not in bundle["text/html"] and "text/markdown" not in bundle
    # The one <style>: it hides the widget's error line right above, in a saved notebook.
    assert bundle["text/html"].count("<style>") == 1 and HIDE_ERROR in bundle["text/html"]
    assert "You: <b>q4</b>\n" not in bundle["text/plain"]


def test_in_a_terminal_chat_widget_says_it_needs_a_notebook(emulator: Emulator) -> None:
    env = {**os.environ, **emulator_env(emulator), "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "IPython", "--no-banner", "--colors=nocolor", "-c",
         "get_ipython().run_line_magic('load_ext', 'yagpt_magic'); "
         "get_ipython().run_line_magic('chat', 'widget')"],
        capture_output=True, text=True, env=env, timeout=120,
    )
    out = done.stdout + done.stderr
    assert "UsageError: %chat widget needs a notebook front end" in out, out
    assert "ChatWidget(children" not in out
    assert "Traceback" not in out


def test_the_transcript_scrolls_within_the_widgets_height(shell: Any, magics: Any) -> None:
    """Issue 25: a reopened notebook showed 10 turns as 3,157 px of page."""
    from yagpt_magic.core.conversation import Turn
    from yagpt_magic.display.render import reply_bundle
    from yagpt_magic.widget.front import transcript_bundle

    turns = [(Turn(user=f"q{i}", reply="a\n\n" * 40), reply_bundle("a\n\n" * 40))
             for i in range(10)]
    shown = transcript_bundle("default", turns, "20em")["text/html"]
    head, sep, body = shown.partition(
        '<div class="yagpt-transcript-turns" style="max-height: 20em; overflow-y: auto;">')
    assert sep and "q0" not in head and body.count("<pre>q") == 10
    assert body.endswith("</div>")
    shell.run_cell('%config ChatMagics.widget_height = "33em"').raise_error()
    widget = ChatWidget(session=magics.session)
    try:
        assert "max-height: 33em;" in widget.transcript.bundle()["text/html"]
    finally:
        widget.close()
