"""File safety for transcripts: what may be read, how big, and writing without tearing.

Every complaint names the file (as the user typed it) and says nothing was changed;
a file is refused before it is parsed when it is missing, too big or not UTF-8.
"""

from __future__ import annotations

import json
import os
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from ..core.errors import TranscriptError

FORMAT = "yagpt-magic-transcript"
#: The version written for threads without images, which every reader since 0.1 reads.
VERSION = 1
#: The version written once a thread holds images (SPEC 15): older readers refuse it
#: with "upgrade yagpt-magic" rather than failing on a hash that includes the images.
IMAGES_VERSION = 2
#: Files larger than this are refused before they are read.
MAX_BYTES = 50 * 1024 * 1024
SUFFIXES = (".ipynb", ".md", ".json", ".jsonl")
#: The key of reply metadata and transcript markers.
KEY = "yagpt_magic"


@dataclass(frozen=True)
class Source:
    """The file being read, so every complaint names it."""

    path: Path

    def fail(self, problem: str) -> NoReturn:
        raise TranscriptError(f"{self.path}: {problem}; nothing was changed.")


def suffix_of(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise TranscriptError(
            f"{path}: unknown transcript type {suffix or '(no extension)'!r}; "
            "use .ipynb, .md, .json or .jsonl."
        )
    return suffix


def shown(value: Any, width: int = 24) -> str:
    """``repr(value)`` cut to ``width`` characters: a hostile file must not flood the message."""
    text = repr(value)
    return text if len(text) <= width else text[: width - 1] + "…"


def read_text(path: Path) -> str:
    """The file's text, refusing before parsing: missing, not a regular file, huge, not UTF-8.

    A device or FIFO (``/dev/zero``, a pipe, a symlink to one) is refused by its type
    before it is opened, and at most ``MAX_BYTES`` are ever read.
    """
    src = Source(path)
    suffix_of(path)
    try:
        info = path.stat()
    except FileNotFoundError:
        src.fail("no such file")
    except OSError as err:
        src.fail(f"cannot read it ({err.strerror})")
    if not stat.S_ISREG(info.st_mode):
        kind = "a directory" if stat.S_ISDIR(info.st_mode) else "a device, pipe or socket"
        src.fail(f"not a regular file ({kind})")
    if info.st_size > MAX_BYTES:
        src.fail(f"{info.st_size / 2**20:.0f} MB is over the {MAX_BYTES // 2**20} MB "
                 "transcript limit")
    try:
        with open(path, "rb") as file:
            data = file.read(MAX_BYTES + 1)
    except OSError as err:
        src.fail(f"cannot read it ({err.strerror})")
    if len(data) > MAX_BYTES:
        src.fail(f"it is over the {MAX_BYTES // 2**20} MB transcript limit")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        src.fail(f"not UTF-8 text (bad byte at offset {err.start}); is it a transcript?")


def parse_json(src: Source, text: str, where: str = "") -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        cut = err.pos >= len(text.rstrip()) or err.msg.startswith("Unterminated string")
        end = " (the file looks truncated)" if cut else ""
        src.fail(f"malformed JSON{where} at line {err.lineno} column {err.colno}: {err.msg}{end}")
    except ValueError:  # Python refuses integers of more than 4,300 digits
        src.fail(f"JSON{where} holds a number too long to read")
    except RecursionError:
        src.fail(f"JSON{where} nested too deeply")


def check_header(src: Source, data: Any, what: str) -> None:
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        src.fail(f"not a yagpt-magic transcript ({what} has no \"format\": \"{FORMAT}\")")
    version = data.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        src.fail(f"bad transcript version {shown(version)}")
    if version > IMAGES_VERSION:
        src.fail(
            f"transcript version {shown(version)} is newer than this yagpt-magic reads "
            f"({IMAGES_VERSION}); upgrade yagpt-magic"
        )


def check_count(src: Source, header: dict[str, Any], key: str, found: int, what: str) -> None:
    """A header's count of what follows it, if it has one, against what the file holds.

    ``.md`` and ``.jsonl`` are read line by line, so a file cut between two turns reads
    as a shorter thread; since issue 25 their header counts what follows (``turns``,
    ``lines``), and a file whose count does not match is refused. Files written before
    have no count and load as before: adding a key keeps every reader, old and new.
    """
    if key not in header:
        return
    count = header[key]
    if count != found or not isinstance(count, int) or isinstance(count, bool):
        src.fail(f"its header counts {shown(count)} {what} but the file holds {found} (the "
                 "file looks truncated or edited)")


def version_for(threads: Any) -> int:
    """The version a transcript of ``threads`` is written as: 2 once any turn has images."""
    return IMAGES_VERSION if any(t.images for th in threads for t in th.turns) else VERSION


def is_transcript(path: Path) -> bool:
    """Whether ``path`` is a file yagpt-magic wrote (so saving over it loses nothing else)."""
    try:
        if path.stat().st_size > MAX_BYTES:
            return False
        with open(path, encoding="utf-8", errors="replace") as file:
            head = file.read(4096)
    except OSError:
        return False
    if path.suffix.lower() == ".md":
        return head.startswith("<!-- yagpt-magic-transcript ")
    if path.suffix.lower() == ".ipynb":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return False
        return ((data.get("metadata") or {}).get(KEY) or {}).get("format") == FORMAT
    return f'"format": "{FORMAT}"' in head or f'"format":"{FORMAT}"' in head


def _mode_for(path: Path) -> int:
    """The old file's permissions, or what a plain ``open`` would give (mkstemp's are 0600)."""
    try:
        return path.stat().st_mode & 0o777
    except OSError:
        umask = os.umask(0o022)
        os.umask(umask)
        return 0o666 & ~umask


def write_atomically(path: Path, text: str) -> None:
    """Write to a temporary file beside ``path`` and rename it, so a crash leaves the old file."""
    directory = path.parent if str(path.parent) else Path(".")
    handle, temp = tempfile.mkstemp(prefix=f".{path.name}.", dir=directory)
    try:
        os.chmod(temp, _mode_for(path))
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as file:
            file.write(text)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
