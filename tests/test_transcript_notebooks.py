"""Transcripts (SPEC 6) in real kernels: record, replay offline, restore after a restart."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import nbformat
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell, new_notebook, new_output

from yagpt_magic.emulator import Emulator

from .conftest import TEST_API_KEY, emulator_env
from .kernel import Execution, Kernel

ROOT = Path(__file__).resolve().parent.parent
_ENV = ("YC_API_KEY", "YC_IAM_TOKEN", "YC_OAUTH_TOKEN", "API_KEY", "IAM_TOKEN", "YC_FOLDER_ID",
        "FOLDER_ID", "YC_API_ENDPOINT", "YAGPT_INSECURE", "YAGPT_OFFLINE")

CONVERSATION = [
    '%%chat -s "You are terse. Say \'yes\' when unsure."\nWhat is a monad?',
    "%%chat -t review --temperature 0.1\nReview: `def f(x): return {x: x}`",
    "%%chat\nAnd a functor?",
    '%%chat --no-stream\nSay "hi" in a ```` fenced ```` block',
]


def execute(nb: Any, env: dict[str, str], cwd: Path, allow_errors: bool = False) -> Any:
    """Run ``nb`` with nbclient in a fresh python3 kernel whose environment is exactly ``env``."""
    old = dict(os.environ)
    for name in _ENV:
        os.environ.pop(name, None)
    os.environ.update(env)
    try:
        NotebookClient(nb, timeout=120, kernel_name="python3", allow_errors=allow_errors,
                       resources={"metadata": {"path": str(cwd)}}).execute()
    finally:
        os.environ.clear()
        os.environ.update(old)
    return nb


def conversation(mode: str, cells: list[str] = CONVERSATION) -> Any:
    return new_notebook(cells=[new_code_cell("%load_ext yagpt_magic"), new_code_cell(mode)]
                        + [new_code_cell(source) for source in cells])


def replies(nb: Any) -> list[list[dict[str, Any]]]:
    """Each %%chat cell's outputs, with the two timestamps (the only things allowed to differ)."""
    found = []
    for cell in nb.cells:
        if not cell.source.startswith("%%chat"):
            continue
        outputs = []
        for output in cell.outputs:
            output = nbformat.from_dict(dict(output))
            meta = output.get("metadata", {}).get("yagpt_magic")
            if meta is not None:
                output.metadata = {"yagpt_magic": {k: v for k, v in meta.items()
                                                   if k not in ("started", "finished")}}
            outputs.append(output)
        found.append(outputs)
    return found


def test_a_recorded_notebook_replays_identically_with_the_service_gone(
    emulator: Emulator, tmp_path: Path
) -> None:
    recorded = execute(conversation("%chat record rec.jsonl"), emulator_env(emulator), tmp_path)
    assert len(emulator.completions) == 4
    nbformat.write(recorded, tmp_path / "recorded.ipynb")
    live = replies(recorded)
    assert all(len(outputs) == 1 and "yagpt_magic" in outputs[0].metadata for outputs in live)
    env = emulator_env(emulator)
    emulator.stop()  # from here on any request would fail

    from_jsonl = execute(conversation("%chat replay rec.jsonl"), env, tmp_path)
    assert replies(from_jsonl) == live
    from_notebook = execute(conversation("%chat replay recorded.ipynb"), env, tmp_path)
    assert replies(from_notebook) == live

    # An edited prompt fails its own cell, naming the turn; the turns before it still replay.
    edited = CONVERSATION[:2] + ["%%chat\nAnd an applicative?"]
    nb = execute(conversation("%chat replay rec.jsonl", edited), env, tmp_path,
                 allow_errors=True)
    got = replies(nb)
    assert got[:2] == live[:2]
    text = "".join(o.get("text", "") + o.get("evalue", "") for o in got[2])
    assert "turn 1 of 'default': the user message differs: recorded 'And a functor?', " \
           "now 'And an applicative?'" in text


def test_replay_from_a_saved_transcript_makes_no_request(emulator: Emulator,
                                                         tmp_path: Path) -> None:
    nb = conversation("%chat live")
    nb.cells.append(new_code_cell("%chat save saved.ipynb"))
    recorded = execute(nb, emulator_env(emulator), tmp_path)
    with Emulator(api_key=TEST_API_KEY) as witness:
        replayed = execute(conversation("%chat replay saved.ipynb"), emulator_env(witness),
                           tmp_path)
        assert witness.completions == [] and witness.tokenize_calls == 0
    assert replies(replayed) == replies(recorded)


def outputs_of(execution: Execution) -> list[Any]:
    """The outputs JupyterLab would store for one execution, display updates applied."""
    outputs: list[Any] = []
    shown: dict[str, list[Any]] = {}
    for msg in execution.messages:
        kind, content = msg["msg_type"], msg["content"]
        if kind == "stream":
            outputs.append(new_output("stream", name=content["name"], text=content["text"]))
        elif kind in ("display_data", "execute_result"):
            extra = {"execution_count": content["execution_count"]} \
                if kind == "execute_result" else {}
            output = new_output(kind, data=content["data"], metadata=content["metadata"],
                                **extra)
            outputs.append(output)
            display_id = content.get("transient", {}).get("display_id")
            if display_id:
                shown.setdefault(display_id, []).append(output)
        elif kind == "update_display_data":
            for output in shown.get(content["transient"]["display_id"], []):
                output.data, output.metadata = content["data"], content["metadata"]
        elif kind == "error":
            outputs.append(new_output("error", ename=content["ename"],
                                      evalue=content["evalue"], traceback=content["traceback"]))
    return outputs


