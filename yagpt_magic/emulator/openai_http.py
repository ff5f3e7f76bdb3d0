"""The emulator's OpenAI-compatible HTTP API, the one the SDK's ``chat`` domain calls.

Routes (under ``/v1/``, as ``https://llm.api.cloud.yandex.net/v1/`` has them):

- ``GET /v1/models``: the text models this API serves, in the folder the
  ``OpenAI-Project`` header names (the SDK sends it);
- ``POST /v1/chat/completions``: unary, or server-sent events with ``stream: true``.

A completion passes the same steps as a gRPC one, in the same order (see
:class:`~.gateway.Gateway`): it is recorded (method ``ChatCompletion``), the
``Authorization: Api-Key …`` / ``Bearer …`` header is checked against the emulator's
credentials, the folder's quota is spent, one of the model's concurrent-generation slots
taken (``limits.concurrent_generations``, the same slots as gRPC's), ``delay`` waited
out, a queued fault (``Emulator.fail(..., method="ChatCompletion")``) taken, the request
validated; then :mod:`.openai_chat` answers it, paced by ``chunk_delay`` and the
service-time model as a gRPC reply is. Refusals are JSON ``{"error": {...}}`` with the HTTP
status the service documents for the gRPC code (400, 401, 403, 404, 429, 5xx); a fault
after N chunks ends the stream with an ``error`` event, which the SDK raises as
``HttpSseError``.

Why the standard library's ``ThreadingHTTPServer``: none of the package's runtime
dependencies brings an HTTP server (tornado arrives only with the Jupyter test
dependencies), and the API needs little a thread-per-connection server lacks: many
concurrent requests (each generation may sleep through its service time on its own
thread), HTTP/1.1 keep-alive (httpx reuses connections), chunked server-sent events
flushed chunk by chunk, and a stop that closes every open connection so no thread
outlives it.
"""

from __future__ import annotations

import contextlib
import json
import socket
import sys
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import grpc
from yandex.cloud.ai.foundation_models.v1.text_generation import (
    text_generation_service_pb2 as tg,
)

from . import catalogue
from .answers import messages_of, options_of
from .gateway import Gateway
from .openai_chat import (
    ChatError,
    ChatReply,
    ChatRequest,
    answer,
    chunk_tokens,
    chunks,
    completion_body,
    models_body,
    parse_body,
    prepare,
)
from .rpc import Abort, check_auth
from .service_time import Pace
from .state import DEFAULT_CONTEXT_WINDOW, Fault, RecordedRequest, ServiceState

__all__ = ["CHAT_METHOD", "MODELS_METHOD", "ChatHTTPServer", "http_status"]

#: RecordedRequest methods of this API.
CHAT_METHOD = "ChatCompletion"
MODELS_METHOD = "ListModels"

#: The folder ``GET /v1/models`` lists when no ``OpenAI-Project`` header names one.
DEFAULT_FOLDER = "b1gemulator"

# The service's documented mapping of gRPC codes to HTTP statuses (Foundation Models
# "Error codes"), completed with the usual gRPC-HTTP mapping for the rest.
_HTTP_STATUS = {
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.CANCELLED: 499,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
}
_KINDS = {
    401: "authentication_error",
    403: "permission_error",
    404: "invalid_request_error",
    429: "rate_limit_error",
}


def http_status(code: grpc.StatusCode) -> int:
    """The HTTP status the service answers for a gRPC status code."""
    return _HTTP_STATUS.get(code, 500)


def _error_for(abort: Abort) -> ChatError:
    status = http_status(abort.code)
    kind = _KINDS.get(status, "server_error" if status >= 500 else "invalid_request_error")
    return ChatError(status, abort.details, kind=kind, code=abort.code.name.lower())


class _Stopping(Exception):
    """The server is stopping: end this response without another byte."""


