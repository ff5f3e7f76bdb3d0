"""The magics (SPEC 3-5): cell-aware turns in a real kernel, named threads, commands and flags."""

from __future__ import annotations

from typing import Any

import pytest

from yagpt_magic.core.conversation import Thread, Turn, Usage
from yagpt_magic.emulator import Emulator, count_tokens, reply_for

from .conftest import emulator_env, fails, magics_of
from .kernel import Kernel


def turns(shell: Any, thread: str = "default") -> list[Turn]:
    return magics_of(shell).session.thread(thread).turns


def test_run_all_twice_in_a_kernel_keeps_one_turn_per_cell(emulator: Emulator) -> None:
    cells = {
        "c1": '%%chat -s "You are a smart assistant"\nFirst question',
        "c2": "%%chat\nSecond question",
        "c3": "%%chat\nThird question",
    }
    with Kernel(emulator_env(emulator)) as kernel:
        assert kernel.run("%load_ext yagpt_magic").ok
        for cell_id in ("c1", "c2", "c3", "c2", "c1", "c2", "c3"):
            run = kernel.run(cells[cell_id], cell_id=cell_id)
            assert run.ok, run.error
        history = kernel.run("%chat history")
        count = kernel.run(
            "m = get_ipython()._yagpt_magic\n"
            "print(len(m.session.thread().turns), [t.cell_id for t in m.session.thread().turns])")
    assert "3 ['c1', 'c2', 'c3']" in count.text
    assert "stale" not in history.text.split("stale", 1)[1]  # the column header only

    first = emulator.completions[0]
    rerun_c2 = emulator.completions[3]
    assert rerun_c2.messages == [
        ("system", "You are a smart assistant"),
        ("user", "First question"),
        ("assistant", reply_for(first.model_uri, first.messages)),
        ("user", "Second question"),
    ]


def test_rerun_replaces_in_place_and_marks_later_turns_stale(shell: Any) -> None:
    magics = magics_of(shell)
    session = magics.session
    options = magics.options(stream=False)
    for cell, text in (("a", "one"), ("b", "two"), ("c", "three")):
        session.ask("default", text, options=options, context_window=32768, cell_id=cell)
    answer = session.ask("default", "two, edited", options=options, context_window=32768,
                         cell_id="b")
    assert answer.replaced and answer.index == 1
    assert [t.user for t in turns(shell)] == ["one", "two, edited", "three"]
    assert [t.stale for t in turns(shell)] == [False, False, True]
    table = shell.run_line_magic("chat", "history")
    assert table.rows[2][-1] == "stale" and table.rows[1][-1] == ""


def test_without_cell_ids_each_run_appends(shell: Any) -> None:
    for _ in range(2):
        shell.run_cell("%%chat\nsame cell").raise_error()
    assert len(turns(shell)) == 2


def test_threads_never_see_each_other(shell: Any, emulator: Emulator) -> None:
    shell.run_cell('%%chat -t alpha -s "Alpha system"\nalpha one').raise_error()
    shell.run_cell('%%chat -t beta -s "Beta system"\nbeta one').raise_error()
    shell.run_cell("%%chat -t alpha\nalpha two").raise_error()
    shell.run_cell("%%chat -t beta\nbeta two").raise_error()
    alpha, beta = emulator.completions[2].messages, emulator.completions[3].messages
    assert [t for _, t in alpha if "beta" in t.lower()] == []
    assert [t for _, t in beta if "alpha" in t.lower()] == []
    assert alpha[0] == ("system", "Alpha system") and beta[0] == ("system", "Beta system")
    table = shell.run_line_magic("chat", "threads")
    assert {row[0]: row[1] for row in table.rows} == {"default": 0, "alpha": 2, "beta": 2}


def test_system_undo_reset_usage_commands(shell: Any, emulator: Emulator) -> None:
    shell.run_line_magic("chat", "system -t t Be brief and exact.")
    shell.run_cell("%%chat -t t\nq1").raise_error()
    shell.run_cell("%%chat -t t\nq2").raise_error()
    assert emulator.completions[-1].messages[0] == ("system", "Be brief and exact.")
    usage = shell.run_line_magic("chat", "usage -t t")
    rows = dict(usage.rows)
    assert rows["total"] == sum(t.usage.total_tokens for t in turns(shell, "t")) > 0
    assert rows["input"] + rows["completion"] == rows["total"]
    shell.run_line_magic("chat", "undo -t t")
    assert [t.user for t in turns(shell, "t")] == ["q1"]
    shell.run_line_magic("chat", "system -t t")
    assert magics_of(shell).session.thread("t").system_prompt == ""
    shell.run_cell("%%chat\nin default").raise_error()
    shell.run_line_magic("chat", "reset -t t")
    assert turns(shell, "t") == [] and len(turns(shell)) == 1
    shell.run_line_magic("chat", "reset --all")
    assert turns(shell) == []


