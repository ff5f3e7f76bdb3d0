"""Images a turn sends to a model that reads them (SPEC 15): plain data, no IPython.

An ``Image`` is the exact bytes that go out, with what they are (PNG, JPEG or WebP,
recognised by their first bytes, never by a file's extension), their SHA-256 (the key
transcripts keep each image under once), their size and their pixel dimensions. It is
made from a file path, image bytes, a PIL image or a matplotlib figure; PIL and
matplotlib stay optional: a value is recognised by what it can do, and neither library
is imported unless the value already is one of theirs.

Limits, and where they come from:

- ``IMAGE_TOKENS``: 256 tokens an image. Gemma 3 encodes every image (resized to
  896x896) into 256 soft tokens, as the model's documentation says; the one recorded
  image request (a 100x100 PNG with an 8-word question) reported 276 prompt tokens.
  Fitting counts each image of a message at this cost.
- ``MAX_IMAGE_BYTES``: 3 MiB an image. AI Studio documents no size limit for images on
  its OpenAI-compatible API. Its other API refuses any message over 4 MiB (gRPC's
  limit, the one ``session.MAX_REQUEST_BYTES`` keeps under), and an image goes out as
  base64, which is 4/3 of its size: 3 MiB of image is 4 MiB of data URL, the most we
  can say the service takes without testing it. Gemma 3 sees 896x896 pixels at most,
  which a PNG holds in well under 3 MiB, so nothing the model can see is refused.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .errors import UsageProblem

#: Tokens one image costs in a request (see the module docstring).
IMAGE_TOKENS = 256
#: The largest image sent, in bytes (see the module docstring).
MAX_IMAGE_BYTES = 3 * 1024 * 1024
#: What the service reads, by MIME type, and the name a person knows it by.
FORMATS = {"image/png": "PNG", "image/jpeg": "JPEG", "image/webp": "WebP"}
#: What ``image_from`` takes, for the one-line refusals.
KINDS = "a path to a PNG, JPEG or WebP file, image bytes, a PIL image or a matplotlib figure"

_PNG = b"\x89PNG\r\n\x1a\n"
_JPEG = b"\xff\xd8\xff"
#: Modes PIL writes as PNG as they are; any other (CMYK, YCbCr, F...) is converted first.
_PNG_MODES = {"1", "L", "LA", "I", "I;16", "P", "RGB", "RGBA"}


@dataclass(frozen=True)
class Image:
    """One image as sent: its bytes, type, SHA-256, pixel size, and what the user called it.

    Build it with ``Image.from_bytes`` (or ``image_from``/``read_image``), which checks
    that the bytes are an image the service reads: the fields then always agree.
    """

    data: bytes = field(repr=False)
    mime: str
    sha256: str
    width: int
    height: int
    #: A file's path or a variable's name, as the user gave it (for the thumbnail's title).
    name: str = ""

    @classmethod
    def from_bytes(cls, data: bytes, name: str = "") -> Image:
        """The image these bytes are, or a one-line ``UsageProblem`` saying why not."""
        what = name or "the image"
        if not data:
            raise UsageProblem(f"{what} is empty; nothing was sent.")
        if len(data) > MAX_IMAGE_BYTES:
            raise too_big(what, len(data))
        mime = image_type(data)
        if mime is None:
            raise UsageProblem(
                f"{what} is not a PNG, JPEG or WebP image (it starts with {bytes(data[:8])!r}); "
                "nothing was sent."
            )
        size = dimensions(data, mime)
        if size is None:
            raise UsageProblem(
                f"{what} starts like a {FORMATS[mime]} image but cannot be read as one "
                "(truncated or corrupt); nothing was sent."
            )
        data = bytes(data)
        return cls(data, mime, hashlib.sha256(data).hexdigest(), size[0], size[1], name)

    @property
    def size(self) -> int:
        """Its length in bytes."""
        return len(self.data)

    @property
    def data_url(self) -> str:
        """``data:image/png;base64,...``: how the OpenAI-compatible API takes an image."""
        return f"data:{self.mime};base64,{base64.b64encode(self.data).decode('ascii')}"

    @property
    def label(self) -> str:
        """One line a person reads: name, format, pixels and size."""
        name = f"{self.name}: " if self.name else ""
        return (f"{name}{FORMATS.get(self.mime, self.mime)} {self.width}x{self.height}, "
                f"{megabytes(self.size) if self.size >= 2**20 else kilobytes(self.size)}")


def too_big(what: str, size: int) -> UsageProblem:
    return UsageProblem(
        f"{what} is {size:,} bytes, over the {megabytes(MAX_IMAGE_BYTES)} an image may be; "
        "nothing was sent. Save it smaller (fewer pixels, or as JPEG): the model sees "
        "896x896 pixels at most."
    )


def megabytes(size: int) -> str:
    return f"{size / 2**20:.1f} MB".replace(".0 MB", " MB")


def kilobytes(size: int) -> str:
    return f"{max(1, round(size / 1024))} KB"


def image_type(data: bytes) -> str | None:
    """The MIME type the first bytes say (PNG, JPEG or WebP), or None."""
    head = bytes(data[:12])
    if head.startswith(_PNG):
        return "image/png"
    if head.startswith(_JPEG):
        return "image/jpeg"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    return None


def dimensions(data: bytes, mime: str) -> tuple[int, int] | None:
    """(width, height) from the image's header, or None if the header is not whole.

    Reading the header is what tells a real image from bytes that only start like one.
    """
    reader = {"image/png": _png_size, "image/jpeg": _jpeg_size, "image/webp": _webp_size}[mime]
    try:
        size = reader(memoryview(data))
    except (struct.error, IndexError):
        return None
    return size if size is not None and size[0] > 0 and size[1] > 0 else None


def _png_size(data: memoryview) -> tuple[int, int] | None:
    if bytes(data[12:16]) != b"IHDR":
        return None
    width, height = struct.unpack(">II", data[16:24])
    return width, height


#: JPEG start-of-frame markers (the ones that carry the frame's size).
_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def _jpeg_size(data: memoryview) -> tuple[int, int] | None:
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in (0x01, *range(0xD0, 0xD8)):  # markers with no length
            pos += 2
            continue
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        if marker in _SOF:
            height, width = struct.unpack(">HH", data[pos + 5 : pos + 9])
            return width, height
        if marker == 0xD9 or length < 2:  # end of image before any frame
            return None
        pos += 2 + length
    return None


def _webp_size(data: memoryview) -> tuple[int, int] | None:
    chunk = bytes(data[12:16])
    if chunk == b"VP8X":
        width = int.from_bytes(data[24:27], "little") + 1
        height = int.from_bytes(data[27:30], "little") + 1
        return (width, height) if len(data) >= 30 else None
    if chunk == b"VP8L":
        if data[20] != 0x2F:
            return None
        (bits,) = struct.unpack("<I", data[21:25])
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8 ":
        if bytes(data[23:26]) != b"\x9d\x01\x2a":
            return None
        width, height = struct.unpack("<HH", data[26:30])
        return width & 0x3FFF, height & 0x3FFF
    return None


def read_image(path: str | os.PathLike[str], name: str = "") -> Image:
    """The image in a file, read once; a missing, unreadable or oversized file is one line.

    The size is checked before reading, so a huge file is refused without loading it.
    """
    shown = name or os.fspath(path)
    full = os.path.expanduser(os.fspath(path))
    try:
        with open(full, "rb") as file:
            size = os.fstat(file.fileno()).st_size
            if size > MAX_IMAGE_BYTES:
                raise too_big(shown, size)
            data = file.read(MAX_IMAGE_BYTES + 1)
    except FileNotFoundError:
        raise UsageProblem(f"No file {shown!r}; nothing was sent. Give {KINDS}.") from None
    except IsADirectoryError:
        raise UsageProblem(f"{shown!r} is a folder, not an image file; nothing was sent.") from None
    except OSError as err:
        reason = err.strerror or type(err).__name__
        raise UsageProblem(f"Cannot read {shown!r} ({reason}); nothing was sent.") from None
    return Image.from_bytes(data, shown)


@dataclass(frozen=True)
class Named:
    """A value the user named (``--image fig``), made into an ``Image`` only when sent."""

    name: str
    value: Any


def image_from(value: Any, name: str = "") -> Image:
    """An ``Image`` from a path, image bytes, a PIL image or a matplotlib figure (or axes).

    Duck-typed: a figure is what has ``savefig`` (or a ``.figure`` that has it), a PIL
    image what has ``save``, ``mode`` and ``convert``; anything else that shows itself
    as PNG or JPEG in IPython (``_repr_png_``, e.g. ``IPython.display.Image``) is taken
    as it shows itself.
    """
    if isinstance(value, Named):
        return image_from(value.value, value.name)
    if isinstance(value, Image):
        return value if not name or value.name else _renamed(value, name)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return Image.from_bytes(bytes(value), name or "the image bytes")
    if isinstance(value, (str, os.PathLike)):
        return read_image(value, name)
    what = name or f"the {type(value).__name__}"
    figure = _figure(value)
    if figure is not None:
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", bbox_inches="tight", metadata={"Software": None})
        return Image.from_bytes(buffer.getvalue(), what)
    if all(hasattr(value, a) for a in ("save", "mode", "convert")):
        picture = value if value.mode in _PNG_MODES else value.convert("RGBA")
        buffer = io.BytesIO()
        picture.save(buffer, format="PNG")
        return Image.from_bytes(buffer.getvalue(), what)
    for method in ("_repr_png_", "_repr_jpeg_"):
        shown = getattr(value, method, None)
        data = shown() if callable(shown) else None
        if isinstance(data, tuple):  # (data, metadata), as IPython allows
            data = data[0]
        if isinstance(data, str):  # IPython 9 hands out base64 text
            data = _unbase64(data)
        if isinstance(data, (bytes, bytearray)):
            return Image.from_bytes(bytes(data), what)
    raise UsageProblem(
        f"{what} is a {type(value).__name__}, not an image; nothing was sent. Give {KINDS}."
    )


def _unbase64(text: str) -> bytes | None:
    try:
        return base64.b64decode(text, validate=True)
    except ValueError:
        return None


def _figure(value: Any) -> Any:
    if callable(getattr(value, "savefig", None)):
        return value
    owner = getattr(value, "figure", None)
    return owner if callable(getattr(owner, "savefig", None)) else None


def _renamed(image: Image, name: str) -> Image:
    return Image(image.data, image.mime, image.sha256, image.width, image.height, name)


def image_part(image: Image) -> dict[str, Any]:
    """The image as one content part of a chat message (as the recordings show it)."""
    return {"type": "image_url", "image_url": {"url": image.data_url}}


def message_content(text: str, images: Sequence[Image] = ()) -> str | list[dict[str, Any]]:
    """A user message's ``content`` for the OpenAI-compatible API.

    Text alone stays a string (what every text-only recording sends); with images it is
    a list of parts, the text first, then each image as a data URL.
    """
    if not images:
        return text
    return [{"type": "text", "text": text}, *(image_part(image) for image in images)]


def images_tokens(images: Iterable[Image]) -> int:
    """What the images of a message add to its token count."""
    return IMAGE_TOKENS * sum(1 for _ in images)
