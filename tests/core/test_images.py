"""core/images.py: each kind of input becomes the exact bytes sent; each bad one is one line."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import sys
from pathlib import Path

import pytest
import yaml

from tests.imagefiles import png
from yagpt_magic.core.errors import UsageProblem
from yagpt_magic.core.images import (
    IMAGE_TOKENS,
    MAX_IMAGE_BYTES,
    Image,
    image_from,
    image_type,
    images_tokens,
    message_content,
    read_image,
)

RECORDING = Path(__file__).parent.parent / "real_traffic/chat/test_multimodal.yaml"


def one_line(err: pytest.ExceptionInfo[BaseException]) -> str:
    text = str(err.value)
    assert "\n" not in text and "nothing was sent" in text
    return text


def test_png_bytes_become_an_image_with_its_hash_type_and_size() -> None:
    data = png(5, 7)
    image = Image.from_bytes(data, "dot")
    assert (image.mime, image.width, image.height, image.size) == ("image/png", 5, 7, len(data))
    assert image.sha256 == hashlib.sha256(data).hexdigest()
    assert image.data == data
    assert image.data_url == "data:image/png;base64," + base64.b64encode(data).decode()
    assert image.label.startswith("dot: PNG 5x7, 1 KB")


def test_the_recorded_image_goes_out_exactly_as_recorded() -> None:
    """The SDK's own multimodal recording: our part is byte for byte the part it sent."""
    body = json.loads(yaml.safe_load(RECORDING.read_text())["interactions"][0]["request"]["body"])
    text_part, image_part = body["messages"][0]["content"]
    url = image_part["image_url"]["url"]
    data = base64.b64decode(url.split(",", 1)[1])
    image = Image.from_bytes(data)
    assert (image.mime, image.width, image.height) == ("image/png", 100, 100)
    assert message_content(text_part["text"], [image]) == [text_part, image_part]


def test_text_alone_stays_a_string() -> None:
    assert message_content("hi") == "hi"


def test_the_format_comes_from_the_bytes_not_the_extension(tmp_path: Path) -> None:
    disguised = tmp_path / "photo.jpg"
    disguised.write_bytes(png())
    assert read_image(disguised).mime == "image/png"
    text = tmp_path / "notes.png"
    text.write_text("not an image at all")
    with pytest.raises(UsageProblem) as err:
        read_image(text)
    assert "notes.png" in one_line(err) and "not a PNG, JPEG or WebP image" in str(err.value)


def test_a_truncated_image_is_refused() -> None:
    with pytest.raises(UsageProblem) as err:
        Image.from_bytes(png()[:14], "cut.png")
    assert "cannot be read as one" in one_line(err)


@pytest.mark.parametrize("fmt, mime", [("JPEG", "image/jpeg"), ("WEBP", "image/webp")])
def test_jpeg_and_webp_are_read_with_their_size(fmt: str, mime: str) -> None:
    from PIL import Image as PILImage

    for options in ({}, {"lossless": True}) if fmt == "WEBP" else ({},):
        buffer = io.BytesIO()
        PILImage.new("RGB", (33, 21), (10, 200, 90)).save(buffer, format=fmt, **options)
        image = Image.from_bytes(buffer.getvalue())
        assert (image.mime, image.width, image.height) == (mime, 33, 21)
    buffer = io.BytesIO()  # with alpha and metadata: WebP's extended (VP8X) header
    PILImage.new("RGBA", (9, 14)).save(buffer, format=fmt if fmt == "WEBP" else "PNG",
                                        exif=b"Exif\x00\x00")
    image = Image.from_bytes(buffer.getvalue())
    assert (image.width, image.height) == (9, 14)


def test_a_pil_image_of_any_mode_is_sent_as_png() -> None:
    from PIL import Image as PILImage

    for mode in ("RGB", "RGBA", "L", "P", "CMYK"):
        picture = PILImage.new(mode, (12, 8))
        image = image_from(picture, "pic")
        assert (image.mime, image.width, image.height, image.name) == ("image/png", 12, 8, "pic")
        assert PILImage.open(io.BytesIO(image.data)).size == (12, 8)


def test_a_matplotlib_figure_or_its_axes_is_sent_as_png() -> None:
    from matplotlib.figure import Figure

    figure = Figure(figsize=(2, 1))
    axes = figure.add_subplot()
    axes.plot([1, 3, 2])
    image = image_from(figure, "fig")
    assert image.mime == "image/png" and image.width > 50 and image.height > 20
    assert image_from(axes, "ax").data == image.data  # the same figure, the same bytes


