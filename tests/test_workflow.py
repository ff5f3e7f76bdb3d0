"""Notebook habits (SPEC 14): ``%chat code`` fills the next cell, ``%chat explain`` the error."""

from __future__ import annotations

import sys
from typing import Any

import pytest
from IPython.utils.capture import capture_output

from yagpt_magic.emulator import Emulator
from yagpt_magic.ipython.workflow import TRACEBACK_LINES, code_blocks

from .conftest import emulator_env, fails, magics_of
from .kernel import Kernel

REPLY = """Load it, then plot it:

```python
import pandas as pd
df = pd.read_csv("data.csv")
```

Some prose with `inline code` that is not a block.

~~~py
df.plot()
~~~
"""


def test_code_puts_every_block_of_the_reply_in_the_next_cell_in_a_real_kernel(
    emulator: Emulator,
) -> None:
    with Kernel(emulator_env(emulator)) as kernel:
        assert kernel.run("%load_ext yagpt_magic").ok
        emulator.reply_with(REPLY)
        assert kernel.run("%%chat\nHow do I plot a CSV?", cell_id="ask").ok
        emulator.reply_with("No code here, only words.")
        assert kernel.run("%%chat\nThanks!", cell_id="thanks").ok

        last = kernel.run("%chat code", cell_id="code")
        first = kernel.run("%chat code 0", cell_id="code0")
        ran = kernel.run("print('df' in dir())")
        kernel.run("rows = {'a': 1}\nrows['b']", cell_id="broken")
        explained = kernel.run("%chat explain -t debug", cell_id="explain")

    assert explained.ok, explained.error
    question = emulator.completions[-1].messages[-1][1]
    assert "rows = {'a': 1}\nrows['b']" in question and "KeyError: 'b'" in question
    assert "The cell (In[7]):" in question and "Cell In[7], line 2" in question

    assert not last.ok and "has no code blocks" in last.error
    assert last.reply["content"].get("payload", []) == []
    assert first.ok, first.error
    (payload,) = first.reply["content"]["payload"]
    assert payload["source"] == "set_next_input"
    assert payload["replace"] is False
    assert payload["text"] == (
        'import pandas as pd\ndf = pd.read_csv("data.csv")\n\ndf.plot()')
    assert "2 code blocks went into a new cell below (not run)" in first.text
    assert "False" in ran.text  # the code was put in a cell, never run


def test_code_picks_turns_like_history_and_refuses_what_is_not_there(shell: Any,
                                                                     emulator: Emulator) -> None:
    assert "no replies yet" in fails(shell, "%chat code")
    emulator.reply_with("```\nfirst()\n```")
    shell.run_cell("%%chat\none").raise_error()
    emulator.reply_with("```\nsecond()\n```")
    shell.run_cell("%%chat\ntwo").raise_error()
    for line, code in (("0", "first()"), ("-1", "second()"), ("", "second()"),
                       ("-t default 1", "second()"), ("#1", "first()"), ("#2", "second()")):
        with capture_output():
            shell.run_line_magic("chat", f"code {line}")
        assert shell.rl_next_input == code
    assert "turns 0 to 1, not 5" in fails(shell, "%chat code 5")
    assert "No thread named 'nope'" in fails(shell, "%chat code -t nope")
    assert "%chat code" in fails(shell, "%chat code one")


def test_code_blocks_reads_markdown_not_lines_that_look_like_it() -> None:
    assert code_blocks(REPLY) == ['import pandas as pd\ndf = pd.read_csv("data.csv")',
                                  "df.plot()"]
    assert code_blocks("    indented = 1\n\ntext") == ["indented = 1"]
    assert code_blocks("````\n```\ninner\n```\n````") == ["```\ninner\n```"]
    assert code_blocks("```\n\n```") == []


