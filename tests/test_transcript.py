"""Transcript formats (SPEC 6): round trips, record/replay, and files that must be refused."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import nbformat
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from yagpt_magic.core.conversation import Thread, Turn, Usage, messages_sha256
from yagpt_magic.core.session import ThreadEvent, turn_metadata
from yagpt_magic.display.reply import ReplyView
from yagpt_magic.emulator import Emulator
from yagpt_magic.service.replay import ReplayBackends
from yagpt_magic.transcript import load_threads, read_notebook, save_threads

from .conftest import fails, magics_of

FORMATS = (".ipynb", ".md", ".json", ".jsonl")


# -- building threads ------------------------------------------------------------------

def make_thread(name: str, system: str, exchanges: list[tuple[str, str]],
                starts: list[int] | None = None, cell_ids: list[str | None] | None = None
                ) -> Thread:
    """A thread as ChatSession.ask would leave it: every turn hashed over what it was sent."""
    thread = Thread(name, system)
    for i, (user, reply) in enumerate(exchanges):
        start = min(starts[i], i) if starts else 0
        messages = thread.request(user, upto=i, start=start)
        thread.commit(Turn(
            user=user, reply=reply,
            cell_id=cell_ids[i] if cell_ids else None,
            model="gpt://b1gtest/yandexgpt/latest",
            settings={"model_version": "23.10.2024", "temperature": 0.3 + i / 10,
                      "max_tokens": 500 + i, "reasoning_mode": None if i % 2 else "disabled"},
            usage=Usage(10 + i, 20 + i, i % 3, 30 + 2 * i + i % 3),
            status="truncated" if i == 2 else "final",
            started=f"2026-01-01T00:00:0{i % 10}.000Z",
            finished=f"2026-01-01T00:00:0{i % 10}.500Z",
            sha256=messages_sha256(messages),
            system_prompt=system,
            context_start=start,
        ))
    return thread


TRICKY = [
    "```python\nprint('hi')\n```",
    "a `tick` and ``two`` and ````` five",
    '{"json": [1, 2]} and {name} and {In[3]}',
    "quotes ' \" '' \"\" \\ back\\slash",
    "  leading and trailing spaces  ",
    "\n\nnewlines around\n\n",
    "Юникод, 中文, emoji 🙂, combining é, rtl שלום",
    "<!-- yagpt-magic-turn {\"turn\": 0} --> --> <script>alert(1)</script>",
    "# heading\n\n- list\n\n> quote\n\n$x^2$ | table |",
    "\r\nwindows\r\nline\rends\t\x00nul",
]


def three_threads() -> list[Thread]:
    return [
        make_thread("default", "You are terse.\nAnswer in 'one' line \"always\".",
                    [(TRICKY[i], TRICKY[-1 - i]) for i in range(5)], starts=[0, 0, 1, 1, 3],
                    cell_ids=["c-1", None, "c-3", "c-1", "weird id!"]),
        make_thread("code review", "", [("x" * 50_000, "y" * 60_000 + "`" * 7)]),
        make_thread("empty", "only a system prompt", []),
    ]


def roundtrip(threads: list[Thread], suffix: str, directory: Path) -> dict[str, Thread]:
    path = directory / f"transcript{suffix}"
    save_threads(threads, path, force=True)
    return load_threads(path)


@pytest.mark.parametrize("suffix", FORMATS)
def test_three_threads_round_trip_exactly(suffix: str, tmp_path: Path) -> None:
    threads = three_threads()
    loaded = roundtrip(threads, suffix, tmp_path)
    assert loaded == {t.name: t for t in threads}
    assert list(loaded["default"].turns[2].settings) == [
        "model_version", "temperature", "max_tokens", "reasoning_mode"]


def test_saved_notebook_is_valid_runnable_and_safe(tmp_path: Path) -> None:
    threads = three_threads()
    save_threads(threads, tmp_path / "t.ipynb")
    nb = nbformat.read(tmp_path / "t.ipynb", as_version=4)
    nbformat.validate(nb)
    chat = [c for c in nb.cells if c.source.startswith("%%chat")]
    assert [c.source.split("\n", 1)[0] for c in chat[:2]] == ["%%chat -t default"] * 2
    assert chat[5].source.startswith('%%chat -t "code review"\n')
    assert chat[0].id == "c-1" and chat[2].id == "c-3"  # turns keep their cells' ids
    out = chat[0].outputs[0]
    assert out.data["text/plain"] == TRICKY[-1]
    meta = out.metadata["yagpt_magic"]
    assert {"thread", "turn", "cell_id", "model_uri", "model_version", "temperature",
            "max_tokens", "usage", "status", "started", "finished", "messages_sha256",
            "version"} <= set(meta)
    # The reply with raw HTML is shown inert in the HTML a notebook renders.
    html = next(c for c in chat if "<script>" in c.outputs[0].data["text/plain"])
    assert "<script>" not in html.outputs[0].data["text/html"]
    # The settings cell and a %chat system cell set the system prompt.
    assert any(c.source.startswith("%chat system -t default ") for c in nb.cells)


alphabet = st.characters(blacklist_categories=("Cs",))
texts = st.one_of(
    st.text(alphabet, max_size=40),
    st.lists(st.sampled_from(TRICKY + ["`", "``", "```", "\n", " ", "{", "}", "'", '"', "é"]),
             max_size=12).map("".join),
    st.builds(lambda s, n: s * n, st.sampled_from(["ab`", "\n", "Ж"]),
              st.integers(500, 3000)),
)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    systems=st.lists(texts, min_size=3, max_size=3),
    exchanges=st.lists(st.lists(st.tuples(texts, texts), max_size=4), min_size=3, max_size=3),
    names=st.lists(st.text(alphabet, min_size=1, max_size=12).filter(str.strip),
                   min_size=3, max_size=3, unique=True),
)
def test_any_texts_round_trip_in_every_format(
    systems: list[str], exchanges: list[list[tuple[str, str]]], names: list[str]
) -> None:
    threads = [make_thread(n, s, e) for n, s, e in zip(names, systems, exchanges)]
    with tempfile.TemporaryDirectory() as directory:
        for suffix in FORMATS:
            assert roundtrip(threads, suffix, Path(directory)) == {t.name: t for t in threads}


# -- the commands in a shell -------------------------------------------------------------

def chat(shell: Any, text: str, thread: str = "default", flags: str = "") -> None:
    shell.run_cell(f"%%chat -t {thread} {flags}\n{text}").raise_error()


def converse(shell: Any) -> None:
    chat(shell, "What is a monad?", flags='-s "Be brief"')
    chat(shell, "And a functor?")
    chat(shell, "Review: `def f(): return {1: 2}`", thread="review")
    chat(shell, 'Say "hi"')


def snapshot(shell: Any) -> dict[str, Thread]:
    return {name: t.copy() for name, t in magics_of(shell).session.threads.items()}


@pytest.mark.parametrize("suffix", FORMATS)
def test_save_then_load_in_a_shell(shell: Any, tmp_path: Path, suffix: str) -> None:
    converse(shell)
    before = snapshot(shell)
    events: list[ThreadEvent] = []
    magics_of(shell).session.subscribe(events.append)
    shell.run_line_magic("chat", f"save {tmp_path}/t{suffix}")
    shell.run_line_magic("chat", "reset --all")
    shell.run_line_magic("chat", f"load {tmp_path}/t{suffix}")
    assert snapshot(shell) == before
    assert ThreadEvent("default", "load") in events and ThreadEvent("review", "load") in events


def test_load_with_t_picks_or_renames_a_thread(shell: Any, tmp_path: Path) -> None:
    converse(shell)
    before = snapshot(shell)
    shell.run_line_magic("chat", f"save {tmp_path}/all.json")
    shell.run_line_magic("chat", f"save {tmp_path}/one.md -t review")
    shell.run_line_magic("chat", "reset --all")
    shell.run_line_magic("chat", f"load {tmp_path}/all.json -t review")
    session = magics_of(shell).session
    assert session.threads["review"] == before["review"] and not session.threads["default"].turns
    shell.run_line_magic("chat", f"load {tmp_path}/one.md -t again")
    assert session.threads["again"].turns == before["review"].turns
    assert "no thread 'nope'" in fails(shell, f"%chat load {tmp_path}/all.json -t nope")


def test_save_refuses_to_overwrite_a_users_notebook(shell: Any, tmp_path: Path) -> None:
    converse(shell)
    mine = tmp_path / "analysis.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1+1")]), mine)
    original = mine.read_text()
    assert "not a yagpt-magic transcript" in fails(shell, f"%chat save {mine}")
    assert mine.read_text() == original
    shell.run_line_magic("chat", f"save {tmp_path}/t.ipynb")
    shell.run_line_magic("chat", f"save {tmp_path}/t.ipynb")  # its own file: fine


def test_record_then_replay_offline_and_exactly(shell: Any, emulator: Emulator,
                                                tmp_path: Path) -> None:
    chat(shell, "Before recording")
    shell.run_line_magic("chat", f"record {tmp_path}/rec.jsonl")
    chat(shell, "What is a monad?")
    chat(shell, "Review this", thread="review")
    chat(shell, "Oops")
    shell.run_line_magic("chat", "undo")
    chat(shell, "And a functor?")
    shell.run_line_magic("chat", "live")
    chat(shell, "Not recorded")
    recorded = snapshot(shell)
    lines = (tmp_path / "rec.jsonl").read_text().splitlines()
    assert len(lines) == 1 + 1 + 4 + 1  # header, earlier turn, four commits, one undo
    loaded = load_threads(tmp_path / "rec.jsonl")
    assert loaded["default"].turns == recorded["default"].turns[:3]

    shell.run_line_magic("chat", "reset --all")
    shell.run_line_magic("chat", f"replay {tmp_path}/rec.jsonl")
    sent = len(emulator.completions)
    for text in ("Before recording", "What is a monad?", "And a functor?"):
        chat(shell, text)
    chat(shell, "Review this", thread="review")
    assert len(emulator.completions) == sent
    assert snapshot(shell)["default"].turns[:3] == [
        _same_but_times(a, b) for a, b in zip(recorded["default"].turns, snapshot(
            shell)["default"].turns)]
    message = fails(shell, "%%chat\nSomething new")
    assert "turn 3 of 'default'" in message and "holds only 3 turns" in message
    assert len(emulator.completions) == sent


def _same_but_times(recorded: Turn, replayed: Turn) -> Turn:
    assert (recorded.user, recorded.reply, recorded.sha256, recorded.usage, recorded.model) == (
        replayed.user, replayed.reply, replayed.sha256, replayed.usage, replayed.model)
    return replayed


def test_replay_miss_names_the_turn_and_the_first_difference(shell: Any, emulator: Emulator,
                                                             tmp_path: Path) -> None:
    converse(shell)
    shell.run_line_magic("chat", f"save {tmp_path}/t.ipynb")
    shell.run_line_magic("chat", "reset --all")
    shell.run_line_magic("chat", f"replay {tmp_path}/t.ipynb")
    sent = len(emulator.completions)
    chat(shell, "What is a monad?", flags='-s "Be brief"')
    message = fails(shell, "%%chat\nAnd a monoid?")
    assert message.startswith("Replay: turn 1 of 'default': the user message differs: "
                              "recorded 'And a functor?', now 'And a monoid?'")
    shell.run_line_magic("chat", "system Be long")
    message = fails(shell, "%%chat\nAnd a functor?")
    assert "the system prompt differs: recorded 'Be brief', now 'Be long'" in message
    assert len(emulator.completions) == sent
    assert len(magics_of(shell).session.threads["default"].turns) == 1


def test_live_output_notices_are_not_part_of_the_restored_reply(tmp_path: Path) -> None:
    thread = make_thread("default", "", [("q0", "a0"), ("q1", "a1"), ("q2", "cut reply")],
                         starts=[0, 0, 2])
    cells = []
    for index, turn in enumerate(thread.turns):
        view = ReplyView(text=turn.reply, left_out=turn.context_start or 0, window=4096,
                         status=turn.status,
                         metadata=turn_metadata("default", index, turn))
        data, meta = view._repr_mimebundle_()
        cell = nbformat.v4.new_code_cell(f"%%chat\n{turn.user}\n", id=f"cell{index}")
        cell.outputs = [nbformat.v4.new_output("display_data", data=data, metadata=meta)]
        cells.append(cell)
    assert "left out" in cells[2].outputs[0].data["text/plain"]
    cells.insert(1, nbformat.v4.new_code_cell("%%chat\nnever run", id="unrun"))
    nbformat.write(nbformat.v4.new_notebook(cells=cells), tmp_path / "live.ipynb")
    found = read_notebook(tmp_path / "live.ipynb", use_cell_ids=True)
    assert [t.reply for t in found.threads["default"].turns] == ["a0", "a1", "cut reply"]
    assert [t.cell_id for t in found.threads["default"].turns] == ["cell0", "cell1", "cell2"]
    assert found.unanswered == 1


def test_restore_keeps_the_message_a_vars_cell_sent(shell: Any, tmp_path: Path) -> None:
    shell.run_cell("name = 'Ada'").raise_error()
    shell.run_cell("%%chat --vars\nHello {name}").raise_error()
    turn = shell.magics_manager.registry["ChatMagics"].session.thread().turns[0]
    assert turn.user == "Hello Ada"
    view = ReplyView(text=turn.reply, metadata=turn_metadata("default", 0, turn))
    data, meta = view._repr_mimebundle_()
    cell = nbformat.v4.new_code_cell("%%chat --vars\nHello {name}", id="v1")
    cell.outputs = [nbformat.v4.new_output("display_data", data=data, metadata=meta)]
    nbformat.write(nbformat.v4.new_notebook(cells=[cell]), tmp_path / "vars.ipynb")
    found = read_notebook(tmp_path / "vars.ipynb", use_cell_ids=True)
    assert [t.user for t in found.threads["default"].turns] == ["Hello Ada"]
    assert found.interpolated == 0


# -- files that must be refused ----------------------------------------------------------

def saved(tmp_path: Path, suffix: str) -> Path:
    path = tmp_path / f"good{suffix}"
    save_threads(three_threads()[:2], path)
    return path


def edit_json(path: Path, change: Any) -> Path:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))
    return path


def nb3(tmp_path: Path) -> Path:
    path = tmp_path / "old.ipynb"
    path.write_text(json.dumps({"nbformat": 3, "nbformat_minor": 0, "metadata": {},
                                "worksheets": [{"cells": []}], "cells": []}))
    return path


def unmarked_reply(tmp_path: Path) -> Path:
    def drop(data: dict[str, Any]) -> None:
        chat = [c for c in data["cells"] if "".join(c["source"]).startswith("%%chat")]
        chat[1]["outputs"][0]["metadata"] = {}
    return edit_json(saved(tmp_path, ".ipynb"), drop)


def tampered(tmp_path: Path) -> Path:
    def change(data: dict[str, Any]) -> None:
        data["threads"][0]["turns"][1]["user"] = "something I never sent"
    return edit_json(saved(tmp_path, ".json"), change)


def foreign_code_cell(tmp_path: Path) -> Path:
    def add(data: dict[str, Any]) -> None:
        data["cells"].insert(3, nbformat.v4.new_code_cell("import os; os.remove('x')",
                                                          id="evil"))
    return edit_json(saved(tmp_path, ".ipynb"), add)


def huge(tmp_path: Path) -> Path:
    path = tmp_path / "huge.json"
    with open(path, "wb") as file:
        file.truncate(100 * 2**20)  # sparse: costs no disk or time
    return path


def truncated(suffix: str) -> Any:
    def make(tmp_path: Path) -> Path:
        path = saved(tmp_path, suffix)
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
        return path
    return make


def future(tmp_path: Path) -> Path:
    return edit_json(saved(tmp_path, ".json"), lambda d: d.update(version=3))


def foreign_json(tmp_path: Path) -> Path:
    path = tmp_path / "package.json"
    path.write_text('{"name": "left-pad", "version": "1.3.0"}')
    return path


def garbage(tmp_path: Path) -> Path:
    path = tmp_path / "noise.md"
    path.write_bytes(bytes(range(256)) * 64)
    return path


def wrong_extension(tmp_path: Path) -> Path:
    path = saved(tmp_path, ".json").rename(tmp_path / "transcript.txt")
    return path


def bad_json(tmp_path: Path) -> Path:
    path = tmp_path / "bad.json"
    path.write_text('{"format": "yagpt-magic-transcript", "version": 1, "threads": [,]}')
    return path


def bad_types(tmp_path: Path) -> Path:
    def change(data: dict[str, Any]) -> None:
        data["threads"][0]["turns"][0]["usage"]["total_tokens"] = "lots"
    return edit_json(saved(tmp_path, ".json"), change)


def no_chat_notebook(tmp_path: Path) -> Path:
    path = tmp_path / "plain.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1 + 1")]), path)
    return path


def empty(tmp_path: Path) -> Path:
    path = tmp_path / "empty.jsonl"
    path.write_text("")
    return path


def negative_context(tmp_path: Path) -> Path:
    def change(data: dict[str, Any]) -> None:
        data["threads"][0]["turns"][1]["context_start"] = -5
    return edit_json(saved(tmp_path, ".json"), change)


def long_number(tmp_path: Path) -> Path:
    path = saved(tmp_path, ".json")
    text = path.read_text().replace('"context_start": 0', '"context_start": ' + "9" * 5000, 1)
    path.write_text(text)
    return path


def huge_version(tmp_path: Path) -> Path:
    path = saved(tmp_path, ".json")
    path.write_text(path.read_text().replace('"version": 1', '"version": ' + "1" * 400, 1))
    return path


def device(tmp_path: Path) -> Path:
    path = tmp_path / "zero.json"
    path.symlink_to("/dev/zero")
    return path


def fifo(tmp_path: Path) -> Path:
    path = tmp_path / "pipe.jsonl"
    os.mkfifo(path)
    return path


def negative_turn(tmp_path: Path) -> Path:
    def change(data: dict[str, Any]) -> None:
        chat = [c for c in data["cells"] if "".join(c["source"]).startswith("%%chat")]
        chat[1]["outputs"][0]["metadata"]["yagpt_magic"]["turn"] = -3
        data["metadata"].pop("yagpt_magic")  # read as a live notebook, the lenient way
    return edit_json(saved(tmp_path, ".ipynb"), change)


BAD = {
    "bad JSON": (bad_json, "malformed JSON"),
    "nbformat 3": (nb3, "nbformat 3"),
    "missing metadata": (unmarked_reply, "without reply metadata"),
    "hash mismatch": (tampered, "does not match"),
    "code cell not %%chat": (foreign_code_cell, "not %%chat"),
    "100 MB": (huge, "over the 50 MB"),
    "truncated json": (truncated(".json"), "truncated"),
    "truncated md": (truncated(".md"), "truncated"),
    "truncated jsonl": (truncated(".jsonl"), "truncated"),
    "truncated ipynb": (truncated(".ipynb"), "truncated"),
    "future version": (future, "version 3 is newer"),
    "foreign JSON": (foreign_json, "not a yagpt-magic transcript"),
    "binary garbage": (garbage, "not UTF-8"),
    "wrong extension": (wrong_extension, "unknown transcript type '.txt'"),
    "wrong field type": (bad_types, "'total_tokens' has the wrong type"),
    "notebook without turns": (no_chat_notebook, "holds no chat turns"),
    "empty file": (empty, "empty"),
    "negative context_start": (negative_context, "context_start -5 is negative"),
    "5,000-digit number": (long_number, "number too long"),
    "version 10**400": (huge_version, "is newer than"),
    "symlink to /dev/zero": (device, "not a regular file"),
    "FIFO": (fifo, "not a regular file"),
    "negative turn in a notebook": (negative_turn, "turn index -3 is negative"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_a_bad_file_is_one_line_naming_it_and_changes_nothing(
    shell: Any, tmp_path: Path, case: str
) -> None:
    make, problem = BAD[case]
    converse(shell)
    path = make(tmp_path)
    before = snapshot(shell)
    session = magics_of(shell).session
    for command in ("load", "replay"):
        message = fails(shell, f"%chat {command} {path}")
        assert str(path) in message and problem in message, message
        assert len(message) < len(str(path)) + 200
        assert not isinstance(session.backends, ReplayBackends)
    assert snapshot(shell) == before


def test_loading_never_runs_code_from_the_file(shell: Any, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    converse(shell)
    path = saved(tmp_path, ".ipynb")

    def poison(data: dict[str, Any]) -> None:
        code = f"open({str(marker)!r}, 'w')"
        data["cells"][1]["source"] = f"%chat help\n{code}"
        for cell in data["cells"]:
            for output in cell.get("outputs", []):
                output["data"]["text/plain"] = "x"
                output["metadata"]["yagpt_magic"]["usage"]["input_tokens"] = {"__class__": code}
    edit_json(path, poison)
    fails(shell, f"%chat load {path}")
    assert not marker.exists()


def test_restore_without_a_notebook_path_says_how(shell: Any, monkeypatch: Any) -> None:
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    shell.user_ns.pop("__session__", None)
    assert "%chat restore PATH.ipynb" in fails(shell, "%chat restore")


def test_record_needs_a_transcript_type_and_live_ends_modes(shell: Any, tmp_path: Path) -> None:
    # Was: .json refused ("use a .jsonl path"); record now writes every format (issue 14).
    assert "unknown transcript type '.txt'" in fails(shell, f"%chat record {tmp_path}/r.txt")
    session = magics_of(shell).session
    shell.run_line_magic("chat", f"record {tmp_path}/r.jsonl")
    assert session.recorder is not None
    converse(shell)
    shell.run_line_magic("chat", f"replay {tmp_path}/r.jsonl")  # replay ends recording
    assert session.recorder is None and isinstance(session.backends, ReplayBackends)
    shell.run_line_magic("chat", "live")
    assert session.recorder is None and not isinstance(session.backends, ReplayBackends)


def test_file_mode_is_the_users_not_private(shell: Any, tmp_path: Path) -> None:
    converse(shell)
    shell.run_line_magic("chat", f"save {tmp_path}/t.json")
    mask = os.umask(0)
    os.umask(mask)
    assert (tmp_path / "t.json").stat().st_mode & 0o777 == 0o666 & ~mask



def test_a_saved_notebook_sets_a_multiline_system_prompt_exactly(
    shell: Any, emulator: Emulator, tmp_path: Path
) -> None:
    system = "You are terse.\n  Answer in \"one\" line;\n'no' lists."
    shell.run_line_magic("chat", "system -t multi --json " + json.dumps(system))
    shell.run_cell("%%chat -t multi\nfirst").raise_error()
    shell.run_line_magic("chat", f"save {tmp_path / 'multi.ipynb'}")
    first_request = emulator.completions[-1].messages
    # Run the saved notebook's own cells in replay mode: the first turn must match.
    shell.run_line_magic("chat", "reset --all")
    shell.run_line_magic("chat", f"replay {tmp_path / 'multi.ipynb'}")
    notebook = nbformat.read(tmp_path / "multi.ipynb", as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "code" and not cell.source.startswith("%load_ext"):
            shell.run_cell(cell.source).raise_error()
    thread = shell.magics_manager.registry["ChatMagics"].session.thread("multi")
    assert thread.system_prompt == system
    assert thread.turns[0].sha256 == messages_sha256(
        [{"role": r, "text": t} for r, t in first_request])


@pytest.mark.parametrize("suffix", FORMATS)
def test_record_keeps_every_format_in_step_turn_by_turn(
    shell: Any, tmp_path: Path, suffix: str
) -> None:
    path = tmp_path / f"rec{suffix}"
    shell.run_line_magic("chat", f"record {path}")
    for n, question in enumerate(["What is a monad?", "And a functor?", "Thanks"], start=1):
        chat(shell, question)
        on_disk = load_threads(path)["default"]
        assert [t.user for t in on_disk.turns][-1] == question and len(on_disk.turns) == n
        assert list(tmp_path.iterdir()) == [path]  # no temporary file left beside it
    shell.run_line_magic("chat", "undo")
    assert len(load_threads(path)["default"].turns) == 2
    assert load_threads(path)["default"].turns == magics_of(shell).session.thread().turns


def test_a_failed_recording_write_says_the_turn_was_kept(
    shell: Any, tmp_path: Path, capsys: Any
) -> None:
    folder = tmp_path / "gone"
    folder.mkdir()
    path = folder / "rec.ipynb"
    shell.run_line_magic("chat", f"record {path}")
    chat(shell, "first")
    heard: list[Any] = []
    magics_of(shell).session.subscribe(heard.append)
    before = path.read_bytes()
    moved = tmp_path / "elsewhere"
    folder.rename(moved)  # the next write cannot happen
    message = fails(shell, "%%chat\nsecond")
    assert "was added to thread 'default' as turn 1, but recording it failed" in message
    assert "cannot write the recording" in message
    assert [t.user for t in magics_of(shell).session.thread().turns] == ["first", "second"]
    assert [e.index for e in heard] == [1]  # listeners (the widget) heard the commit
    assert "second" in capsys.readouterr().out  # the reply was shown as kept
    assert (moved / "rec.ipynb").read_bytes() == before  # the old file is whole


# -- issue 25: a cut file is an error; old files still load; CRLF ----------------------
V1 = Path(__file__).parent / "transcripts_v1"


def test_a_md_cut_anywhere_is_an_error(tmp_path: Path) -> None:
    from yagpt_magic.core.errors import TranscriptError

    text = saved(tmp_path, ".md").read_text()
    cut = tmp_path / "cut.md"
    points = sorted({*range(0, len(text), max(1, len(text) // 400)), *(
        i for i, c in enumerate(text) if c == "\n")})
    quiet = []
    for point in points:
        if not text[point:].strip():
            continue  # only trailing blank lines left out: nothing is missing
        cut.write_text(text[:point])
        try:
            load_threads(cut)
        except TranscriptError:
            continue
        quiet.append(point)
    assert quiet == [], f"{len(quiet)} of {len(points)} cuts load silently"


def test_a_jsonl_cut_on_a_line_boundary_is_an_error(tmp_path: Path) -> None:
    from yagpt_magic.core.errors import TranscriptError

    lines = saved(tmp_path, ".jsonl").read_text().splitlines(keepends=True)
    cut = tmp_path / "cut.jsonl"
    for keep in range(1, len(lines)):
        cut.write_text("".join(lines[:keep]))
        with pytest.raises(TranscriptError, match="truncated"):
            load_threads(cut)


@pytest.mark.parametrize("suffix", [".md", ".jsonl"])
def test_files_written_before_the_end_marker_still_load(suffix: str) -> None:
    threads = three_threads()
    assert load_threads(V1 / f"two-threads{suffix}") == {"default": threads[0],
                                                          "empty": threads[2]}


def test_a_recording_continued_with_append_keeps_its_end(shell: Any, tmp_path: Path) -> None:
    from yagpt_magic.core.errors import TranscriptError

    path = tmp_path / "rec.jsonl"
    shell.run_line_magic("chat", f"record {path}")
    chat(shell, "first")
    shell.run_line_magic("chat", "live")
    shell.run_line_magic("chat", f"record --append {path}")
    chat(shell, "second")
    shell.run_line_magic("chat", "live")
    assert [t.user for t in load_threads(path)["default"].turns] == ["first", "second"]
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:-2]))
    with pytest.raises(TranscriptError, match="truncated"):
        load_threads(path)


def test_a_md_with_windows_line_endings_loads(tmp_path: Path) -> None:
    threads = [make_thread("default", "Be brief.\nVery.", [("Hi\nthere", "Hello!\n\n- a\n- b")])]
    path = tmp_path / "crlf.md"
    save_threads(threads, path)
    path.write_bytes(path.read_bytes().replace(b"\n", b"\r\n"))
    assert load_threads(path) == {"default": threads[0]}


def tool_turn_thread() -> Thread:
    thread = make_thread("default", "", [("Use f", "It said ok.")])
    from yagpt_magic.core.conversation import ToolCall, ToolRound

    turn = thread.turns[0]
    thread.turns[0] = Turn(**{**vars(turn), "tool_rounds": (
        ToolRound((ToolCall("f", {"a": "PLACEHOLDER"}, "ok"),)),)})
    return thread


@pytest.mark.parametrize(("value", "problem"), [
    ("[" * 900 + "1" + "]" * 900, "nested more than 100 levels deep"),
    ("NaN", "holds NaN"),
    ('"\\ud800"', "unpaired surrogate"),
])
@pytest.mark.parametrize("suffix", [".json", ".jsonl", ".md"])
def test_a_transcript_with_arguments_no_turn_can_hold_is_refused_on_load(
    shell: Any, tmp_path: Path, value: str, problem: str, suffix: str
) -> None:
    path = tmp_path / f"t{suffix}"
    save_threads([tool_turn_thread()], path)
    path.write_text(path.read_text().replace('"PLACEHOLDER"', value))
    message = fails(shell, f"%chat load {path}")
    assert problem in message and "arguments of its call of 'f'" in message, message
    assert magics_of(shell).session.thread("default").turns == []


def test_restore_of_offline_turns_goes_offline_again(bare_shell: Any, tmp_path: Path,
                                                     capsys: Any) -> None:
    """Issue 25: after a restart, %chat restore brought the turns back but the next cell
    failed for want of credentials until %chat offline was run again."""
    path = tmp_path / "t.ipynb"
    bare_shell.run_line_magic("chat", "offline")
    chat(bare_shell, "What is a monad?")
    bare_shell.run_line_magic("chat", f"save {path}")
    bare_shell.run_line_magic("unload_ext", "yagpt_magic")  # the kernel restarts...
    bare_shell.run_line_magic("load_ext", "yagpt_magic")
    bare_shell.run_line_magic("chat", "reset --all")
    capsys.readouterr()
    bare_shell.run_line_magic("chat", f"restore {path}")
    out = capsys.readouterr().out
    assert "came from the offline emulator" in out and "started again" in out
    chat(bare_shell, "And a functor?")  # no "No YandexGPT credential found"
    assert len(magics_of(bare_shell).session.thread().turns) == 2
