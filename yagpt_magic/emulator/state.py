"""What the emulator's services share: settings, recordings, queued faults and replies,
limits and quotas, the service-time clock and the operation store, behind one lock.

Every servicer is handed the one :class:`ServiceState` of its emulator; the
:class:`~.server.Emulator` exposes its settings and counters as its own attributes.
Nothing here knows gRPC beyond a status code.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

import grpc
from yandex.cloud.operation import operation_pb2

from .answers import Script
from .limits import Limiter, Limits
from .rpc import timestamp_now
from .service_time import Pace, ServiceClock, ServiceTime

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


@dataclass
class _Deferred:
    """A deferred completion until it is done: Gets left, when it is ready, its result."""

    polls_left: int
    ready_at: float
    finished: operation_pb2.Operation


class ServiceState:
    """The mutable state of one emulator, shared by its servicers; thread-safe."""

    def __init__(
        self,
        *,
        api_key: str | None = None,
        iam_token: str | None = None,
        limits: Limits | None = None,
        service_time: ServiceTime | None = None,
    ) -> None:
        self.api_key = api_key
        self.iam_token = iam_token
        self.address = ""
        self.delay: float = 0.0
        self.chunk_delay: float = 0.0
        self.context_window: int = DEFAULT_CONTEXT_WINDOW
        self.pending_polls: int = DEFAULT_PENDING_POLLS
        self.quota_rps: float | None = None
        self.limits = limits if limits is not None else Limits()
        self.limiter = Limiter()
        self._clock: ServiceClock | None = None
        self.service_time = service_time
        self.requests: list[RecordedRequest] = []
        self.cancelled: int = 0
        self.lock = threading.Lock()
        self._faults: list[Fault] = []
        self._scripts: list[Script] = []
        # What OperationService/Get returns, by id: the one operation store. A deferred
        # completion waits in _pending until it is due; _deferred_folders says whose it is.
        self._operations: dict[str, operation_pb2.Operation] = {}
        self._pending: dict[str, _Deferred] = {}
        self._deferred_folders: dict[str, str] = {}
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

    @property
    def rejected(self) -> int:
        """Requests any limit or quota refused."""
        return sum(self.limiter.refusals.values())

    # -- service time ----------------------------------------------------------------

    @property
    def service_time(self) -> ServiceTime | None:
        return self._clock.model if self._clock is not None else None

    @service_time.setter
    def service_time(self, model: ServiceTime | None) -> None:
        """Setting a model (again) restarts its seeded draws."""
        self._clock = ServiceClock(model) if model is not None else None

    def draw_pace(self) -> Pace | None:
        """This request's generation pace, or None when the service-time model is off."""
        clock = self._clock
        return clock.draw() if clock is not None else None

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
        return rps is None or self.limiter.take("quota_rps", folder, rps)

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
        self,
        created: operation_pb2.Operation,
        finished: operation_pb2.Operation,
        *,
        folder: str,
        seconds: float = 0.0,
    ) -> None:
        """Store a deferred completion of ``folder``'s: Get shows ``created`` for
        ``pending_polls`` polls and until ``seconds`` (its generation time) have passed.
        """
        ready_at = time.monotonic() + seconds
        with self.lock:
            self._deferred_folders[created.id] = folder
            if self.pending_polls > 0 or seconds > 0:  # Get shows it running first
                self._operations[created.id] = created
                self._pending[created.id] = _Deferred(self.pending_polls, ready_at, finished)
            else:
                self._operations[created.id] = finished

    def deferred_folder(self, op_id: str) -> str | None:
        """The folder of a deferred completion's operation; None for any other operation."""
        with self.lock:
            return self._deferred_folders.get(op_id)

    def poll_operation(self, op_id: str) -> operation_pb2.Operation | None:
        """What one OperationService/Get sees: a deferred completion shows as running for
        its ``pending_polls`` polls and until its generation time has passed, then done.
        """
        with self.lock:
            current = self._operations.get(op_id)
            pending = self._pending.get(op_id)
            if pending is None:
                return current
            if pending.polls_left > 0:
                pending.polls_left -= 1
                return current
            if time.monotonic() < pending.ready_at:
                return current
            del self._pending[op_id]
            pending.finished.modified_at.CopyFrom(timestamp_now())
            self._operations[op_id] = pending.finished
            return pending.finished

    # -- reset -----------------------------------------------------------------------

    def reset(self) -> None:
        """Forget recordings, queued faults and replies, delays, the quota and refusals.

        The documented limits and the service-time model stay as they are.
        """
        self.limiter.reset()
        with self.lock:
            self.requests.clear()
            self._faults.clear()
            self._scripts.clear()
            self.cancelled = 0
            self.delay = 0.0
            self.chunk_delay = 0.0
            self.quota_rps = None
