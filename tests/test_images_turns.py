"""Images in a thread (SPEC 15): kept with their turn, sent again as context, counted by
fitting, refused for a model that does not read them, replayed without their file."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tests.imagefiles import png
from yagpt_magic.core.conversation import (
    Message,
    Thread,
    Turn,
    Usage,
    message_cost_bound,
    messages_sha256,
)
from yagpt_magic.core.fitting import fit_to_window
from yagpt_magic.core.images import IMAGE_TOKENS, Image
from yagpt_magic.emulator import Emulator
from yagpt_magic.transcript import save_threads

from .conftest import fails, magics_of

RED = Image.from_bytes(png(6, 4, (255, 0, 0)), "red.png")
BLUE = Image.from_bytes(png(3, 9, (0, 0, 255)), "blue.png")
GEMMA = "gpt://b1gtest/gemma-3-27b-it/latest"
#: What a recorded Gemma turn with one image reported (the recording's 276 prompt tokens).
RECORDED = Usage(276, 20, 0, 296)


def commit(thread: Thread, user: str, reply: str, images: tuple[Image, ...] = (),
           start: int = 0, usage: Usage = RECORDED) -> Turn:
    index = len(thread.turns)
    turn = Turn(user=user, reply=reply, model=GEMMA, usage=usage,
                sha256=thread.request_sha256(user, upto=index, start=start, images=images),
                context_start=start, images=images, started="2026-01-01T00:00:00Z",
                finished="2026-01-01T00:00:01Z",
                settings={"model_version": "", "temperature": None, "max_tokens": None,
                          "reasoning_mode": None})
    thread.commit(turn)
    return turn


def test_the_image_goes_with_its_message_and_again_as_context() -> None:
    thread = Thread("t")
    request = thread.request("What is this?", images=(RED,))
    assert request == [{"role": "user", "text": "What is this?", "images": (RED,)}]
    commit(thread, "What is this?", "A red square.", (RED,))
    later = thread.request("And its colour?")
    assert later[0]["images"] == (RED,) and "images" not in later[-1]
    assert [m["role"] for m in later] == ["user", "assistant", "user"]


def test_the_hash_covers_the_images_and_stays_as_it_was_without_them() -> None:
    plain = [{"role": "user", "text": "hi"}]
    as_before = hashlib.sha256(b'[["user","hi"]]').hexdigest()  # what older files hold
    assert messages_sha256(plain) == as_before
    assert messages_sha256([{"role": "user", "text": "hi", "images": ()}]) == as_before
    red = messages_sha256([{"role": "user", "text": "hi", "images": (RED,)}])
    blue = messages_sha256([{"role": "user", "text": "hi", "images": (BLUE,)}])
    assert len({messages_sha256(plain), red, blue}) == 3
    thread = Thread("t", "sys")
    commit(thread, "a", "b", (RED,))
    commit(thread, "c", "d", (BLUE, RED))
    for upto, images in ((2, ()), (2, (BLUE,))):
        assert thread.request_sha256("e", upto=upto, start=0, images=images) == messages_sha256(
            thread.request("e", upto=upto, start=0, images=images))


def test_fitting_counts_256_tokens_an_image() -> None:
    thread = Thread("t")  # no usage seen yet: only the counts below tell the sizes
    commit(thread, "first", "one", (RED, BLUE), usage=Usage())
    commit(thread, "second", "two", usage=Usage())
    assert thread.turns[0].bound == 2 * IMAGE_TOKENS + thread.turns[1].bound - len(
        "second") + len("first")

    def count(messages: Sequence[Message]) -> int:  # a tokenizer where bytes are tokens
        return 32 + sum(message_cost_bound(m) for m in messages)

    alone = count(thread.request("third", upto=2, start=2))
    both = count(thread.request("third", upto=2, start=0))
    assert both - alone > 2 * IMAGE_TOKENS
    assert fit_to_window(thread, "third", budget=both, count=count).start == 0
    assert fit_to_window(thread, "third", budget=both - 1, count=count).start == 1
    # The new message's images count too: with one, the same budget holds one turn less.
    fit = fit_to_window(thread, "third", budget=both, count=count, images=(RED,))
    assert fit.start == 1


def test_an_image_for_a_model_that_does_not_read_images_is_refused(
        shell: Any, emulator: Emulator, tmp_path: Path) -> None:
    (tmp_path / "red.png").write_bytes(RED.data)
    message = fails(shell, f"%%chat -m yandexgpt-lite --image {tmp_path}/red.png\nWhat is it?")
    assert message.startswith("yandexgpt-lite does not read images; nothing was sent.")
    assert "gemma-3-27b-it" in message
    assert emulator.completions == [] and not magics_of(shell).session.threads["default"].turns


def test_each_bad_image_is_one_line_and_nothing_is_sent(shell: Any, emulator: Emulator,
                                                        tmp_path: Path) -> None:
    (tmp_path / "notes.png").write_text("hello")
    shell.user_ns["numbers"] = [1, 2, 3]
    with open(tmp_path / "big.png", "wb") as big:
        big.truncate(4 * 2**20)
    cases = {
        f"{tmp_path}/nope.png": "No file",
        f"{tmp_path}/notes.png": "is not a PNG, JPEG or WebP image",
        f"{tmp_path}/big.png": "over the 3 MB an image may be",
        "numbers": "numbers is a list, not an image",
        str(tmp_path): "is a folder",
    }
    for spec, words in cases.items():
        message = fails(shell, f"%%chat -m gemma-3-27b-it --image {spec}\nWhat is it?")
        assert words in message and "nothing was sent" in message, message
    assert emulator.completions == []


def test_a_thread_holding_an_image_is_not_sent_to_a_model_without_sight(
        shell: Any, emulator: Emulator) -> None:
    session = magics_of(shell).session
    commit(session.thread("default"), "What is this?", "A red square.", (RED,))
    message = fails(shell, "%%chat -m yandexgpt\nAnd now in words?")
    assert "Turn 0 of thread 'default' sent an image" in message
    assert "new thread (-t NAME)" in message and emulator.completions == []


def test_replay_answers_the_turn_without_reading_the_image_again(
        shell: Any, emulator: Emulator, tmp_path: Path) -> None:
    """Recorded, then the file is gone: replay takes the recorded bytes by the same name."""
    path = tmp_path / "red.png"
    recorded = Thread("default", "")
    commit(recorded, "What is this?", "A red square.",
           (Image(RED.data, RED.mime, RED.sha256, 6, 4, str(path)),))
    save_threads([recorded], tmp_path / "t.json")
    shell.run_line_magic("chat", f"replay {tmp_path}/t.json")
    assert not path.exists()
    result = shell.run_cell(f"%%chat -m gemma-3-27b-it --image {path}\nWhat is this?")
    result.raise_error()
    turn = magics_of(shell).session.threads["default"].turns[0]
    assert turn.reply == "A red square." and turn.images[0].data == RED.data
    assert emulator.completions == []


def test_replay_with_another_image_says_the_images_differ(
        shell: Any, emulator: Emulator, tmp_path: Path) -> None:
    recorded = Thread("default", "")
    commit(recorded, "What is this?", "A red square.", (Image(
        RED.data, RED.mime, RED.sha256, 6, 4, "photo"),))
    save_threads([recorded], tmp_path / "t.json")
    shell.run_line_magic("chat", f"replay {tmp_path}/t.json")
    shell.user_ns["photo"] = BLUE.data  # a variable is the user's value: it is sent as it is
    message = fails(shell, "%%chat -m gemma-3-27b-it --image photo\nWhat is this?")
    assert message.startswith("Replay: turn 0 of 'default': the images of the user message "
                              "differ: recorded photo")
    assert emulator.completions == []


def test_image_flag_does_not_go_with_map(shell: Any) -> None:
    shell.user_ns["rows"] = ["a"]
    message = fails(shell, "%%chat --map rows --image x.png\n{text}")
    assert "--image" in message


def test_a_path_with_spaces_can_be_quoted(shell: Any, emulator: Emulator,
                                          tmp_path: Path) -> None:
    folder = tmp_path / "my pictures"
    folder.mkdir()
    message = fails(shell, f'%%chat -m gemma-3-27b-it --image "{folder}/a b.png"\nhi')
    assert f"No file '{folder}/a b.png'" in message
