"""Images in transcripts (SPEC 15): each kept once per SHA-256, every format round-trips.

A transcript that names an image it does not hold, or holds one whose bytes were
changed, is refused in one line before any thread changes.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import nbformat
import pytest

from tests.imagefiles import png
from yagpt_magic.core.conversation import Thread, Turn, Usage
from yagpt_magic.core.errors import TranscriptError
from yagpt_magic.core.images import Image
from yagpt_magic.core.session import ChatSession
from yagpt_magic.transcript import Recorder, load_threads, read_notebook, save_threads

FORMATS = (".ipynb", ".md", ".json", ".jsonl")
RED = Image.from_bytes(png(6, 4, (255, 0, 0)), "red.png")
BLUE = Image.from_bytes(png(3, 9, (0, 0, 255)), "plots/blue chart.png")
FIG = Image.from_bytes(png(40, 30, (0, 128, 0)), "fig")


def image_thread(name: str = "see") -> Thread:
    """Turns as ChatSession.ask leaves them: the same image twice, two at once, none."""
    thread = Thread(name, "Describe images.")
    plan = [("What is this?", (RED,)), ("And these?", (BLUE, FIG)), ("Thanks", ()),
            ("This one again?", (Image(RED.data, RED.mime, RED.sha256, 6, 4, "again.png"),))]
    for i, (user, images) in enumerate(plan):
        start = 1 if i == 3 else 0
        thread.commit(Turn(
            user=user, reply=f"reply {i}", model="gpt://b1gtest/gemma-3-27b-it/latest",
            settings={"model_version": "", "temperature": None, "max_tokens": None,
                      "reasoning_mode": None},
            usage=Usage(276 + 300 * i, 20, 0, 296 + 300 * i), started="2026-01-01T00:00:00Z",
            finished="2026-01-01T00:00:01Z", system_prompt="Describe images.",
            sha256=thread.request_sha256(user, upto=i, start=start, images=images),
            context_start=start, images=images))
    return thread


def encoded(image: Image) -> str:
    return base64.b64encode(image.data).decode()


@pytest.mark.parametrize("suffix", FORMATS)
def test_every_format_keeps_each_image_once_and_reads_it_back(tmp_path: Path,
                                                               suffix: str) -> None:
    thread = image_thread()
    path = save_threads([thread, Thread("plain", "", [])], tmp_path / f"t{suffix}")
    text = path.read_text()
    for image in (RED, BLUE, FIG):
        assert text.count(encoded(image)) == 1, (suffix, image.name)
    loaded = load_threads(path)["see"]
    assert [t.images for t in loaded.turns] == [t.images for t in thread.turns]
    assert loaded.turns[3].images[0].name == "again.png"  # the same bytes, its own name
    assert [(t.user, t.reply, t.sha256) for t in loaded.turns] == [
        (t.user, t.reply, t.sha256) for t in thread.turns]


def test_a_transcript_with_images_is_version_2_and_one_without_stays_1(tmp_path: Path) -> None:
    with_images = json.loads(save_threads([image_thread()], tmp_path / "a.json").read_text())
    plain = Thread("p", "", [Turn("q", "r")])
    without = json.loads(save_threads([plain], tmp_path / "b.json").read_text())
    assert (with_images["version"], without["version"]) == (2, 1)
    assert "images" not in without


def test_the_notebook_names_each_image_on_the_cell_line_and_shows_it_once(tmp_path: Path) -> None:
    path = save_threads([image_thread()], tmp_path / "t.ipynb")
    notebook = nbformat.read(path, as_version=4)
    lines = [c.source.split("\n")[0] for c in notebook.cells if c.source.startswith("%%chat")]
    assert lines == ["%%chat -t see --image red.png",
                     '%%chat -t see --image "plots/blue chart.png" --image fig',
                     "%%chat -t see", "%%chat -t see --image again.png"]
    outputs = [c.outputs[0] for c in notebook.cells if c.source.startswith("%%chat")]
    assert [o.data["text/html"].count("<img ") for o in outputs] == [1, 2, 0, 0]
    assert "(shown above)" in outputs[3].data["text/html"]
    assert outputs[0].data["text/plain"] == "reply 0"  # text/plain is the reply, only


def test_restore_takes_the_images_from_a_live_notebooks_outputs(tmp_path: Path) -> None:
    """A notebook as the kernel left it (no transcript marker) is read leniently."""
    path = save_threads([image_thread()], tmp_path / "t.ipynb")
    notebook = nbformat.read(path, as_version=4)
    del notebook.metadata["yagpt_magic"]
    for cell in notebook.cells:  # what the kernel shows: every turn its own thumbnails
        for output in cell.get("outputs", []):
            output.metadata["yagpt_magic"].pop("transcript")
    nbformat.write(notebook, path)
    restored = read_notebook(path, strict=False).threads["see"]
    assert [t.images for t in restored.turns] == [t.images for t in image_thread().turns]
    assert not any(t.stale for t in restored.turns)


def test_recording_writes_each_image_once_as_turns_commit(tmp_path: Path) -> None:
    session = ChatSession()
    source = image_thread("see")
    target = session.thread("see")
    target.system_prompt = source.system_prompt
    recorders = {s: Recorder(tmp_path / f"r{s}", session) for s in FORMATS}
    for index, turn in enumerate(source.turns):
        target.commit(turn)
        for recorder in recorders.values():
            recorder.append(target, index)
    for suffix, recorder in recorders.items():
        recorder.close()
        text = (tmp_path / f"r{suffix}").read_text()
        assert text.count(encoded(RED)) == 1 and text.count(encoded(FIG)) == 1, suffix
        loaded = load_threads(tmp_path / f"r{suffix}")["see"]
        assert [t.images for t in loaded.turns] == [t.images for t in source.turns], suffix
    header = json.loads((tmp_path / "r.jsonl").read_text().split("\n")[0])
    assert header["version"] == 2


def test_appending_to_a_recording_does_not_write_its_images_again(tmp_path: Path) -> None:
    session = ChatSession()
    source = image_thread("see")
    target = session.thread("see")
    target.system_prompt = source.system_prompt
    path = tmp_path / "r.jsonl"
    first = Recorder(path, session)
    target.commit(source.turns[0])
    first.append(target, 0)
    first.close()
    again = Recorder(path, ChatSession(), append=True)
    session.threads["see"].commit(source.turns[1])
    again.append(session.threads["see"], 1)
    again.close()
    assert path.read_text().count(encoded(RED)) == 1
    assert [len(t.images) for t in load_threads(path)["see"].turns] == [1, 2]


def edit(path: Path, change: Any) -> Path:
    path.write_text(change(path.read_text()))
    return path


@pytest.mark.parametrize("suffix", FORMATS)
def test_a_missing_image_is_a_clear_error(tmp_path: Path, suffix: str) -> None:
    path = save_threads([image_thread()], tmp_path / f"t{suffix}")
    if suffix == ".json":
        edit(path, lambda t: json.dumps({**json.loads(t), "images": {}}))
    elif suffix == ".jsonl":
        edit(path, lambda t: "\n".join(line for line in t.split("\n")
                                       if not line.startswith('{"image"')))
    elif suffix == ".md":
        edit(path, lambda t: t.split("## Images")[0])
    else:
        notebook = nbformat.read(path, as_version=4)
        for cell in notebook.cells:
            for output in cell.get("outputs", []):
                output.data["text/html"] = "<p>no pictures</p>"
        nbformat.write(notebook, path)
    with pytest.raises(TranscriptError) as err:
        load_threads(path)
    message = str(err.value)
    assert "\n" not in message and "missing from the file" in message and "red.png" in message
    assert "nothing was changed" in message


@pytest.mark.parametrize("suffix", (".json", ".jsonl", ".md"))
def test_a_changed_image_is_a_clear_error(tmp_path: Path, suffix: str) -> None:
    path = save_threads([image_thread()], tmp_path / f"t{suffix}")
    other = encoded(Image.from_bytes(png(6, 4, (255, 0, 1))))
    assert len(other) == len(encoded(RED))
    edit(path, lambda t: t.replace(encoded(RED), other))
    with pytest.raises(TranscriptError) as err:
        load_threads(path)
    assert "does not match its SHA-256 (edited or corrupted)" in str(err.value)
    edit(path, lambda t: t.replace(other, other[:40] + "!!!!" + other[44:]))
    with pytest.raises(TranscriptError) as err:
        load_threads(path)
    assert any(why in str(err.value) for why in ("corrupted", "edited", "not a readable image"))


def test_a_stored_image_that_is_not_an_image_is_refused(tmp_path: Path) -> None:
    path = save_threads([image_thread()], tmp_path / "t.json")
    data = json.loads(path.read_text())
    data["images"][RED.sha256]["data"] = base64.b64encode(b"<svg onload=alert(1)>").decode()
    path.write_text(json.dumps(data))
    with pytest.raises(TranscriptError) as err:
        load_threads(path)
    assert "is not a readable image" in str(err.value)
