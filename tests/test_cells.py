"""``%%chat --cells N`` (SPEC 16): the cells this kernel ran go before the message.

What the emulator received is the evidence: the request went through the real SDK.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from IPython.utils.capture import capture_output

from yagpt_magic.emulator import Emulator

from .conftest import emulator_env, fails, magics_of
from .kernel import Kernel
from .leaks import leaked


def sent(emulator: Emulator) -> str:
    """The last user message the emulator received."""
    return emulator.completions[-1].messages[-1][1]


def run(shell: Any, code: str) -> None:
    """A code cell as a notebook runs it: numbered, in the history."""
    shell.run_cell(code, store_history=True)


def test_cells_2_sends_the_last_two_cells_and_not_the_third(shell: Any,
                                                            emulator: Emulator) -> None:
    run(shell, "first = 'the first cell'")
    run(shell, "second = 'the second cell'\nsecond")
    run(shell, "third = 1 / 0")
    with capture_output() as out:
        shell.run_cell("%%chat --cells 2\nWhy did my last cell fail?",
                       store_history=True).raise_error()
    text = sent(emulator)
    assert "the first cell" not in text
    assert text.index("second = 'the second cell'") < text.index("third = 1 / 0")
    assert "Its result:\n```\n'the second cell'\n```" in text
    assert "ZeroDivisionError: division by zero" in text
    assert text.endswith("My message:\n\nWhy did my last cell fail?")
    assert "[The last 2 code cells went in before the message.]" in out.stdout
    # The turn keeps exactly what was sent: transcripts, replay and restore reproduce it.
    turn = magics_of(shell).session.thread().turns[-1]
    assert turn.user == text


def test_chat_cells_and_the_asking_cell_are_not_counted(shell: Any, emulator: Emulator) -> None:
    run(shell, "data = [3, 1, 2]")
    with capture_output():
        shell.run_cell("%%chat\nA question of its own", store_history=True).raise_error()
        shell.run_cell("%chat history", store_history=True).raise_error()
        shell.run_cell("%%chat --cells 5\nWhat is data?", store_history=True).raise_error()
    text = sent(emulator)
    assert "data = [3, 1, 2]" in text
    assert "A question of its own" not in text and "%chat" not in text
    assert text.count("```python") == 1


def test_a_cell_holding_a_credential_is_scrubbed(shell: Any, emulator: Emulator) -> None:
    key = emulator.api_key or ""
    run(shell, "import os\nkey = os.environ['YC_API_KEY']\nkey")
    run(shell, "key.encode().hex()")
    run(shell, "raise ValueError('rejected: ' + key)")
    run(shell, "token = 'AQVNplaintext0credential0in0a0cell'")
    with capture_output():
        shell.run_cell("%%chat --cells 4\nWhat went wrong?", store_history=True).raise_error()
    text = sent(emulator)
    assert "key = os.environ['YC_API_KEY']" in text and "ValueError: rejected: ***" in text
    assert leaked(key, text) == []
    assert "AQVNplaintext0credential0in0a0cell" not in text
    turn = magics_of(shell).session.thread().turns[-1]
    assert leaked(key, turn.user) == []


def test_the_oldest_cells_are_left_out_to_fit_the_window(shell: Any, emulator: Emulator) -> None:
    for n in range(4):
        run(shell, f"block_{n} = '{'x' * 1500}'")
    shell.run_line_magic("config", "ChatMagics.context_window = 4000")
    with capture_output() as out:
        shell.run_cell("%%chat --cells 4 --max-tokens 200\nQ", store_history=True).raise_error()
    text = sent(emulator)
    assert "block_3" in text and "block_2" in text and "block_0" not in text
    assert magics_of(shell).session.thread().turns[-1].usage.input_tokens <= 4000 - 200
    kept = sum(f"block_{n} =" in text for n in range(4))
    assert (f"[{kept} of the last 4 code cells went in before the message; the {4 - kept} "
            "oldest were left out to fit the 4,000-token window.]") in out.stdout


def test_bad_uses_are_one_line_and_send_nothing(bare_shell: Any) -> None:
    assert "nothing to send" in fails(bare_shell, "%%chat --cells 2\nQ")
    bare_shell.run_cell("x = 1", store_history=True)
    assert "1 to 100" in fails(bare_shell, "%%chat --cells 0\nQ")
    assert "--cells does not go with --map" in fails(bare_shell, "%%chat --map x --cells 1\n{a}")


def test_unload_leaves_no_hook_and_a_reload_keeps_capturing(bare_shell: Any) -> None:
    def ours() -> list[Any]:
        return [c for c in bare_shell.events.callbacks["post_run_cell"]
                if type(getattr(c, "__self__", None)).__name__ == "CellLog"]

    assert len(ours()) == 1
    bare_shell.run_line_magic("unload_ext", "yagpt_magic")
    assert ours() == []
    bare_shell.run_line_magic("load_ext", "yagpt_magic")
    assert len(ours()) == 1
    bare_shell.run_cell("y = 2", store_history=True)
    assert [c.source for c in magics_of(bare_shell).cells.last(5)] == ["y = 2"]


def test_a_broken_repr_does_not_break_the_cell(bare_shell: Any) -> None:
    result = bare_shell.run_cell(
        "class Odd:\n    def __repr__(self):\n        raise RuntimeError('no repr')\n"
        "x = 5\nx", store_history=True)
    assert result.success
    assert magics_of(bare_shell).cells.last(1)[0].result == "5"


def test_a_rerun_of_the_cells_cell_replaces_its_turn(emulator: Emulator) -> None:
    with Kernel(emulator_env(emulator)) as kernel:
        assert kernel.run("%load_ext yagpt_magic", cell_id="load").ok
        assert kernel.run("total = sum([1, 2, 3])\ntotal", cell_id="c1").ok
        ask = kernel.run("%%chat --cells 1\nWhat is total?", cell_id="ask")
        assert ask.ok, ask.error
        assert kernel.run("total = 100\ntotal", cell_id="c1").ok  # the cell edited, run again
        again = kernel.run("%%chat --cells 1\nWhat is total?", cell_id="ask")
        assert again.ok, again.error
        state = kernel.run(
            "import json\nm = get_ipython()._yagpt_magic\n"
            "print(json.dumps([[t.user, t.cell_id] for t in m.session.thread().turns]))")
    first, second = emulator.completions[-2:]
    assert "total = sum([1, 2, 3])" in first.messages[-1][1]
    # The re-run is answered with only the turns before it: its own first run is gone.
    assert len(second.messages) == 1
    assert "total = 100" in second.messages[0][1] and "sum([1, 2, 3])" not in second.messages[0][1]
    turns = json.loads(state.text.strip().splitlines()[-1])
    assert turns == [[second.messages[0][1], "ask"]]
    notices = [o for o in again.of_type("display_data", "update_display_data")
               if "yagpt_magic" in o["content"]["metadata"]]
    assert notices[-1]["content"]["metadata"]["yagpt_magic"]["notices"][0] == {
        "kind": "context", "text": "The last code cell went in before the message."}


def test_record_then_replay_reproduces_a_cells_turn_offline(shell: Any, emulator: Emulator,
                                                            tmp_path: Any) -> None:
    def notebook() -> None:
        run(shell, "rows = [1, 2, 3]")
        run(shell, "sum(rows)")
        with capture_output():
            shell.run_cell("%%chat --cells 2\nWhat is the sum?", store_history=True
                           ).raise_error()

    shell.run_line_magic("chat", f"record {tmp_path}/cells.jsonl")
    notebook()
    recorded = magics_of(shell).session.thread().turns[-1]
    shell.run_line_magic("chat", "live")
    shell.run_line_magic("chat", "reset --all")
    shell.run_line_magic("chat", f"replay {tmp_path}/cells.jsonl")
    before = len(emulator.completions)
    notebook()  # the same cells again: other execution counts, the same message
    replayed = magics_of(shell).session.thread().turns[-1]
    assert len(emulator.completions) == before
    assert (replayed.user, replayed.reply) == (recorded.user, recorded.reply)
    assert "sum(rows)" in replayed.user and "Its result:\n```\n6\n```" in replayed.user


def test_the_notebook_context_example_runs_offline(tmp_path: Any, clean_env: Any) -> None:
    """``notebooks/notebook_context.ipynb`` under Run All, with no credentials at all."""
    pytest.importorskip("pandas")
    from .test_quickstart import ROOT, run_notebook

    nb = run_notebook(ROOT / "notebooks" / "notebook_context.ipynb", {}, tmp_path)
    code = [c for c in nb.cells if c.cell_type == "code"]
    outputs = [o for c in code for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    printed = [o.text for c in code if c.source.startswith(("print(", "from yagpt_magic"))
               for o in c.outputs if o.output_type == "stream"]
    described, with_cells = printed
    assert "pandas DataFrame `sales`: 1,000 rows × 4 columns." in described
    assert re.search(r"^\| region \| (object|str) \| 0 \|$", described, re.M)  # pandas 2 or 3
    assert "| units | int64 | 0 |" in described and "| returned | bool | 0 |" in described
    assert re.search(r"^\| price \| float64 \| [1-9]\d* \|$", described, re.M)
    assert "Left out: 995 rows." in described
    assert with_cells.startswith("Context: the last 2 code cells")
    assert 'by_region = sales.groupby("region")["price"]' in with_cells
    assert "by_region.mean().round(2)" in with_cells and "Name: price, dtype: float64" in with_cells
    assert "%%chat" not in with_cells and "print(" not in with_cells
    ask = next(c for c in code if c.source.startswith("%%chat --cells 2"))
    (reply,) = [o for o in ask.outputs if "yagpt_magic" in o.get("metadata", {})]
    assert reply.metadata["yagpt_magic"]["notices"] == [
        {"kind": "context", "text": "The last 2 code cells went in before the message."}]
    assert reply.metadata["yagpt_magic"]["user"] == with_cells.rstrip("\n")


def test_a_long_result_is_cut_saying_how_long_it_was(shell: Any, emulator: Emulator) -> None:
    run(shell, "'x' * 50_000")
    with capture_output():
        shell.run_cell("%%chat --cells 1\nQ", store_history=True).raise_error()
    text = sent(emulator)
    assert "x" * 1900 in text and "x" * 2100 not in text
    assert "[… 48,002 more characters left out]" in text  # the repr: 50,000 and its quotes
