"""A counting front end for widget traffic: every comm message the kernel would send.

ipywidgets opens each widget's comm through ``comm.create_comm``, which the ``comm``
package documents as the hook to replace. ``counting_comms()`` swaps in
``CountingComm``, which records each message (open, update, close) with the size of
its JSON content as Jupyter would send it, and puts the original hook back on exit.
It stands in for the browser, not for anything of ours, so tests and the benchmark
can measure how much a widget sends for one change.

    with counting_comms() as log:
        w = ChatWidget(session=magics.session)
        mark = log.mark()
        ...  # one new turn
        sent = log.since(mark)
        print(len(sent), sum(m.size for m in sent))
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import comm
from comm.base_comm import BaseComm, BuffersType, MaybeDict

__all__ = ["CommLog", "CommMessage", "CountingComm", "counting_comms"]


@dataclass(frozen=True)
class CommMessage:
    """One message a widget sent: its comm, kind, content and encoded size in bytes."""

    comm_id: str
    msg_type: str
    data: dict[str, Any]
    size: int

    @property
    def method(self) -> str:
        """``update`` / ``custom`` for comm_msg; the msg_type otherwise."""
        return str(self.data.get("method", self.msg_type))


@dataclass
class CommLog:
    """The messages sent so far, in order; safe to append to from any thread."""

    messages: list[CommMessage] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record(self, message: CommMessage) -> None:
        with self._lock:
            self.messages.append(message)

    def mark(self) -> int:
        """A position to measure from with ``since``."""
        with self._lock:
            return len(self.messages)

    def since(self, mark: int) -> list[CommMessage]:
        with self._lock:
            return list(self.messages[mark:])


def encoded_size(content: dict[str, Any], metadata: MaybeDict, buffers: BuffersType) -> int:
    """Bytes of the message content and metadata, packed as jupyter_client packs them."""
    packed = sum(
        len(json.dumps(part, ensure_ascii=False, default=str).encode("utf-8"))
        for part in (content, metadata or {})
    )
    return packed + sum(memoryview(b).nbytes for b in buffers or ())


class CountingComm(BaseComm):
    """A comm whose "front end" is a ``CommLog``."""

    def __init__(self, *args: Any, log: CommLog, **kwargs: Any) -> None:
        self.log = log  # set first: BaseComm.__init__ already publishes comm_open
        super().__init__(*args, **kwargs)

    def publish_msg(
        self,
        msg_type: str,
        data: MaybeDict = None,
        metadata: MaybeDict = None,
        buffers: BuffersType = None,
        **keys: Any,
    ) -> None:
        data = data or {}
        content = {"data": data, "comm_id": self.comm_id, **keys}
        self.log.record(
            CommMessage(self.comm_id, msg_type, data, encoded_size(content, metadata, buffers))
        )


@contextmanager
def counting_comms() -> Iterator[CommLog]:
    """Count every comm opened inside the block (widgets made before it are not seen)."""
    log = CommLog()
    original = comm.create_comm

    def create(*args: Any, **kwargs: Any) -> BaseComm:
        return CountingComm(*args, log=log, **kwargs)

    comm.create_comm = create
    try:
        yield log
    finally:
        comm.create_comm = original
