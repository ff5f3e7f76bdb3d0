"""Structured output (SPEC 11): ``%%chat --schema NAME`` / ``--json`` through the emulator.

The emulator answers a ``response_format`` request with JSON built from the request's
own schema and the numbers and quoted strings of the message, so a reply that lands in
the right Python type proves the schema went out with the request.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from IPython.utils.capture import capture_output

from yagpt_magic.core.errors import InvalidReply, UsageProblem
from yagpt_magic.core.session import turn_metadata
from yagpt_magic.core.structured import any_json, schema_of
from yagpt_magic.emulator import Emulator
from yagpt_magic.widget.chat import ChatWidget

from ..conftest import emulator_env, fails, magics_of
from ..kernel import Kernel

SETUP = '''
import dataclasses
import pydantic

class Fact(pydantic.BaseModel):
    name: str
    year: int

@dataclasses.dataclass
class Finding:
    name: str
    year: int

FACT = {"type": "object", "required": ["name", "year"],
        "properties": {"name": {"type": "string"}, "year": {"type": "integer"}}}
'''
MESSAGE = 'Einstein published "special relativity" in 1905.'


@pytest.fixture
def user(shell: Any) -> Any:
    """The shell with a pydantic model, a dataclass and a dict schema defined in it."""
    shell.run_cell(SETUP).raise_error()
    return shell


def turns(shell: Any, thread: str = "default") -> list[Any]:
    return list(magics_of(shell).session.thread(thread).turns)


def chat(shell: Any, line: str, text: str = MESSAGE) -> Any:
    with capture_output() as out:
        shell.run_cell(f"%%chat {line}\n{text}").raise_error()
    return out


@pytest.mark.parametrize(("schema", "kind"), [("Fact", "Fact"), ("Finding", "Finding"),
                                              ("FACT", "dict")])
def test_each_kind_of_schema_lands_in_o_as_its_python_type(
    user: Any, emulator: Emulator, schema: str, kind: str
) -> None:
    out = chat(user, f"--schema {schema} -o fact")

    fact = user.user_ns["fact"]
    assert type(fact).__name__ == kind
    values = fact if isinstance(fact, dict) else vars(fact)
    assert values == {"name": "special relativity", "year": 1905}
    (turn,) = turns(user)
    assert turn.schema == schema
    assert turn.value == {"name": "special relativity", "year": 1905}
    assert json.loads(turn.reply) == turn.value  # the thread keeps the exact reply text
    # A terminal shell prints the exact reply (a kernel shows highlighted JSON: see the
    # kernel test below).
    assert out.stdout.startswith(turn.reply)
    metadata = turn_metadata("default", 0, turn)
    assert (metadata["schema"], metadata["value"]) == (schema, turn.value)


def test_json_asks_for_any_object_and_gives_a_dict(user: Any, emulator: Emulator) -> None:
    chat(user, "--json -o data", "Count 3 and 4")
    data = user.user_ns["data"]
    assert isinstance(data, dict)
    assert data["numbers"] == [3, 4]  # the emulator's json_object answer: what it saw
    assert turns(user)[0].schema == "json"


def test_without_a_schema_o_still_holds_the_text(user: Any, emulator: Emulator) -> None:
    chat(user, "-o text")
    assert isinstance(user.user_ns["text"], str)
    assert turns(user)[0].schema is None and turns(user)[0].value is None


@pytest.mark.parametrize(("reply", "problem"), [
    ('{"name": "x", "year": "soon"}', "does not fit Fact: year: Input should be a valid integer"),
    ('{"name": "x"}', "does not fit Fact: year: Field required"),
    ("Sure! Here is the JSON you asked for", "does not fit Fact: not valid JSON"),
])
def test_an_invalid_reply_fails_the_cell_and_commits_nothing(
    user: Any, emulator: Emulator, reply: str, problem: str
) -> None:
    chat(user, "--schema Fact -o fact")  # one good turn first
    before = [t.reply for t in turns(user)]
    del user.user_ns["fact"]
    emulator.reply_with(reply)

    message = fails(user, f"%%chat --schema Fact -o fact\n{MESSAGE}")

    assert problem in message
    assert "nothing was added to thread 'default'" in message
    assert [t.reply for t in turns(user)] == before
    assert "fact" not in user.user_ns


@pytest.mark.parametrize("schema", ["Finding", "FACT"])
def test_the_first_problem_names_the_field_for_every_kind(
    user: Any, emulator: Emulator, schema: str
) -> None:
    emulator.reply_with('{"name": "x", "year": "soon"}')
    message = fails(user, f"%%chat --schema {schema}\n{MESSAGE}")
    assert f"does not fit {schema}: year:" in message
    assert turns(user) == []


def test_json_that_is_not_an_object_is_refused(user: Any, emulator: Emulator) -> None:
    emulator.reply_with("[1, 2]")
    message = fails(user, "%%chat --json\nlist")
    assert "not the JSON object --json asked for: it is a JSON array" in message
    assert turns(user) == []


def test_a_streamed_reply_is_validated_at_the_end(user: Any, emulator: Emulator) -> None:
    emulator.reply_with('{"name": "x", "year": 1', chunks=3)  # cut mid-stream
    fails(user, "%%chat --schema Fact\nanything")
    assert emulator.completions[-1].options["stream"] is True
    emulator.reply_with('{"name": "streamed", "year": 2024}', chunks=4)
    chat(user, "--schema Fact -o fact")
    assert user.user_ns["fact"].name == "streamed"
    emulator.reply_with('{"name": "whole", "year": 2025}')
    chat(user, "--schema Fact --no-stream -o fact")
    assert user.user_ns["fact"].year == 2025
    assert emulator.completions[-1].options["stream"] is False


def test_a_truncated_reply_says_to_raise_max_tokens(user: Any, emulator: Emulator) -> None:
    emulator.reply_with('{"name": "x", "ye', status="TRUNCATED_FINAL")
    message = fails(user, "%%chat --schema Fact\nanything")
    assert "cut at max_tokens" in message


def test_structured_turns_are_context_for_later_turns(user: Any, emulator: Emulator) -> None:
    chat(user, "-t facts --schema Fact -o first")
    chat(user, "-t facts", "Which year was that?")
    sent = emulator.completions[-1].messages
    assert sent[1] == ("assistant", turns(user, "facts")[0].reply)
    assert turns(user, "facts")[1].schema is None


@pytest.mark.parametrize("line", [
    "--schema Missing", "--schema MESSAGE_TEXT", "--schema BAD", "--schema Fact --json",
    "--schema Fact.nope",
])
def test_a_bad_schema_is_refused_before_anything_is_sent(
    user: Any, emulator: Emulator, line: str
) -> None:
    user.run_cell('MESSAGE_TEXT = "hi"\nBAD = {"type": 12}').raise_error()
    message = fails(user, f"%%chat {line}\nhello")
    assert "--schema" in message
    assert emulator.completions == []


def test_schema_of_a_dict_reads_like_a_json_schema_problem() -> None:
    with pytest.raises(UsageProblem, match="not a valid JSON Schema"):
        schema_of({"type": "objekt"}, "S")
    with pytest.raises(UsageProblem, match="not plain JSON data"):
        schema_of({"type": "object", "default": object()}, "S")


def test_a_fenced_json_reply_is_read_through_the_fence() -> None:
    parsed = any_json().parse('```json\n{"a": 1}\n```')
    assert parsed.value == {"a": 1}
    with pytest.raises(InvalidReply, match="not valid JSON"):
        any_json().parse("```json\n{\"a\": \n```")


@pytest.mark.parametrize("suffix", [".ipynb", ".md", ".json", ".jsonl"])
def test_transcripts_keep_the_schema_name_and_value(
    user: Any, emulator: Emulator, tmp_path: Path, suffix: str
) -> None:
    chat(user, "--schema Fact -o fact")
    chat(user, "", "hello")
    path = tmp_path / f"t{suffix}"
    user.run_line_magic("chat", f"save {path}")
    user.run_line_magic("chat", "reset")

    with capture_output():
        user.run_line_magic("chat", f"load {path}")
    loaded = turns(user)
    if suffix == ".ipynb":  # the saved output shows the value as the live one did
        import nbformat

        (reply,) = nbformat.read(path, as_version=4).cells[3].outputs
        assert 'class="highlight"' in reply.data["text/html"]
        assert "1905" in reply.data["text/html"] and "text/markdown" not in reply.data
    assert [(t.schema, t.value) for t in loaded] == [
        ("Fact", {"name": "special relativity", "year": 1905}), (None, None)]


def test_replay_gives_the_same_object_offline(
    user: Any, emulator: Emulator, tmp_path: Path
) -> None:
    path = tmp_path / "rec.jsonl"
    with capture_output():
        user.run_line_magic("chat", f"record {path}")
    chat(user, "--schema Finding -o first")
    with capture_output():
        user.run_line_magic("chat", "live")
        user.run_line_magic("chat", "reset")
        user.run_line_magic("chat", f"replay {path}")
    sent = len(emulator.completions)
    chat(user, "--schema Finding -o again")
    assert len(emulator.completions) == sent  # answered from the file
    assert user.user_ns["again"] == user.user_ns["first"]
    assert type(user.user_ns["again"]).__name__ == "Finding"


def test_restore_reads_a_structured_turn_back_from_the_notebook(
    user: Any, emulator: Emulator, tmp_path: Path
) -> None:
    """The output's text/plain stays the exact reply, so restore rebuilds the thread."""
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook, new_output

    from yagpt_magic.display.reply import ReplyView

    chat(user, "--schema Fact")
    (live,) = turns(user)
    data, metadata = ReplyView(text=live.reply, metadata=turn_metadata("default", 0, live),
                               value_markdown="```json\n{}\n```")._repr_mimebundle_()
    cell = new_code_cell(f"%%chat --schema Fact\n{MESSAGE}", outputs=[
        new_output("display_data", data=data, metadata=metadata)])
    path = tmp_path / "live.ipynb"
    nbformat.write(new_notebook(cells=[cell]), path)
    user.run_line_magic("chat", "reset")
    with capture_output():
        user.run_line_magic("chat", f"restore {path}")
    (turn,) = turns(user)
    assert turn.schema == "Fact" and turn.value["year"] == 1905