def test_an_ipython_image_is_taken_as_it_shows_itself() -> None:
    from IPython.display import Image as IPythonImage

    assert image_from(IPythonImage(data=png(), format="png")).data == png()


def test_pil_and_matplotlib_are_never_imported_for_other_values(tmp_path: Path) -> None:
    path = tmp_path / "a.png"
    path.write_bytes(png())
    code = (
        "import sys; from yagpt_magic.core.images import image_from;"
        f"image_from({str(path)!r}); image_from(open({str(path)!r}, 'rb').read());"
        "print(sorted(m for m in ('PIL', 'matplotlib') if m in sys.modules))"
    )
    out = os.popen(f"{sys.executable} -c {json.dumps(code)}").read()
    assert out.strip() == "[]"


def test_each_refusal_is_one_line(tmp_path: Path) -> None:
    cases = {
        "missing": (lambda: read_image(tmp_path / "nope.png"), "No file"),
        "folder": (lambda: read_image(tmp_path), "is a folder"),
        "unreadable": (lambda: read_image(tmp_path / "a.png" / "x"), "Cannot read"),
        "empty": (lambda: Image.from_bytes(b"", "blank"), "is empty"),
        "not an image": (lambda: image_from([1, 2, 3], "nums"), "is a list, not an image"),
    }
    (tmp_path / "a.png").write_bytes(png())
    for _, (call, words) in cases.items():
        with pytest.raises(UsageProblem) as err:
            call()
        assert words in one_line(err)


def test_an_oversized_file_is_refused_before_it_is_read(tmp_path: Path) -> None:
    big = tmp_path / "huge.png"
    with open(big, "wb") as file:  # sparse: its size says it all, nothing is read
        file.write(png())
        file.truncate(MAX_IMAGE_BYTES + 1)
    with pytest.raises(UsageProblem) as err:
        read_image(big)
    assert "huge.png is 3,145,729 bytes, over the 3 MB" in one_line(err)
    with pytest.raises(UsageProblem) as err:
        Image.from_bytes(png() + bytes(MAX_IMAGE_BYTES), "blob")
    assert "over the 3 MB" in one_line(err)
    Image.from_bytes(png() + bytes(MAX_IMAGE_BYTES - len(png())))  # exactly at the limit


def test_tokens_are_256_an_image() -> None:
    image = Image.from_bytes(png())
    assert IMAGE_TOKENS == 256 and images_tokens([image, image]) == 512


def test_image_type_reads_only_magic_bytes() -> None:
    assert image_type(b"GIF89a......") is None
    assert image_type(b"RIFF\0\0\0\0WAVE") is None


def test_a_thread_with_an_image_goes_through_the_sdk_to_the_http_api() -> None:
    """The message parts as the OpenAI-compatible backend sends them, through the
    unmodified SDK's ``chat`` domain to the emulator's HTTP API: the image is read,
    counted at 256 tokens, and sent again with the next turn as context."""
    from yandex_ai_studio_sdk import AIStudio
    from yandex_ai_studio_sdk.retry import RetryPolicy

    from yagpt_magic.core.conversation import Thread, Turn, message_images, message_text
    from yagpt_magic.emulator import Emulator
    from yagpt_magic.emulator.openai_http import ChatHTTPServer

    from ..conftest import TEST_API_KEY

    def api(messages: list[dict]) -> list[dict]:  # what the backend does with each message
        return [{"role": m["role"], "content": message_content(message_text(m),
                                                               message_images(m))}
                for m in messages]

    red = Image.from_bytes(png(8, 8, (255, 0, 0)), "red.png")
    emu = Emulator(api_key=TEST_API_KEY).start()
    http = ChatHTTPServer(emu.state).start()
    try:
        sdk = AIStudio(folder_id="b1gtest", auth=TEST_API_KEY, endpoint=emu.address,
                       verify=False, service_map={"http_completions": http.url},
                       retry_policy=RetryPolicy(max_attempts=1))
        model = sdk.chat.completions("gemma-3-27b-it")
        thread = Thread("t")
        first = model.run(api(thread.request("What is this?", images=(red,))))
        alone = model.run(api(thread.request("What is this?")))
        assert first.usage.prompt_tokens - alone.usage.prompt_tokens == IMAGE_TOKENS
        assert red.sha256[:8] in first.alternatives[0].text  # the emulator names what it read
        thread.commit(Turn("What is this?", first.alternatives[0].text, images=(red,)))
        again = model.run(api(thread.request("And its colour?")))
        assert again.usage.prompt_tokens > first.usage.prompt_tokens + 1  # sent as context
        assert red.sha256[:8] in again.alternatives[0].text
    finally:
        http.stop()
        emu.stop()
