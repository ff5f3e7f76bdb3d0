"""What the emulator's services share: settings, recordings, queued faults and replies,
quotas and the operation store, behind one lock.

Every servicer is handed the one :class:`ServiceState` of its emulator; the
:class:`~.server.Emulator` exposes its settings and counters as its own attributes.
Nothing here knows gRPC beyond a status code.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import grpc
from yandex.cloud.operation import operation_pb2

from .answers import Script
from .quota import TokenBucket
from .rpc import timestamp_now

__all__ = [
    "DEFAULT_CONTEXT_WINDOW",
    "DEFAULT_PENDING_POLLS",
    "COMPLETION_METHODS",
    "Fault",
    "RecordedRequest",
    "ServiceState",
]

#: Input tokens a request may hold; more is INVALID_ARGUMENT, as the real service does.
DEFAULT_CONTEXT_WINDOW = 32768

#: OperationService/Get calls that still see a deferred completion running: the recording
#: (test_run_deferred) has one not-done poll before the done one.
DEFAULT_PENDING_POLLS = 1

#: RecordedRequest methods that are a generation (what ``Emulator.completions`` lists).
COMPLETION_METHODS = ("Completion", "AsyncCompletion")


@dataclass
class RecordedRequest:
    """One call the emulator received, as a test wants to assert on it."""

    method: str
    model_uri: str = ""
    messages: list[tuple[str, str]] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass
class Fault:
    """A status queued for the next ``times`` calls of ``method`` (see Emulator.fail)."""

    code: grpc.StatusCode
    details: str
    after_chunks: int
    method: str
    times: int
    prefixed: bool = False


class ServiceState:
    """The mutable state of one emulator, shared by its servicers; thread-safe."""

    def __init__(self, *, api_key: str | None = None, iam_token: str | None = None) -> None:
        self.api_key = api_key
        self.iam_token = iam_token
        self.address = ""
        self.delay: float = 0.0
        self.chunk_delay: float = 0.0
        self.context_window: int = DEFAULT_CONTEXT_WINDOW
        self.pending_polls: int = DEFAULT_PENDING_POLLS
        self.quota_rps: float | None = None
        self.requests: list[RecordedRequest] = []
        self.cancelled: int = 0
        self.rejected: int = 0
        self.lock = threading.Lock()
        self._faults: list[Fault] = []
        self._scripts: list[Script] = []
        self._buckets: dict[str, TokenBucket] = {}
        # What OperationService/Get returns, by id: the one operation store. A deferred
        # completion waits in _pending (Gets left, finished operation) until it is due.
        self._operations: dict[str, operation_pb2.Operation] = {}
        self._pending: dict[str, tuple[int, operation_pb2.Operation]] = {}
        self._op_counter = 0

    # -- recordings ----------------------------------------------------------------

    def record(self, request: RecordedRequest) -> None:
        with self.lock:
            self.requests.append(request)

    def recorded(self, *methods: str) -> list[RecordedRequest]:
        """A snapshot of the recorded calls of these methods."""
        with self.lock:
            return [r for r in self.requests if r.method in methods]

    def count_cancelled(self) -> None:
        with self.lock:
            self.cancelled += 1

    def count_rejected(self) -> None:
        with self.lock:
            self.rejected += 1

    # -- what tests queue ----------------------------------------------------------

    def queue_fault(self, fault: Fault) -> None:
        with self.lock:
            self._faults.append(fault)

    def take_fault(self, method: str) -> Fault | None:
        """The first queued fault for ``method`` (or "*"), spending one of its times."""
        with self.lock:
            for fault in self._faults:
                if fault.method in (method, "*"):
                    fault.times -= 1
                    if fault.times <= 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def queue_script(self, script: Script) -> None:
        with self.lock:
            self._scripts.append(script)

    def take_script(self) -> Script | None:
        """The next scripted reply, if any, spending one of its times."""
        with self.lock:
            if not self._scripts:
                return None
            script = self._scripts[0]
            script.times -= 1
            if script.times <= 0:
                self._scripts.pop(0)
            return script

    # -- the folder's rate quota -----------------------------------------------------

    def spend_quota(self, folder: str) -> bool:
        """Take one request from the folder's bucket; False (and counted) when it is empty."""
        rps = self.quota_rps
        if rps is None:
            return True
        with self.lock:
            bucket = self._buckets.get(folder)
            if bucket is None or bucket.rate != rps:
                bucket = self._buckets[folder] = TokenBucket(rps)
            if bucket.take():
                return True
            self.rejected += 1
            return False

    # -- the operation store ---------------------------------------------------------

    def next_operation_id(self) -> str:
        with self.lock:
            self._op_counter += 1
            return f"emu-op-{self._op_counter}"

    def store_operation(self, operation: operation_pb2.Operation) -> None:
        """Put (or replace) an operation where ``OperationService/Get`` finds it."""
        with self.lock:
            self._operations[operation.id] = operation

    def add_deferred(
        self, created: operation_pb2.Operation, finished: operation_pb2.Operation
    ) -> None:
        """Store a deferred result: Get shows ``created`` ``pending_polls`` times, then it."""
        with self.lock:
            if self.pending_polls > 0:
                self._operations[created.id] = created
                self._pending[created.id] = (self.pending_polls, finished)
            else:
                self._operations[created.id] = finished

    def poll_operation(self, op_id: str) -> operation_pb2.Operation | None:
        """What one OperationService/Get sees; a pending operation moves one poll closer."""
        with self.lock:
            current = self._operations.get(op_id)
            pending = self._pending.get(op_id)
            if pending is None:
                return current
            left, finished = pending
            if left > 1:
                self._pending[op_id] = (left - 1, finished)
            else:
                del self._pending[op_id]
                finished.modified_at.CopyFrom(timestamp_now())
                self._operations[op_id] = finished
            return current

    # -- reset -----------------------------------------------------------------------

    def reset(self) -> None:
        """Forget recordings, queued faults and replies, delays and the quota."""
        with self.lock:
            self.requests.clear()
            self._faults.clear()
            self._scripts.clear()
            self._buckets.clear()
            self.cancelled = 0
            self.rejected = 0
            self.delay = 0.0
            self.chunk_delay = 0.0
            self.quota_rps = None