def test_the_widget_takes_a_schema_chosen_in_code(user: Any, emulator: Emulator) -> None:
    fact = user.user_ns["Fact"]
    widget = ChatWidget(session=magics_of(user).session, schema=fact)
    try:
        widget.message_box.value = MESSAGE
        widget.send_button.click()
        assert widget.wait(30)
        assert widget.status_line.value == "idle"
        assert isinstance(widget.value, fact) and widget.value.year == 1905
        emulator.reply_with("not json")
        widget.message_box.value = "again"
        widget.send_button.click()
        assert widget.wait(30)
        assert "does not fit Fact" in widget.status_line.value
        assert len(turns(user)) == 1
    finally:
        widget.close()


def test_the_structured_notebook_builds_a_dataframe_offline(tmp_path: Path,
                                                            clean_env: Any) -> None:
    from ..test_quickstart import ROOT, run_notebook

    nb = run_notebook(ROOT / "notebooks" / "structured.ipynb", {}, tmp_path)

    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    reply = next(o for o in outputs if "yagpt_magic" in o.get("metadata", {}))
    assert reply.metadata["yagpt_magic"]["schema"] == "Facts"
    table = next(o for o in outputs if o.output_type == "execute_result"
                 and "text/html" in o.data)["data"]["text/plain"]
    rows = [line.split() for line in table.splitlines()[1:]]
    assert [row[-1] for row in rows] == ["1896", "1905", "1928"]  # sorted by year
    assert "Henri Becquerel" in table and "special relativity" in table