def test_bad_commands_and_flags_are_one_line_and_change_nothing(
    shell: Any, emulator: Emulator
) -> None:
    shell.run_cell("%%chat\nkeep me").raise_error()
    before = [(t.user, t.reply) for t in turns(shell)]
    sent = len(emulator.completions)
    assert "nosuch" in fails(shell, "%chat undo -t nosuch")
    assert "between 0 and 1" in fails(shell, "%%chat --temperature 2\nhello")
    assert "empty" in fails(shell, "%%chat\n   \n")
    message = fails(shell, "%%chat --api-key AQVNsecret123\nhello")
    assert "arguments: --api-key …" in message and "AQVN" not in message
    assert "positive" in fails(shell, "%%chat --max-tokens 0\nhello")
    assert "Unknown command" in fails(shell, "%chat frobnicate")
    assert "either" in fails(shell, "%chat reset -t default --all")
    assert "nosuch" in fails(shell, "%chat history -t nosuch")
    assert "nosuch" in fails(shell, "%chat usage -t nosuch")
    assert "unrecognized" in fails(shell, "%chat threads --x")
    message = fails(shell, "%chat login sk-secret")
    assert "unrecognized" in message and "sk-secret" not in message
    assert "variable name" in fails(shell, "%%chat -o 1abc\nhello")
    assert [(t.user, t.reply) for t in turns(shell)] == before
    assert len(emulator.completions) == sent


def test_vars_replaces_only_its_forms(shell: Any, emulator: Emulator) -> None:
    shell.run_cell("name = 'Ada'\n40 + 2", store_history=True).raise_error()
    body = 'Hi {name}, see {Out[1]} and {In[1]!r} {"a": 1} {{name}} `f"{x}"` { name }'
    code = '\n```python\nprint(f"{name} {y}")\n```'
    shell.run_cell("%%chat --vars\n" + body + code).raise_error()
    sent = emulator.completions[-1].messages[-1][1]
    assert sent == 'Hi Ada, see 42 and {In[1]!r} {"a": 1} {{name}} `f"{x}"` { name }' + code
    shell.run_cell("%%chat\n" + body).raise_error()
    assert emulator.completions[-1].messages[-1][1] == body
    assert "{missing}" in fails(shell, "%%chat --vars\nhello {missing}")
    assert "{Out[99]}" in fails(shell, "%%chat --vars\nhello {Out[99]}")


def test_vars_describes_a_dataframe_series_and_array_within_the_budget(
    shell: Any, emulator: Emulator
) -> None:
    """SPEC 16: {df} is a description the model can read, not pandas' truncated print."""
    pytest.importorskip("pandas")
    from yagpt_magic.core.frames import text_tokens

    from .core.test_frames import COLUMNS, orders

    shell.user_ns["df"] = orders()
    shell.run_cell("prices = df['customer']\nmatrix = df.select_dtypes('number').to_numpy()\n"
                   "label = 'plain'").raise_error()
    shell.run_cell("%%chat --vars\nWhich columns of {df} have nulls?").raise_error()
    text = emulator.completions[-1].messages[-1][1]
    head, description = text.split("\n\n", 1)
    assert head.rstrip() == "Which columns of"
    assert description.startswith("pandas DataFrame `df`: 2,000 rows × 30 columns.")
    assert all(f"\n| {name} | " in description for name in COLUMNS)
    assert description.endswith("\n\n have nulls?")
    assert text_tokens(description) <= 2000 + len("\n\n have nulls?")
    shell.run_cell("%config ChatMagics.vars_budget = 400").raise_error()
    shell.run_cell("%%chat --vars\n{prices}\n{matrix}\n{label}").raise_error()
    text = emulator.completions[-1].messages[-1][1]
    series, rest = text.split("\nnumpy array `matrix`", 1)
    array, plain = ("numpy array `matrix`" + rest).rsplit("\n", 1)
    assert series.startswith("pandas Series `prices` (named 'customer'): 2,000 values")
    assert array.startswith("numpy array `matrix`: shape (2000, ")
    assert text_tokens(series) <= 400 and text_tokens(array) <= 400
    assert plain == "plain"
    from traitlets import TraitError

    with pytest.raises(TraitError, match="vars_budget must be at least 100"):
        magics_of(shell).vars_budget = 10
    assert magics_of(shell).settings.vars_budget == 400


