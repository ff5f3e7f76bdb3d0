"""The offline Foundation Models API: a local gRPC server the unmodified SDK talks to.

It serves the real service definitions from the ``yandexcloud`` package, so every
request goes through the SDK's own discovery, channels, interceptors and parsing:

- ``TextGenerationService/Completion`` (streamed and not), ``TokenizerService`` and
  ``TextGenerationAsyncService/Completion`` (:mod:`.completion_services`),
- ``ApiEndpointService/List`` (discovery: every service id points back here),
  ``OperationService/Get`` and ``IamTokenService/Create`` (:mod:`.platform_services`),
- ``DatasetService``, ``TextGenerationBatchService`` and ``BatchInferenceService``
  with presigned-URL storage, for ``sdk.datasets`` and ``model.batch``
  (:mod:`.batch_service`);

and, on a port of its own, the OpenAI-compatible HTTP API the SDK's ``chat`` domain
calls (``GET /v1/models``, ``POST /v1/chat/completions``: :mod:`.openai_http`,
:mod:`.openai_chat`), over the same state: the same credentials, quota, faults, scripted
replies and recordings.

Every call first passes the :class:`~.gateway.Gateway` (recording, auth, quota,
service time, queued faults, validation) over the one :class:`~.state.ServiceState`
they share. It behaves like the recorded real service (tests/real_traffic): token
framing (:mod:`.tokenizer`), the model catalogue and its ``model_version`` dates and
error wording (:mod:`.catalogue`), usage in every chunk, ``TOOL_CALLS`` when tools are
offered (:mod:`.tool_rule`), JSON for ``response_format`` (:mod:`.schema_values`), deferred
operations that finish after a poll, the service's documented limits (:mod:`.limits`),
an optional service-time model (:mod:`.service_time`), an optional per-folder quota, and
replies shaped like real answers (:mod:`.replies`). The package imports only ``grpc``
and the protos, never the SDK.

Run standalone with ``python -m yagpt_magic.emulator --port 50051``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from concurrent import futures
from typing import Any, Generic, TypeVar, overload

import grpc

from .answers import STATUSES, Script
from .batch_service import BatchServices
from .completion_services import CompletionServices
from .gateway import Gateway
from .limits import Limits
from .openai_http import ChatHTTPServer
from .platform_services import PlatformServices
from .service_time import ServiceTime
from .state import COMPLETION_METHODS, Fault, RecordedRequest, ServiceState
from .tool_rule import Call

__all__ = ["Emulator"]

T = TypeVar("T")

#: Threads serving gRPC calls; a call waiting out its service time holds one, so this
#: bounds how many generations can be in flight (50 concurrent ones and their refusals
#: fit). Threads start only when needed.
GRPC_WORKERS = 64


class _Shared(Generic[T]):
    """An Emulator attribute that lives in its ServiceState (the servicers read it there)."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, obj: None, owner: type) -> _Shared[T]: ...
    @overload
    def __get__(self, obj: Emulator, owner: type) -> T: ...
    def __get__(self, obj: Emulator | None, owner: type) -> _Shared[T] | T:
        if obj is None:
            return self
        value: T = getattr(obj.state, self.name)
        return value

    def __set__(self, obj: Emulator, value: T) -> None:
        setattr(obj.state, self.name, value)