def test_in_a_kernel_the_reply_streams_then_ends_as_highlighted_json(emulator: Emulator) -> None:
    good = json.dumps({"name": "streamed " + "x" * 200, "year": 2024})
    with Kernel(emulator_env(emulator)) as kernel:
        assert kernel.run("%load_ext yagpt_magic").ok
        assert kernel.run(SETUP).ok
        emulator.chunk_delay = 0.02
        emulator.reply_with(good, chunks=20)
        run = kernel.run("%%chat --schema Fact -o fact\nanything", cell_id="a")
        shown = kernel.run("print(type(fact).__name__, fact.year)")
        emulator.reply_with('{"name": "cut", "year": "soon"}', chunks=5)
        bad = kernel.run("%%chat --schema Fact -o other\nagain", cell_id="b")
        left = kernel.run("print(len(get_ipython()._yagpt_magic.session.thread().turns), "
                          "'other' in dir())")

    assert run.ok, run.error
    updates = [u["content"]["data"] for u in run.of_type("update_display_data")]
    partial = [u for u in updates[:-1] if u["text/plain"] and u["text/plain"] != good]
    assert partial, "the reply should show progress while it streams"
    assert 'class="highlight"' in updates[-1]["text/html"]
    assert "text/markdown" not in updates[-1]
    assert updates[-1]["text/plain"] == good
    assert "Fact 2024" in shown.text
    assert not bad.ok and "does not fit Fact: year" in bad.error
    last = bad.of_type("update_display_data")[-1]["content"]["data"]["text/plain"]
    assert last.endswith("[Failed: this partial reply was not added to the thread.]")
    assert "1 False" in left.text


