"""gRPC plumbing every servicer of the emulator shares, and nothing about the model.

A handler runs inside a :class:`Call` (which notices a client that went away), ends a
call with a status by raising :class:`Abort`, and is wrapped by :func:`run_unary` for
unary methods. :func:`check_auth` is the gateway's credential check;
:func:`make_servicer` binds our functions onto a generated servicer class; :func:`pack`
and :func:`timestamp_now` build the protobuf values operations carry.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

import grpc
from google.protobuf import any_pb2, timestamp_pb2

__all__ = [
    "Abort",
    "Call",
    "Gone",
    "check_auth",
    "make_servicer",
    "metadata_of",
    "pack",
    "run_unary",
    "timestamp_now",
]

T = TypeVar("T")


class Gone(Exception):
    """The client went away while the call waited out its service time."""


class Abort(Exception):
    """Raised inside a handler to end the call with a status (not counted as cancelled)."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(details)
        self.code = code
        self.details = details


class Call:
    """One RPC in progress: its context, and a wait that ends when the client goes."""

    def __init__(self, context: grpc.ServicerContext) -> None:
        self.context = context
        self._done = threading.Event()
        if not context.add_callback(self._done.set):
            self._done.set()  # already over: never sleep for a client that has gone

    def wait(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; False as soon as the client has gone."""
        if seconds > 0:
            self._done.wait(seconds)
        return self.context.is_active()

    @property
    def metadata(self) -> dict[str, str]:
        return metadata_of(self.context)


def metadata_of(context: grpc.ServicerContext) -> dict[str, str]:
    """The call's text metadata with lower-case keys (gRPC keys are case-insensitive)."""
    return {
        key.lower(): value for key, value in context.invocation_metadata() if isinstance(value, str)
    }


def check_auth(metadata: dict[str, str], api_key: str | None, iam_token: str | None) -> None:
    """Refuse a call whose credential is missing or wrong; accept anything if none is set."""
    accepted = set()
    if api_key is not None:
        accepted.add(f"Api-Key {api_key}")
    if iam_token is not None:
        accepted.add(f"Bearer {iam_token}")
    if not accepted:
        return
    sent = metadata.get("authorization")
    if sent is None:
        raise Abort(grpc.StatusCode.UNAUTHENTICATED, "Authorization metadata is missing")
    if sent not in accepted:
        what = "IAM token" if sent.startswith("Bearer ") else "API key"
        raise Abort(grpc.StatusCode.UNAUTHENTICATED, f"The {what} is invalid")


def run_unary(
    context: grpc.ServicerContext,
    handle: Callable[[Call], T],
    on_cancelled: Callable[[], None],
) -> T:
    """Run a unary handler, turning Abort into a status and Gone into ``on_cancelled``."""
    call = Call(context)
    try:
        return handle(call)
    except Gone:
        on_cancelled()
        context.abort(grpc.StatusCode.CANCELLED, "The client cancelled the call")
    except Abort as abort:
        context.abort(abort.code, abort.details)


def make_servicer(base: type, **methods: Callable[..., Any]) -> Any:
    """An instance of a generated servicer class with its methods bound to ours."""
    servicer = base()
    for name, fn in methods.items():
        setattr(servicer, name, fn)
    return servicer


def pack(message: Any) -> any_pb2.Any:
    """``message`` in a ``google.protobuf.Any``, as operations carry metadata and results."""
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed


def timestamp_now() -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.GetCurrentTime()
    return stamp