class ChatHTTPServer:
    """The HTTP API on ``host:port`` over an emulator's shared :class:`ServiceState`.

    ``url`` is the base URL for the SDK's ``service_map={"http_completions": url}``.
    """

    def __init__(self, state: ServiceState, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.state = state
        self.host = host
        self.port = port
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None
        self.stopping = threading.Event()

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        """``http://host:port/v1/``: what the SDK's ``http_completions`` takes."""
        return f"http://{self.host}:{self.port}/v1/"

    def start(self) -> ChatHTTPServer:
        """Bind (OSError when the port is taken) and serve on a background thread."""
        if self._httpd is not None:
            return self
        self.stopping.clear()
        httpd = _Server((self.host, self.port), _Handler, self)
        self.port = httpd.server_address[1]
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.2},
            name="yagpt-emulator-http", daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop accepting, end every open connection, and join every thread; idempotent."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        self.stopping.set()
        httpd.shutdown()
        httpd.close_connections()
        httpd.server_close()  # joins the handler threads (block_on_close)
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    # -- the hook for the per-model concurrency limit --------------------------------

    def hold_generation(self, model_uri: str, held: contextlib.ExitStack) -> None:
        """Take one of the model's synchronous generation slots until ``held`` closes.

        The service allows ``limits.concurrent_generations`` (10) in flight per model;
        the slots are the gRPC API's (scope ``FOLDER/NAME``), so YandexGPT generations on
        both APIs count together. A model this API does not serve is refused later, by
        validation, as on gRPC.
        """
        limit = self.state.limits.concurrent_generations
        parts = catalogue.parse_chat_uri(model_uri)
        if limit is None or parts is None or catalogue.lookup_chat(model_uri) is None:
            return
        scope = f"{parts[0]}/{parts[1]}"
        limiter = self.state.limiter
        if not limiter.enter("concurrent_generations", scope, limit):
            raise ChatError(
                429, catalogue.limit_exceeded("concurrent_generations", limit),
                kind="rate_limit_error", code="resource_exhausted",
            )
        held.callback(limiter.leave, scope)

    # -- what a request does -----------------------------------------------------------

    def window_cap(self) -> int | None:
        """None: each model's documented window; a test that lowers the emulator's
        ``context_window`` lowers it for every model of this API too."""
        window = self.state.context_window
        return None if window == DEFAULT_CONTEXT_WINDOW else window

    def begin_chat(
        self,
        body: bytes,
        headers: dict[str, str],
        wait: Callable[[float], bool],
        held: contextlib.ExitStack,
    ) -> tuple[ChatRequest, Fault | None]:
        """Record, authenticate, spend quota, hold a generation slot (until ``held``
        closes), wait, take a fault, validate: the gRPC gateway's order."""
        state = self.state
        try:
            payload, malformed = parse_body(body), None
        except ChatError as err:
            payload, malformed = {}, err
        raw_model = str(payload.get("model", ""))
        recorded = RecordedRequest(method=CHAT_METHOD, model_uri=raw_model, metadata=headers)
        state.record(recorded)
        try:
            check_auth(headers, state.api_key, state.iam_token)
        except Abort as abort:
            raise _error_for(abort) from abort
        if malformed is not None:
            raise malformed
        if not state.spend_quota(catalogue.folder_of(raw_model)):
            raise ChatError(
                429, catalogue.quota_exceeded(state.quota_rps or 0), kind="rate_limit_error",
                code="resource_exhausted",
            )
        self.hold_generation(raw_model, held)
        if not wait(state.delay):
            raise _Stopping
        fault = state.take_fault(CHAT_METHOD)
        if fault is not None and fault.after_chunks <= 0:
            raise self.fault_error(fault, headers, raw_model)
        chat = prepare(payload, window_cap=self.window_cap())
        recorded.messages = messages_of(chat.request)
        # The effort this API takes has no place in the gRPC request it is answered as.
        recorded.options = {**options_of(chat.request),
                            "reasoning_effort": payload.get("reasoning_effort")}
        return chat, fault

    @staticmethod
    def fault_error(fault: Fault, headers: dict[str, str], model_uri: str) -> ChatError:
        abort = Gateway.abort_for(fault, headers, tg.CompletionRequest(model_uri=model_uri))
        return _error_for(abort)