def test_output_variable_and_config_sources(shell: Any, emulator: Emulator) -> None:
    shell.run_cell("%config ChatMagics.max_tokens = 321").raise_error()
    shell.run_cell("%%chat -o reply\nhello").raise_error()
    assert shell.user_ns["reply"] == turns(shell)[-1].reply
    assert emulator.completions[-1].options["max_tokens"] == 321
    table = shell.run_line_magic("chat", "config")
    rows = {row[0]: row for row in table.rows}
    assert rows["max_tokens"][1:] == ("321", "%config")
    assert rows["temperature"][2] == "default"
    assert rows["endpoint"][2] == "env YC_API_ENDPOINT"
    assert rows["credential"][1:] == ("api_key (hidden)", "env YC_API_KEY")
    assert emulator.api_key not in repr(table)
    shell.run_cell("%%chat -m yandexgpt-lite --temperature 0.1\nhello").raise_error()
    rows = shell.run_line_magic("chat", "config").rows
    assert ("model", "yandexgpt-lite", "per-cell flag (turn 1 of 'default')") in rows
    assert ("temperature", "0.1", "per-cell flag (turn 1 of 'default')") in rows
    shell.run_cell("%config ChatMagics.stream = False").raise_error()
    shell.run_cell("%%chat\nunary please").raise_error()
    assert emulator.completions[-1].options["stream"] is False


def test_window_fitting_through_the_emulator(shell: Any, emulator: Emulator) -> None:
    """A 2,000-turn thread in a 32k window: at most one tokenize call per new turn."""
    thread = magics_of(shell).session.thread("long")
    thread.system_prompt = "You are a smart assistant"
    for i in range(1990):
        user, reply = f"Question number {i} about topic {i % 17}?", "An answer. " * (3 + i % 11)
        thread.commit(Turn(user, reply))
    # The last synthetic turn carries usage as the service would have reported it.
    start = 1990 - 300
    sent = [("system", thread.system_prompt)]
    for t in thread.turns[start:-1]:
        sent += [("user", t.user), ("assistant", t.reply)]
    sent.append(("user", thread.turns[-1].user))
    thread.turns[-1].usage = Usage(count_tokens(sent), 10, 0, 10 + count_tokens(sent))
    thread.turns[-1].context_start = start
    thread.turns[-1].system_prompt = thread.system_prompt
    for i in range(10):
        calls = emulator.tokenize_calls
        cell = f"%%chat -t long --no-stream\nNew question {i}? " + "pad " * 40
        shell.run_cell(cell).raise_error()
        assert emulator.tokenize_calls - calls <= 1
        request = emulator.completions[-1]
        assert count_tokens(request.messages) + 2000 <= 32768
        assert request.messages[0] == ("system", "You are a smart assistant")
        assert request.messages[-1][1].startswith(f"New question {i}?")
    assert len(thread.turns) == 2000


def test_a_message_too_long_for_the_window_is_refused_before_sending(
    shell: Any, emulator: Emulator
) -> None:
    shell.run_cell("%config ChatMagics.context_window = 3000").raise_error()
    message = fails(shell, "%%chat --max-tokens 1000\n" + "lorem ipsum " * 1000)
    assert "tokens over" in message and "2000" in message
    assert emulator.completions == []