def test_restore_after_a_kernel_restart_keeps_the_whole_history(
    emulator: Emulator, tmp_path: Path
) -> None:
    path = tmp_path / "work.ipynb"
    cells = [
        ("setup", "%load_ext yagpt_magic"),
        ("c1", '%%chat -s "Be brief"\nFirst question'),
        ("c2", "%%chat\nSecond question"),
        ("r1", "%%chat -t review\nReview this"),
        ("bad", "%%chat --temperature 7\nNever sent"),
        ("c3", "%%chat\nThird question"),
        ("unrun", "%%chat\nNot run yet"),
    ]
    env = {**emulator_env(emulator), "JPY_SESSION_NAME": str(path)}
    with Kernel(env) as kernel:
        notebook = []
        for cell_id, source in cells:
            outputs = [] if cell_id == "unrun" else outputs_of(kernel.run(source, cell_id))
            notebook.append(new_code_cell(source, id=cell_id, outputs=outputs))
        nbformat.write(new_notebook(cells=notebook), path)
        before = emulator.completions[-1]
        third_reply = notebook[5].outputs[0].data["text/plain"]

        kernel.restart()
        assert kernel.run("%load_ext yagpt_magic").ok
        restored = kernel.run("%chat restore")  # this notebook, from JPY_SESSION_NAME
        assert restored.ok, restored.error
        assert "Restored 4 turns" in restored.text and "skipped 2 %%chat cells" in restored.text

        assert kernel.run("%%chat\nFourth question", "c4").ok
        sent = emulator.completions[-1].messages
        assert sent[:-1] == [*before.messages, ("assistant", third_reply)]
        assert [text for role, text in sent if role == "user"] == [
            "First question", "Second question", "Third question", "Fourth question"]

        # Re-running a restored cell replaces its turn in place, with only earlier context.
        assert kernel.run("%%chat\nSecond question, again", "c2").ok
        assert [t for _, t in emulator.completions[-1].messages][-2:] == [
            before.messages[2][1], "Second question, again"]
        count = kernel.run("print(len(get_ipython()._yagpt_magic.session.threads['default']"
                           ".turns))")
        assert count.text.strip() == "4"


def test_the_transcripts_notebook_runs_offline(tmp_path: Path) -> None:
    nb = execute(nbformat.read(ROOT / "notebooks" / "transcripts.ipynb", as_version=4), {},
                 tmp_path)
    by_id = {cell.id: cell for cell in nb.cells}
    reply = lambda cell_id: by_id[cell_id].outputs[0].data["text/plain"]  # noqa: E731
    assert (reply("again-1"), reply("again-2")) == (reply("ask-1"), reply("ask-2"))
    assert "turn 0 of 'review'" in by_id["miss"].outputs[0].text
    assert {"conversation.jsonl", "conversation.ipynb", "conversation.md"} <= {
        p.name for p in tmp_path.iterdir()}


def test_restore_after_widget_turns_says_what_it_could_not_restore(
    emulator: Emulator, tmp_path: Path
) -> None:
    """Issue 25: a widget turn lives in no cell; restore dropped it without a word and
    marked the wrong turns stale."""
    path = tmp_path / "work.ipynb"
    cells = [
        ("setup", "%load_ext yagpt_magic\nfrom yagpt_magic import ChatWidget\nw = ChatWidget()"),
        ("c1", "%%chat\nFirst question"),
        ("w", "w.message_box.value = 'From the widget'\nw.send_button.click()\nw.wait(30)"),
        ("c2", "%%chat\nSecond question"),
        ("c3", "%%chat -t other\nElsewhere"),
    ]
    env = {**emulator_env(emulator), "JPY_SESSION_NAME": str(path)}
    with Kernel(env) as kernel:
        notebook = [new_code_cell(source, id=cell_id,
                                  outputs=outputs_of(kernel.run(source, cell_id)))
                    for cell_id, source in cells]
        nbformat.write(new_notebook(cells=notebook), path)
        kernel.restart()
        assert kernel.run("%load_ext yagpt_magic").ok
        restored = kernel.run("%chat restore")
        assert restored.ok, restored.error
        turns = kernel.run(
            "from yagpt_magic import current_session\n"
            "for name, t in current_session().threads.items():\n"
            "    print(name, [(x.user, x.stale) for x in t.turns])")
    text = restored.text
    assert "Restored 3 turns" in text
    assert "turn #2 of 'default' is in no cell (a widget turn?)" in text
    assert "1 turn after it is stale: it was answered with that turn as context" in text
    assert "default [('First question', False), ('Second question', True)]" in turns.text
    assert "other [('Elsewhere', False)]" in turns.text