class _Server(ThreadingHTTPServer):
    """A thread per connection; remembers open connections so stop() can end them."""

    daemon_threads = False
    block_on_close = True

    def __init__(self, address: tuple[str, int], handler: type, api: ChatHTTPServer) -> None:
        self.api = api
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        super().__init__(address, handler)

    def track(self, conn: socket.socket, is_open: bool) -> None:
        with self._open_lock:
            if is_open:
                self._open.add(conn)
            else:
                self._open.discard(conn)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that drops its connection is routine; anything else is reported."""
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)

    def close_connections(self) -> None:
        with self._open_lock:
            conns = list(self._open)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    """One connection: routes requests, writes JSON or server-sent events."""

    protocol_version = "HTTP/1.1"
    server_version = "yagpt-emulator"
    sys_version = ""
    timeout = 120  # an idle keep-alive connection ends by itself
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection, True)

    def finish(self) -> None:
        with contextlib.suppress(OSError):
            super().finish()
        self.server.track(self.connection, False)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        """Quiet: the SDK's own logging is enough noise for a test run."""

    # -- routing ---------------------------------------------------------------------

    def do_GET(self) -> None:  # noqa: N802
        path = self.path.split("?", 1)[0].rstrip("/")
        if path == "/v1/models":
            self._models()
        else:
            self._not_found()

    def do_POST(self) -> None:  # noqa: N802
        path = self.path.split("?", 1)[0].rstrip("/")
        body = self._body()
        if path == "/v1/chat/completions":
            self._chat(body)
        else:
            self._not_found()

    def _not_found(self) -> None:
        self._send_error(ChatError(404, f"no route for {self.command} {self.path}"))

    # -- handlers ----------------------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        return {key.lower(): value for key, value in self.headers.items()}

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _models(self) -> None:
        api = self.server.api
        headers = self._headers()
        api.state.record(RecordedRequest(method=MODELS_METHOD, metadata=headers))
        try:
            check_auth(headers, api.state.api_key, api.state.iam_token)
        except Abort as abort:
            self._send_error(_error_for(abort))
            return
        self._send_json(200, models_body(headers.get("openai-project") or DEFAULT_FOLDER))

    def _chat(self, body: bytes) -> None:
        api = self.server.api
        headers = self._headers()
        try:
            with contextlib.ExitStack() as held:
                chat, fault = api.begin_chat(body, headers, self._wait, held)
                reply = answer(chat, api.state.take_script())
                pace = api.state.draw_pace()
                if chat.stream:
                    self._stream(reply, fault, headers, pace)
                    return
                if pace is not None and not self._wait(pace.total(reply.completion_tokens)):
                    raise _Stopping
                if fault is not None:  # a mid-stream fault on an unary call: the error
                    raise api.fault_error(fault, headers, chat.uri)
                self._send_json(200, completion_body(reply))
        except ChatError as err:
            self._send_error(err)
        except _Stopping:
            self.close_connection = True
        except (BrokenPipeError, ConnectionResetError):
            api.state.count_cancelled()
            self.close_connection = True

    def _wait(self, seconds: float) -> bool:
        """Sleep ``seconds`` of service time; False when the server stops meanwhile."""
        stopping = self.server.api.stopping
        if seconds > 0:
            stopping.wait(seconds)
        return not stopping.is_set()

    def _stream(
        self, reply: ChatReply, fault: Fault | None, headers: dict[str, str], pace: Pace | None
    ) -> None:
        """Server-sent events, one flushed HTTP chunk each, then ``[DONE]``.

        Paced as the gRPC stream is: ``chunk_delay`` between chunks and, with a
        service-time model, the first token's time before the first chunk and each
        chunk's tokens before it.
        """
        api = self.server.api
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for i, chunk in enumerate(chunks(reply)):
            if fault is not None and i == fault.after_chunks:
                error = api.fault_error(fault, headers, reply.chat.uri)
                self._event({"error": {"error": error.message, "code": error.status}})
                break
            wait = api.state.chunk_delay if i else 0.0
            if pace is not None:
                wait += (0.0 if i else pace.first_token) + chunk_tokens(chunk) * pace.per_token
            if wait and not self._wait(wait):
                self.close_connection = True
                return
            self._event(chunk)
        else:
            if fault is not None:
                error = api.fault_error(fault, headers, reply.chat.uri)
                self._event({"error": {"error": error.message, "code": error.status}})
            else:
                self._write_chunk(b"data: [DONE]\n\n")
        self._write_chunk(b"")

    def _event(self, data: dict[str, Any]) -> None:
        text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
        self._write_chunk(f"data: {text}\n\n".encode())

    def _write_chunk(self, data: bytes) -> None:
        """One HTTP/1.1 chunk, flushed at once (an empty one ends the body)."""
        self.wfile.write(f"{len(data):X}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _send_json(self, status: int, body: dict[str, Any]) -> None:
        data = (json.dumps(body, ensure_ascii=False, separators=(",", ":")) + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()

    def _send_error(self, err: ChatError) -> None:
        self._send_json(err.status, err.body())