@pytest.fixture
def no_last_error() -> Any:
    """IPython keeps the last error in ``sys.last_*``: start each test without one."""
    saved = {name: getattr(sys, name) for name in ("last_type", "last_value", "last_traceback")
             if hasattr(sys, name)}
    for name in saved:
        delattr(sys, name)
    yield
    for name, value in saved.items():
        setattr(sys, name, value)


def test_explain_without_an_error_says_so_and_sends_nothing(
    shell: Any, emulator: Emulator, no_last_error: Any
) -> None:
    assert "No error yet" in fails(shell, "%chat explain")
    assert emulator.completions == []


def test_explain_sends_the_last_error_scrubbed_as_a_turn(
    shell: Any, emulator: Emulator, no_last_error: Any
) -> None:
    key = emulator.api_key
    shell.run_cell("import os\nsecret = os.environ['YC_API_KEY']", store_history=True)
    failing = ("def load(token):\n"
               "    raise ValueError(f'bad token {token} and AQVN' + 'x' * 30)\n"
               "load(secret)")
    assert shell.run_cell(failing, store_history=True).error_in_exec is not None
    with capture_output():
        shell.run_cell("%chat explain -t debug", store_history=True).raise_error()

    sent = emulator.completions[-1].messages[-1]
    assert sent[0] == "user"
    text = sent[1]
    assert text.startswith("Explain this error from my Jupyter notebook")
    assert "ValueError: bad token" in text
    assert "in load" in text and "Cell In[" in text
    assert "def load(token):" in text  # the failing cell's source
    assert key not in text and "AQVN" + "x" * 20 not in text and "***" in text
    assert "interactiveshell.py" not in text  # IPython's own frames are left out
    (turn,) = magics_of(shell).session.thread("debug").turns
    assert turn.user == text and turn.reply


def test_explain_trims_a_long_traceback_to_its_end(
    shell: Any, emulator: Emulator, no_last_error: Any
) -> None:
    shell.run_cell("def ping(n):\n    return pong(n - 1) if n else 1 / 0\n"
                   "def pong(n):\n    return ping(n - 1)\n"
                   "ping(80)", store_history=True)
    with capture_output():
        shell.run_cell("%chat explain", store_history=True).raise_error()
    text = emulator.completions[-1].messages[-1][1]
    error = text.split("The error:", 1)[1]
    assert "lines left out]" in error
    assert "ping(80)" in error  # the start: where the cell called in
    assert error.strip().strip("`").strip().endswith("ZeroDivisionError: division by zero")
    assert len(error.strip().splitlines()) <= TRACEBACK_LINES + 3  # + marker, fences


def test_explain_a_syntax_error_sends_the_cell_and_the_caret(
    shell: Any, emulator: Emulator, no_last_error: Any
) -> None:
    shell.run_cell("total = sum(\n    [1, 2]", store_history=True)
    with capture_output():
        shell.run_cell("%chat explain", store_history=True).raise_error()
    text = emulator.completions[-1].messages[-1][1]
    assert "SyntaxError" in text and "total = sum(" in text
    assert "The cell (In[1]):" in text
    assert "interactiveshell.py" not in text and "Traceback" not in text


@pytest.mark.parametrize("form", ["key.encode().hex()", "str(list(key))", "key[::-1]",
                                  "key.encode().hex(':').upper()"])
def test_explain_scrubs_the_key_handled_by_code(
    shell: Any, emulator: Emulator, no_last_error: Any, form: str
) -> None:
    """Issue 25: a traceback can hold the key as code made it (hex, a list, reversed)."""
    from .leaks import leaked

    key = emulator.api_key or ""
    cell = f"import os\nkey = os.environ['YC_API_KEY']\nraise ValueError({form})"
    assert shell.run_cell(cell, store_history=True).error_in_exec is not None
    with capture_output():
        shell.run_cell("%chat explain -t debug", store_history=True).raise_error()
    text = emulator.completions[-1].messages[-1][1]
    assert "ValueError" in text and "***" in text
    assert leaked(key, text) == []