class Emulator:
    """A Foundation Models gRPC server on 127.0.0.1, served from this process's threads.

    Use as ``with Emulator(api_key="k") as emu:`` and point the SDK at
    ``emu.address`` with ``verify=False`` (plaintext), and its ``chat`` domain at
    ``emu.chat_url`` (``service_map={"http_completions": emu.chat_url}``): the
    OpenAI-compatible HTTP API, served on ``http_port`` (0: a free one).

    - ``limits``: the service's documented quotas (:class:`~.limits.Limits`: 10
      concurrent generations per model, async 10/s submit, 50/s poll, 5,000/hour,
      tokenizer 50/s), on by default; ``Emulator(limits=False)`` or
      ``emu.limits = Limits.off()`` turns them off, ``emu.limits.tokenizer_rps = 5``
      changes one.
    - ``service_time``: a :class:`~.service_time.ServiceTime` (time to first token plus
      time per token, lognormal tail, seeded), or None (the default: instant replies).
    - ``delay`` (a fixed wait before each reply) and ``chunk_delay`` slow replies down;
      ``quota_rps`` turns on a per-folder requests-per-second quota.
    - ``rejected`` counts what any limit or quota refused, ``refusals`` by quota.
    - ``pending_polls`` is how many OperationService/Get calls see a deferred completion
      still running.
    - :meth:`fail`, :meth:`reply_with` and :meth:`call_tools` queue faults, scripted
      replies and scripted tool calls for the next calls, on both APIs (an HTTP
      fault's ``method`` is ``"ChatCompletion"``).

    It is a composition: ``state`` (what the services share), ``gateway`` (what every
    call passes), the servicers over them, and ``batch`` (datasets, storage and batch
    tasks, which outlive a stop/start).
    """

    api_key: _Shared[str | None] = _Shared()
    iam_token: _Shared[str | None] = _Shared()
    delay: _Shared[float] = _Shared()
    chunk_delay: _Shared[float] = _Shared()
    context_window: _Shared[int] = _Shared()
    pending_polls: _Shared[int] = _Shared()
    quota_rps: _Shared[float | None] = _Shared()
    limits: _Shared[Limits] = _Shared()
    service_time: _Shared[ServiceTime | None] = _Shared()
    requests: _Shared[list[RecordedRequest]] = _Shared()
    cancelled: _Shared[int] = _Shared()

    def __init__(
        self,
        *,
        api_key: str | None = None,
        iam_token: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        http_port: int = 0,
        limits: Limits | bool = True,
        service_time: ServiceTime | None = None,
        workers: int = GRPC_WORKERS,
    ) -> None:
        self.host = host
        self.port = port
        self.workers = workers
        if isinstance(limits, bool):
            limits = Limits() if limits else Limits.off()
        self.state = ServiceState(
            api_key=api_key, iam_token=iam_token, limits=limits, service_time=service_time
        )
        self.gateway = Gateway(self.state)
        self.http = ChatHTTPServer(self.state, host=host, port=http_port)
        self.batch = BatchServices(self.gateway)
        self._server: grpc.Server | None = None
        self._executor: futures.ThreadPoolExecutor | None = None

    # -- lifecycle -------------------------------------------------------------

    @property
    def address(self) -> str:
        """``host:port`` for the SDK's ``endpoint`` (or every ``service_map`` entry)."""
        return f"{self.host}:{self.port}"

    @property
    def http_address(self) -> str:
        """``host:port`` of the OpenAI-compatible HTTP API (its port is known once started)."""
        return self.http.address

    @property
    def chat_url(self) -> str:
        """``http://host:port/v1/``: the SDK's ``service_map["http_completions"]``."""
        return self.http.url

    def start(self) -> Emulator:
        """Bind and serve in background threads; returns self."""
        if self._server is not None:
            return self
        self._executor = futures.ThreadPoolExecutor(
            max_workers=self.workers, thread_name_prefix="yagpt-emulator"
        )
        # so_reuseport=0: a second server on a taken port must fail, not share it.
        server = grpc.server(self._executor, options=[("grpc.so_reuseport", 0)])
        CompletionServices(self.gateway).add_to_server(server)
        PlatformServices(self.gateway).add_to_server(server)
        self.batch.start(server)
        try:
            self.port = self._bind(server)
        except OSError:
            self.batch.stop()
            self._executor.shutdown(wait=False)
            self._executor = None
            raise
        self.state.address = self.address
        server.start()
        self._server = server
        try:
            self.http.start()
        except OSError:
            self.stop()
            raise
        return self

    def _bind(self, server: grpc.Server) -> int:
        """The port ``server`` listens on; OSError when ``host:port`` is taken."""
        try:
            bound = server.add_insecure_port(f"{self.host}:{self.port}")
        except RuntimeError as err:
            raise OSError(f"emulator could not listen on {self.host}:{self.port}") from err
        if not bound:
            raise OSError(f"emulator could not listen on {self.host}:{self.port}")
        return bound

    def stop(self) -> None:
        """Cancel in-flight calls and close both ports; safe to call twice."""
        self.http.stop()
        server, self._server = self._server, None
        if server is not None:
            server.stop(grace=0).wait()
        self.batch.stop()
        if self._executor is not None:
            # Waiting leaves no thread behind (%unload_ext promises that); handlers see
            # their calls cancelled by the stop above and return within one step.
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- test controls ---------------------------------------------------------

    @property
    def completions(self) -> list[RecordedRequest]:
        """Completion calls only, streamed, unary and deferred."""
        return self.state.recorded(*COMPLETION_METHODS)

    @property
    def rejected(self) -> int:
        """Requests any limit or quota refused with RESOURCE_EXHAUSTED."""
        return self.state.rejected

    @property
    def refusals(self) -> dict[str, int]:
        """Refused requests by quota: a field of Limits, or "quota_rps"."""
        return dict(self.state.limiter.refusals)

    @property
    def tokenize_calls(self) -> int:
        """How many TokenizeCompletion calls arrived."""
        return len(self.state.recorded("TokenizeCompletion"))

    def fail(
        self,
        code: grpc.StatusCode,
        details: str = "",
        *,
        after_chunks: int = 0,
        method: str = "Completion",
        times: int = 1,
        prefixed: bool = False,
    ) -> None:
        """Make the next ``times`` calls of ``method`` end with ``code``.

        ``method`` is a RecordedRequest method name ("Completion", "AsyncCompletion",
        "TokenizeCompletion", "Tokenize", "List", "OperationGet", "IamTokenCreate")
        or "*" for any. ``after_chunks=N`` sends N stream chunks first (a mid-stream
        abort; if the reply has fewer chunks, all of them, then the error; for
        AsyncCompletion the operation is created and then fails). The
        literal ``{authorization}`` in ``details`` becomes the credential the client
        sent, to prove clients scrub what servers echo. ``prefixed=True`` puts the real
        service's ``Error in session internal_id=…&request_id=…&client_request_id=…
        &folder_id=…: `` in front of ``details``, as errors the service itself raises have.
        """
        self.state.queue_fault(Fault(code, details, after_chunks, method, times, prefixed))

    def reply_with(
        self,
        text: str,
        *,
        status: str = "FINAL",
        chunks: int | None = None,
        times: int = 1,
    ) -> None:
        """Answer the next ``times`` completions with ``text`` instead of the emulator's own.

        The text is sent as is, whatever the request asked for: a test can answer a
        ``response_format`` request with invalid JSON, or a tools request with text.
        """
        if status not in STATUSES:
            raise ValueError(f"status must be one of {sorted(STATUSES)}, not {status!r}")
        if chunks is not None and chunks < 1:
            raise ValueError("chunks must be at least 1")
        self.state.queue_script(Script(text, status, chunks, times))

    def call_tools(
        self,
        calls: Sequence[tuple[str, Mapping[str, Any]] | Mapping[str, Any]],
        *,
        times: int = 1,
    ) -> None:
        """Answer the next ``times`` completions with exactly these tool calls.

        Each call is ``(name, arguments)`` or ``{"name": ..., "arguments": {...}}``; the
        name need not be a tool the request offered (the real model can invent one).
        Queued with reply_with() in one first-in, first-out line.
        """
        parsed = []
        for call in calls:
            if isinstance(call, Mapping):
                parsed.append(Call(str(call["name"]), dict(call.get("arguments", {}))))
            else:
                name, arguments = call
                parsed.append(Call(name, dict(arguments)))
        if not parsed:
            raise ValueError("call_tools needs at least one call")
        self.state.queue_script(Script("", "FINAL", 1, times, calls=parsed))

    def reset(self) -> None:
        """Forget recordings, queued faults and replies, delays, the quota and refusals.

        The documented limits and the service-time model stay as they are.
        """
        self.state.reset()
