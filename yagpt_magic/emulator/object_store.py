"""Presigned-URL object storage for the emulator's datasets: HTTP on 127.0.0.1 only.

The real dataset service hands the SDK presigned S3 URLs (``PUT`` to upload a draft or
one part of a multipart upload, ``GET`` to download a dataset file) and the SDK uses
them with plain httpx and no credentials. :class:`ObjectStore` is that storage in
miniature, so the SDK's own uploaders and downloaders run unchanged:

- objects live in memory under S3-like keys (``bucket/folder/dataset``);
- every URL carries a random signature that grants one method on one key; anything
  else is ``403 SignatureDoesNotMatch``, an unknown key ``404 NoSuchKey``;
- an upload URL signs the body size (S3 signs ``content-length``), so a body of
  another size is refused;
- a ``PUT`` answers ``200`` with the body's quoted MD5 as ``ETag``, as S3 does; the
  multipart uploader needs it.

Not emulated: expiry of URLs, ranges, checksum headers, HTTPS.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, quote, unquote, urlsplit

__all__ = ["ObjectStore", "etag_of"]

_SIGNATURE = "X-Amz-Signature"


def etag_of(data: bytes) -> str:
    """The ``ETag`` S3 gives a single-part object: its MD5, quoted."""
    return f'"{hashlib.md5(data).hexdigest()}"'


@dataclass(frozen=True)
class Grant:
    """What one presigned URL allows: a method on a key, and for a PUT the body size."""

    method: str
    key: str
    size: int | None


class _Server(ThreadingHTTPServer):
    # Request threads are joined on close, so stop() leaves no thread behind.
    daemon_threads = False
    block_on_close = True

    def __init__(self, address: tuple[str, int], store: ObjectStore) -> None:
        super().__init__(address, _Handler)
        self.store = store


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    # A client that stalls mid-request cannot hold stop() for longer than this.
    timeout = 10
    server_version = "yagpt-magic-emulator-storage"

    def do_PUT(self) -> None:  # noqa: N802 - the http.server naming convention
        key, grant = self._authorize("PUT")
        if grant is None:
            return
        length = self.headers.get("Content-Length")
        if length is None or not length.isdigit():
            self._error(411, "MissingContentLength", "Content-Length is required")
            return
        data = self.rfile.read(int(length))
        if grant.size is not None and len(data) != grant.size:
            self._error(
                403,
                "SignatureDoesNotMatch",
                f"The body has {len(data)} bytes; the URL was signed for {grant.size}",
            )
            return
        self.server.store.put(key, data)
        self.send_response(200)
        self.send_header("ETag", etag_of(data))
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self) -> None:  # noqa: N802 - the http.server naming convention
        key, grant = self._authorize("GET")
        if grant is None:
            return
        data = self.server.store.get(key)
        if data is None:
            self._error(404, "NoSuchKey", "The specified key does not exist.")
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("ETag", etag_of(data))
        self.end_headers()
        self.wfile.write(data)

    def _authorize(self, method: str) -> tuple[str, Grant | None]:
        parts = urlsplit(self.path)
        key = unquote(parts.path.lstrip("/"))
        signature = parse_qs(parts.query).get(_SIGNATURE, [""])[0]
        grant = self.server.store.grant_for(signature)
        if grant is None or grant.method != method or grant.key != key:
            self._error(
                403,
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you provided.",
            )
            return key, None
        return key, grant

    def _error(self, status: int, code: str, message: str) -> None:
        body = (
            f'<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>{code}</Code><Message>{message}</Message></Error>"
        ).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        """Quiet: a test run or a notebook should not print access logs."""


class ObjectStore:
    """In-memory objects behind presigned URLs, served on ``host`` (127.0.0.1)."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = 0
        self._lock = threading.Lock()
        self._objects: dict[str, bytes] = {}
        self._grants: dict[str, Grant] = {}
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------

    def start(self) -> None:
        """Listen on a free port of ``host`` and serve from one background thread."""
        if self._server is not None:
            return
        server = _Server((self.host, 0), self)
        self.port = server.server_address[1]
        thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="yagpt-emulator-storage",
            daemon=True,  # stop() joins it; a script that never calls stop() still exits
        )
        thread.start()
        self._server, self._thread = server, thread

    def stop(self) -> None:
        """Stop serving and join every thread; objects stay for a restart."""
        server, self._server = self._server, None
        thread, self._thread = self._thread, None
        if server is not None:
            server.shutdown()
            server.server_close()  # joins request threads (block_on_close)
        if thread is not None:
            thread.join()

    @property
    def serving(self) -> bool:
        return self._server is not None

    # -- objects and URLs --------------------------------------------------------

    def presign(self, method: str, key: str, *, size: int | None = None) -> str:
        """A URL allowing ``method`` ("PUT" or "GET") on ``key``; PUT may pin the size."""
        signature = secrets.token_hex(16)
        with self._lock:
            self._grants[signature] = Grant(method, key, size)
        return f"http://{self.host}:{self.port}/{quote(key)}?{_SIGNATURE}={signature}"

    def put(self, key: str, data: bytes) -> None:
        with self._lock:
            self._objects[key] = data

    def get(self, key: str) -> bytes | None:
        with self._lock:
            return self._objects.get(key)

    def delete(self, prefix: str) -> None:
        """Forget every object and grant whose key starts with ``prefix``."""
        with self._lock:
            for key in [k for k in self._objects if k.startswith(prefix)]:
                del self._objects[key]
            for sig in [s for s, g in self._grants.items() if g.key.startswith(prefix)]:
                del self._grants[sig]

    def grant_for(self, signature: str) -> Grant | None:
        """What a URL signature allows, if it was handed out."""
        with self._lock:
            return self._grants.get(signature)
