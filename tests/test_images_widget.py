"""The widget's attach button (SPEC 15), driven as a user would: pick a model, upload, send.

The Gemma turn is answered by ``%chat replay`` of a recorded turn, so it runs offline
through the same ``session.ask`` as any turn; the browser test drives the same widget.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from tests.imagefiles import png
from yagpt_magic.core.conversation import Thread
from yagpt_magic.core.images import Image
from yagpt_magic.transcript import save_threads
from yagpt_magic.widget.chat import ChatWidget

from .conftest import magics_of
from .test_images_turns import commit

RED = Image.from_bytes(png(6, 4, (255, 0, 0)), "red.png")


def upload(name: str, data: bytes) -> dict[str, Any]:
    """One file as ipywidgets' FileUpload hands it to the kernel."""
    return {"name": name, "type": "image/png", "size": len(data), "content": memoryview(data),
            "last_modified": datetime.now(timezone.utc)}


def test_the_attach_button_shows_only_for_a_model_that_reads_images(shell: Any) -> None:
    widget = ChatWidget(session=magics_of(shell).session)
    try:
        assert widget.attach_button.layout.display == "none"
        widget.model_box.value = "gemma-3-27b-it"
        assert widget.attach_button.layout.display is None
        widget.model_box.value = "yandexgpt-lite"
        assert widget.attach_button.layout.display == "none"
    finally:
        widget.close()


def test_an_attached_image_goes_with_the_next_message(shell: Any, tmp_path: Path) -> None:
    recorded = Thread("default", "")
    commit(recorded, "What is this?", "A red square.", (RED,))
    save_threads([recorded], tmp_path / "t.json")
    shell.run_line_magic("chat", f"replay {tmp_path}/t.json")
    session = magics_of(shell).session
    widget = ChatWidget(session=session)
    try:
        widget.model_box.value = "gemma-3-27b-it"
        widget.attach_button.value = (upload("notes.png", b"not an image"),)
        assert widget.status_line.value.startswith("error: notes.png is not a PNG")
        assert widget.attached == []
        widget.attach_button.value = (upload("red.png", RED.data),)
        assert widget.attached == [RED] and widget.attach_button.value == ()
        assert "red.png: PNG 6x4" in widget.attached_line.value
        widget.message_box.value = "What is this?"
        widget.send_button.click()
        assert widget.wait(30)
        assert widget.status_line.value == "idle", widget.status_line.value
        (turn,) = session.thread("default").turns
        assert turn.reply == "A red square." and turn.images == (RED,)
        assert widget.attached == [] and widget.attached_line.value == ""
        reply = widget._turns[0].reply.outputs[0]["data"]
        assert RED.data_url in reply["text/html"] and reply["text/plain"] == "A red square."
    finally:
        widget.close()


def test_an_image_for_a_model_without_sight_stays_attached(shell: Any, emulator: Any) -> None:
    widget = ChatWidget(session=magics_of(shell).session)
    try:
        widget.model_box.value = "gemma-3-27b-it"
        widget.attach_button.value = (upload("red.png", RED.data),)
        widget.model_box.value = "yandexgpt"
        widget.message_box.value = "What is this?"
        widget.send_button.click()
        assert widget.wait(30)
        assert widget.status_line.value.startswith("error: yandexgpt does not read images")
        assert widget.attached == [RED] and emulator.completions == []
        assert widget.message_box.value == "What is this?"
    finally:
        widget.close()