def test_without_pydantic_a_dataclass_says_what_to_do(monkeypatch: pytest.MonkeyPatch) -> None:
    import dataclasses
    import sys

    @dataclasses.dataclass
    class Row:
        name: str

    monkeypatch.setitem(sys.modules, "pydantic", None)  # as if it were not installed
    with pytest.raises(UsageProblem, match="needs pydantic .*pip install pydantic"):
        schema_of(Row)
    dict_schema = schema_of({"type": "object", "properties": {"name": {"type": "string"}}}, "S")
    assert dict_schema.parse('{"name": "x"}').value == {"name": "x"}  # dicts need no pydantic


# -- issue 25: values the files cannot hold are refused in one line --------------------
def nested(depth: int, leaf: str = "1") -> str:
    return "[" * depth + leaf + "]" * depth


DEEP_ANY = '''
from typing import Any
class Deep(pydantic.BaseModel):
    v: Any
'''


@pytest.mark.parametrize(("line", "reply", "problem"), [
    ("--json", '{"x": NaN}', "NaN"),
    ("--json", '{"x": -Infinity}', "Infinity"),
    ("--json", '{"x": "a\\ud800b"}', "unpaired surrogate"),
    ("--json", '{"x": ' + nested(101) + "}", "nested"),
    ("--json", '{"x": ' + nested(900) + "}", "nested"),
    ("--json", nested(100_000), "nested"),
    ("--json", '{"n": ' + "7" * 5000 + "}", "digits"),
    ("--schema Deep", '{"v": ' + nested(5000) + "}", "nested"),
    ("--schema Deep", '{"v": ' + nested(150) + "}", "nested"),
])
def test_a_value_no_file_can_hold_is_one_line_and_nothing_is_kept(
    user: Any, emulator: Emulator, tmp_path: Path, line: str, reply: str, problem: str
) -> None:
    user.run_cell(DEEP_ANY).raise_error()
    chat(user, "--json -o data", "Count 3 and 4")  # one good turn first
    emulator.reply_with(reply)
    message = fails(user, f"%%chat {line}\nanswer")
    assert problem in message and "nothing was added" in message, message
    assert len(turns(user)) == 1
    for suffix in (".ipynb", ".md", ".json", ".jsonl"):  # and the thread still saves
        user.run_line_magic("chat", f"save {tmp_path / ('t' + suffix)}")
    nbformat_json = json.loads((tmp_path / "t.ipynb").read_text())  # strict JSON
    assert nbformat_json["cells"]


def test_a_value_nested_100_deep_round_trips_in_every_format(
    user: Any, emulator: Emulator, tmp_path: Path
) -> None:
    from yagpt_magic.transcript import load_threads

    value = {"x": json.loads(nested(99))}  # the object itself is one level
    emulator.reply_with(json.dumps(value))
    chat(user, "--json -o data", "deep")
    assert user.user_ns["data"] == value
    for suffix in (".ipynb", ".md", ".json", ".jsonl"):
        path = tmp_path / f"t{suffix}"
        user.run_line_magic("chat", f"save {path}")
        assert load_threads(path)["default"].turns[0].value == value


def test_a_dict_schema_error_shows_the_models_key_escaped(user: Any, emulator: Emulator
                                                           ) -> None:
    user.run_cell('CLOSED = {"type": "object", "additionalProperties": {"type": "integer"}}'
                  ).raise_error()
    key = "evil\\nkey $\\\\href{http://x.example}{y}$ \\u202e"
    emulator.reply_with('{"a": 1, "' + key + '": "soon"}')
    message = fails(user, "%%chat --schema CLOSED\nanswer")
    assert "\n" not in message and "\u202e" not in message and "\\u202e" in message
    assert "evil\\nkey" in message  # shown as its escape, not as a line break
    assert turns(user) == []
