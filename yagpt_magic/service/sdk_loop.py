"""What every live backend shares: the SDK client, and an event loop thread to run it on.

The SDK is imported only when the first request is made (it costs ~250 ms and sets
TRACE logging). Its async API runs on a loop thread of the backend's own; callers in
any thread (the kernel's main thread, a widget worker) wait on a queue in short slices,
so a KeyboardInterrupt or a Stop button cancels the request at once. The SDK's sync
wrappers block in a way that leaves the request running after an interrupt.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
import warnings
from collections.abc import Callable, Generator
from dataclasses import replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import asyncio

from ..core.errors import Interrupted, scrubbed_cause
from ..core.images import Image
from .connection import Connection
from .failures import failure, status_error

_SDK_LOGGERS = ("yandex_cloud_ml_sdk", "yandex_ai_studio_sdk")
_POLL = 0.05
#: How long a stream may run in all; ``timeout`` bounds only the wait for its start.
STREAM_DEADLINE = 600.0
#: The SDK's ``service_map`` key of the OpenAI-compatible API's base URL.
HTTP_SERVICE = "http_completions"

Produce = Callable[[Callable[[Any], None]], Any]


def import_sdk() -> Any:
    """Import the SDK quietly: no deprecation warning, no TRACE logging."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import yandex_cloud_ml_sdk
    for name in _SDK_LOGGERS:
        logger = logging.getLogger(name)
        logger.setLevel(logging.WARNING)
        logger.propagate = False
    return yandex_cloud_ml_sdk


def sdk_arguments(connection: Connection) -> dict[str, Any]:
    """``AsyncYCloudML``'s arguments for a connection (the credential as the SDK's auth)."""
    from yandex_cloud_ml_sdk import auth as sdk_auth
    from yandex_cloud_ml_sdk.retry import RetryPolicy

    cred = connection.credential
    auth: Any
    if cred.kind == "api_key":
        auth = sdk_auth.APIKeyAuth(cred.value)
    elif cred.kind == "iam_token":
        auth = sdk_auth.IAMTokenAuth(cred.value)
    elif cred.kind == "oauth_token":
        auth = sdk_auth.OAuthTokenAuth(cred.value)
    else:
        auth = sdk_auth.YandexCloudCLIAuth(yc_profile=cred.value)
    kwargs: dict[str, Any] = {
        "folder_id": connection.folder_id,
        "auth": auth,
        "retry_policy": RetryPolicy(max_attempts=1),
        "enable_server_data_logging": connection.data_logging,
    }
    if connection.endpoint:
        kwargs["endpoint"] = connection.endpoint
    if connection.chat_endpoint:
        kwargs["service_map"] = {HTTP_SERVICE: connection.chat_endpoint}
    if connection.insecure:
        kwargs["verify"] = False
    return kwargs


class SDKLoop:
    """One ``Connection``'s SDK client and the loop thread its coroutines run on."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        #: The connection its failures name (its API's address, its secrets).
        self.reported = connection
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._sdk: Any = None
        self._lock = threading.Lock()

    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        import asyncio  # not at import time: it costs %load_ext ~20 ms outside a kernel

        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(
                    target=loop.run_forever, name="yagpt-magic-backend", daemon=True
                )
                thread.start()
                self._loop, self._thread = loop, thread
            return self._loop

    def close(self) -> None:
        """Stop the loop thread; nothing of the backend stays behind."""
        loop, thread = self._loop, self._thread
        self._loop = self._thread = None
        if loop is None or thread is None:
            return
        import asyncio

        async def shutdown() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        with contextlib.suppress(Exception):  # closing must never fail an unload
            asyncio.run_coroutine_threadsafe(shutdown(), loop).result(timeout=2)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=2)
        loop.close()

    def sdk(self) -> Any:
        """The ``AsyncYCloudML`` client; use it only from coroutines run by ``drive``."""
        if self._sdk is None:
            self._sdk = import_sdk().AsyncYCloudML(**sdk_arguments(self.connection))
        return self._sdk

    def context_start(self, thread: str, index: int) -> int | None:
        """A live request's context is fitted afresh: no recorded start."""
        return None

    def recorded_images(self, thread: str, index: int) -> tuple[Image, ...]:
        """A live request sends the images it is given: none recorded."""
        return ()

    def drive(self, produce: Produce, *, cancel: threading.Event | None = None
              ) -> Generator[Any, None, None]:
        """Run ``produce(put)`` on the loop and yield what it puts, interruptibly.

        A KeyboardInterrupt (or ``cancel``) in the caller's thread cancels the coroutine
        and everything it awaits; ``produce`` must send its first item at once.
        """
        return self.run(produce, cancel=cancel, first_timeout=float("inf"))

    def run(
        self,
        produce: Produce,
        *,
        cancel: threading.Event | None = None,
        first_timeout: float,
        started: float | None = None,
    ) -> Generator[Any, None, None]:
        """Run ``produce`` on the loop; yield what it puts, interruptibly, in this thread.

        Nothing put within ``first_timeout`` of ``started`` is DEADLINE_EXCEEDED (the
        first-answer timeout); a failure leaves as the one-line ``ChatError`` of
        ``failures``, its scrubbed traceback as the cause.
        """
        import asyncio

        loop = self._ensure_loop()
        items: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()
        finished = threading.Event()

        async def runner() -> None:
            try:
                await produce(lambda item: items.put(("item", item)))
                items.put(("done", None))
            except asyncio.CancelledError:
                raise
            except BaseException as err:  # noqa: BLE001 - handed to the caller's thread
                items.put(("error", err))
            finally:
                finished.set()

        future = asyncio.run_coroutine_threadsafe(runner(), loop)
        started = time.monotonic() if started is None else started
        got_any = False
        try:
            while True:
                try:
                    kind, value = items.get(timeout=_POLL)
                except queue.Empty:
                    if cancel is not None and cancel.is_set():
                        raise Interrupted("stopped") from None
                    if not got_any and time.monotonic() - started > first_timeout:
                        raise status_error("DEADLINE_EXCEEDED", "", replace(
                            self.reported, timeout=first_timeout)) from None
                    continue
                if kind == "item":
                    got_any = True
                    yield value
                elif kind == "error":
                    raise failure(value, self.reported) from scrubbed_cause(
                        value, self.connection.secrets)
                else:
                    return
        finally:
            if not finished.is_set():
                future.cancel()
                finished.wait(timeout=1.0)
