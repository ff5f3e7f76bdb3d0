"""Finished rows of ``%%chat --map`` on disk, so a re-run never pays for a row twice.

One small JSON file per answered request, named by the SHA-256 of everything that
decides the answer (model, version, temperature, max_tokens, reasoning mode and the
messages). A file is written to a temporary name in the same directory and then
renamed over its final name (``os.replace`` is atomic on POSIX and Windows), so a
kernel killed mid-write leaves either the whole row or nothing, never a torn file a
later run would trust. No fsync: the promise is against a crashed or restarted
kernel, not a power cut, and 2,000 fsyncs would cost more than the requests.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ..core.backend import Reply, RequestOptions
from ..core.conversation import Message, Usage

#: Bumped when a stored row's shape changes: old files are then simply not found.
_FORMAT = 1


def default_dir() -> Path:
    """``$XDG_CACHE_HOME/yagpt-magic/rows``, else ``~/.cache/yagpt-magic/rows``."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "yagpt-magic" / "rows"


def request_key(messages: Sequence[Message], options: RequestOptions) -> str:
    """SHA-256 of the model, the settings that change an answer, and the messages."""
    payload = {
        "format": _FORMAT,
        "model": options.model,
        "model_version": options.model_version,
        "temperature": options.temperature,
        "max_tokens": options.max_tokens,
        "reasoning_mode": options.reasoning_mode,
        "response_format": options.response_format,
        "messages": [[m["role"], m["text"]] for m in messages],
    }
    text = json.dumps(payload, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class RowCache:
    """Replies by request key, one file each under ``directory``."""

    def __init__(self, directory: str | os.PathLike[str] | None = None) -> None:
        self.directory = Path(directory).expanduser() if directory else default_dir()

    def _path(self, key: str) -> Path:
        return self.directory / key[:2] / f"{key}.json"

    def get(self, key: str) -> Reply | None:
        """The stored reply, or None (also for an unreadable file: the row is sent again)."""
        try:
            data = json.loads(self._path(key).read_text(encoding="utf-8"))
            return Reply(
                text=data["text"], status=data["status"], usage=Usage(**data["usage"]),
                model_uri=data["model_uri"], model_version=data["model_version"],
            )
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def put(self, key: str, reply: Reply) -> None:
        """Store a reply atomically: readers see the whole file or none."""
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        data: dict[str, Any] = asdict(reply)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".json", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump(data, out, ensure_ascii=False)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def __len__(self) -> int:
        return sum(1 for _ in self.directory.glob("??/*.json")) if self.directory.exists() else 0