def test_left_out_turns_are_reported(
    shell: Any, emulator: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    shell.run_cell("%config ChatMagics.context_window = 1200").raise_error()
    shell.run_cell("%config ChatMagics.max_tokens = 200").raise_error()
    for i in range(12):
        result = shell.run_cell(f"%%chat\nQuestion {i}: " + "words " * 30)
        result.raise_error()
    thread = magics_of(shell).session.thread()
    fitted = thread.turns[-1].context_start
    assert fitted and fitted > 0
    # Exact (SPEC 4): one more older turn would not have fitted the 1,000 tokens of room,
    # or the request uses 98% of it.
    for request, turn in zip(emulator.completions, thread.turns):
        size = count_tokens(request.messages)
        if turn.context_start:
            older = thread.turns[turn.context_start - 1]
            head = 1 if request.messages[0][0] == "system" else 0
            more = list(request.messages)
            more[head:head] = [("user", older.user), ("assistant", older.reply)]
            assert count_tokens(more) > 1000 or size >= 980
    assert f"[{fitted} earlier turns left out to fit the 1200-token window.]" in (
        capsys.readouterr().out)
    assert count_tokens(emulator.completions[-1].messages) <= 1000


@pytest.mark.parametrize("thread", [Thread("x")])
def test_thread_copy_is_independent(thread: Thread) -> None:
    thread.commit(Turn("a", "b"))
    copy = thread.copy()
    copy.turns[0].user = "changed"
    assert thread.turns[0].user == "a"


def test_a_thread_cannot_be_reset_or_undone_under_a_reply_being_written(
    shell: Any, emulator: Emulator
) -> None:
    import threading

    shell.run_cell("%%chat\nfirst").raise_error()
    session = magics_of(shell).session
    emulator.reply_with("slow " * 40, chunks=40)
    emulator.chunk_delay = 0.02
    worker = threading.Thread(target=session.ask, args=("default", "second"), kwargs={
        "options": magics_of(shell).options(), "context_window": 32768})
    worker.start()
    while not emulator.completions[1:]:
        pass
    assert "being written" in fails(shell, "%chat reset")
    assert "being written" in fails(shell, "%chat undo")
    assert "being written" in fails(shell, "%%chat\nthird")
    worker.join()
    assert [t.user for t in turns(shell)] == ["first", "second"]


def test_system_takes_the_rest_of_the_line_as_written(shell: Any) -> None:
    session = magics_of(shell).session
    shell.run_line_magic("chat", "system Don't be verbose; use 'quotes' freely.")
    assert session.thread().system_prompt == "Don't be verbose; use 'quotes' freely."
    shell.run_line_magic("chat", 'system -t q "Be brief"')
    assert session.thread("q").system_prompt == "Be brief"
    shell.run_line_magic("chat", 'system -t q --json "two\\nlines"')
    assert session.thread("q").system_prompt == "two\nlines"
    assert "--bogus" in fails(shell, "%chat system --bogus words")
    assert "JSON" in fails(shell, "%chat system --json not json")
    assert session.thread("q").system_prompt == "two\nlines"


def test_an_unknown_flag_suggests_the_nearest_one(shell: Any, emulator: Emulator) -> None:
    message = fails(shell, "%%chat --tempreature 0.5\nhello")
    assert "--tempreature" in message and "did you mean --temperature?" in message
    assert "0.5" not in message  # values are never echoed: they may be keys
    assert "did you mean --thread?" in fails(shell, "%chat history --thred x")
    assert "did you mean" not in fails(shell, "%%chat --zzz\nhello")
    assert emulator.completions == []


def test_a_lone_surrogate_in_vars_is_one_line_and_sends_nothing(
    shell: Any, emulator: Emulator
) -> None:
    shell.user_ns["raw"] = b"caf\xe9".decode("utf-8", "surrogateescape")
    message = fails(shell, "%%chat --vars\nTranslate {raw}")
    assert "--vars: {raw} holds a character that cannot be sent" in message
    shell.run_line_magic("chat", 'system --json "Be \\udc80 brief"')
    assert "system prompt of 'default' holds a character" in fails(shell, "%%chat\nhello")
    assert emulator.completions == [] and magics_of(shell).session.thread().turns == []


def test_a_long_flag_with_one_dash_is_one_line_suggesting_two(
    shell: Any, emulator: Emulator
) -> None:
    """Issue 25: ``-temperature`` read as ``-t emperature`` sent to a new thread."""
    message = fails(shell, "%%chat -temperature\nhello")
    assert "did you mean --temperature?" in message and "-t 'emperature'" in message
    message = fails(shell, "%%chat -temperature 0.5\nhello")
    assert "did you mean --temperature 0.5?" in message
    assert "did you mean --max-tokens 10?" in fails(shell, "%%chat -max-tokens 10\nhello")
    assert "AQVN" not in fails(shell, "%%chat -system AQVNsecret123\nhello")
    assert "did you mean --thread?" in fails(shell, "%chat history -thread default")
    assert emulator.completions == [] and set(magics_of(shell).session.threads) == {"default"}
    shell.run_cell("%%chat -tdebug\nhello").raise_error()  # -t with its value attached
    assert "debug" in magics_of(shell).session.threads


def test_a_message_too_big_for_any_window_says_so_not_to_set_the_window(
    shell: Any, emulator: Emulator
) -> None:
    """Issue 25: a 1 MB message got "set context_window = 32768" — the window it had."""
    message = fails(shell, "%%chat\n" + "word " * 200_000)
    assert "message alone" in message and "200,015 tokens" in message, message
    assert "context_window" not in message and "nothing was sent" in message
    assert emulator.completions == []
