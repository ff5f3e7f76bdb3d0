"""The thumbnail a turn shows of the images it sent (SPEC 15): small, sanitized, exactly
an ``<img>`` with the image's own data URL; the reply's text/plain stays the reply."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

from tests.imagefiles import png
from yagpt_magic.core.conversation import Thread
from yagpt_magic.core.images import Image
from yagpt_magic.core.session import ChatSession
from yagpt_magic.display.render import THUMBNAIL, reply_html, thumbnails_html
from yagpt_magic.display.reply import ReplyView
from yagpt_magic.transcript import save_threads
from yagpt_magic.transcript.modes import start_replay

from .test_images_turns import commit

HOSTILE = '"><script>alert(1)</script><img src=x onerror=alert(2)> javascript:alert(3)'


class Tags(HTMLParser):
    """Every tag and attribute the browser would see."""

    def __init__(self, page: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.feed(page)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def test_a_thumbnail_is_an_img_of_the_image_and_nothing_more() -> None:
    wide = Image.from_bytes(png(640, 160), HOSTILE)
    tags = Tags(thumbnails_html([wide])).tags
    assert [t for t, _ in tags] == ["div", "img"]
    attrs = tags[1][1]
    assert set(attrs) == {"src", "alt", "title", "width", "height"}
    assert attrs["src"] == wide.data_url
    assert (attrs["width"], attrs["height"]) == (str(THUMBNAIL), "40")
    assert attrs["alt"] == HOSTILE  # text in an attribute, escaped: never markup


def test_a_forged_image_loses_its_address() -> None:
    """Only a base64 PNG, JPEG or WebP data URL survives the thumbnail's cleaner."""
    for mime in ("text/html", "image/svg+xml", "image/png;charset=x"):
        forged = Image(b"<svg onload=alert(1)>", mime, "0" * 64, 10, 10, "forged")
        tags = Tags(thumbnails_html([forged])).tags
        assert all("src" not in attrs for _, attrs in tags), mime


def test_a_reply_can_never_show_a_data_image() -> None:
    url = Image.from_bytes(png()).data_url
    for allow_html in (False, True):
        for text in (f"![x]({url})", f'<img src="{url}">', f"<p><img src='{url}'></p>"):
            assert "<img" not in reply_html(text, allow_html=allow_html), (text, allow_html)


def test_the_finished_turn_shows_its_images_above_the_exact_reply(tmp_path: Path) -> None:
    red = Image.from_bytes(png(6, 4), str(tmp_path / "red.png"))
    recorded = Thread("default", "")
    commit(recorded, "What is this?", "A *red* square.", (red,))
    save_threads([recorded], tmp_path / "t.json")
    session = ChatSession()
    start_replay(session, session.backends, tmp_path / "t.json")
    answer = session.ask("default", "What is this?",
                         options=session.options(model="gemma-3-27b-it"), images=[red.name])
    view = ReplyView(text="A *red", images=())
    streaming, _ = view._repr_mimebundle_()
    assert "<img" not in streaming["text/html"]  # a stream does not carry the bytes each time
    view.finish(answer)
    data, metadata = view._repr_mimebundle_()
    assert data["text/plain"] == "A *red* square."
    assert data["text/html"].index(red.data_url) < data["text/html"].index("<em>red</em>")
    assert metadata["yagpt_magic"]["images"] == [{"sha256": red.sha256, "name": red.name}]
