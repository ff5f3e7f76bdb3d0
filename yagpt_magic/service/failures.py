"""How a service's status becomes a domain error: the one table of status codes.

Each backend hands its failures here: a gRPC status (by name, so nothing here imports
grpc), an HTTP status (read as the gRPC status it stands for), or a failure on our
side. What comes out is a ``ServiceError`` with one or two lines that say what to do
next, scrubbed of every secret, and its ``kind``: what the failure means whatever API
reported it, which is all bulk work needs to decide between retrying a row, giving
up on that row and stopping the job.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from ..core.errors import ChatError, FailureKind, ServiceError, scrub
from ..core.models import MODELS, OPENAI_COMPATIBLE
from .connection import Connection

#: gRPC status name -> (what it means, the advice shown; None: the generic line).
STATUSES: dict[str, tuple[FailureKind, str | None]] = {
    "UNAUTHENTICATED": ("auth", (
        "Authentication failed: the API key or IAM token was rejected. "
        "Check YC_API_KEY / YC_IAM_TOKEN (or run %chat login); IAM tokens expire after 12 hours."
    )),
    "PERMISSION_DENIED": ("permission", (
        "Permission denied: the credential may not use this model in folder {folder}. "
        "Check the folder id and that the service account has the ai.languageModels.user role."
    )),
    "RESOURCE_EXHAUSTED": ("quota", (
        "Quota or rate limit reached ({details}). Wait a little and run the cell again, "
        "or ask for a higher quota in the Yandex Cloud console."
    )),
    "INVALID_ARGUMENT": ("invalid", (
        "The service rejected the request as invalid: {details}. "
        "Check the model name (-m), temperature and max_tokens."
    )),
    "NOT_FOUND": ("not_found", (
        "Not found: {details}. Check the model name (-m) and the folder id."
    )),
    "UNAVAILABLE": ("unreachable", (
        "The service at {endpoint} is unreachable. "
        "Check the network and ChatMagics.endpoint, then run the cell again."
    )),
    "DEADLINE_EXCEEDED": ("timeout", (
        "No answer from {endpoint} within {timeout:g} s. "
        "Run the cell again, or raise %config ChatMagics.timeout."
    )),
    "CANCELLED": ("cancelled", "The request was cancelled. Run the cell again."),
    "UNIMPLEMENTED": ("unimplemented", None),
}

#: A model neither API serves as named: which API serves what, and where to look.
UNKNOWN_MODEL = (
    "The service does not know this model ({details}). A model outside the built-in table "
    "goes to the Text Generation API; the OpenAI-compatible API serves "
    + ", ".join(m.name for m in MODELS if m.api == OPENAI_COMPATIBLE)
    + ". Check -m and the folder id; %chat models lists every model and its API."
)

#: Where the cause, not just the status, decides: (status, pattern, kind, advice).
CAUSES: tuple[tuple[str, re.Pattern[str], FailureKind, str], ...] = (
    (
        "INVALID_ARGUMENT",
        re.compile(r"(?i)number of input tokens must be no more than (?P<limit>\d+),"
                   r"\s*got (?P<got>\d+)"),
        "context_overflow",
        "The conversation is too long for the model's context window: {details}. "
        "Shorten the message, start over with %chat reset, use a model with a bigger window "
        "(-m), or set %config ChatMagics.context_window = {limit} so older turns are left out.",
    ),
    (
        "INVALID_ARGUMENT",
        re.compile(r"(?i)model[ _]?uri|unknown model|no such model|model\b.*\bnot found"
                   r"|invalid model\b"),
        "unknown_model",
        UNKNOWN_MODEL,
    ),
    (
        "NOT_FOUND",
        re.compile(r"(?i)\bmodel\b.*\b(?:does not exist|not found)"),
        "unknown_model",
        UNKNOWN_MODEL,
    ),
    (
        "RESOURCE_EXHAUSTED",
        re.compile(r"(?i)message larger than max \((?P<size>\d+) vs\.? (?P<limit>\d+)\)"),
        "too_large",
        "The message is too large to send: {size:,} bytes, the limit is {limit:,} bytes. "
        "Shorten the message (or the thread: %chat reset) and run the cell again.",
    ),
    (
        "RESOURCE_EXHAUSTED",
        re.compile(r"(?i)message larger than max"),
        "too_large",
        "The message is too large to send ({details}). "
        "Shorten the message (or the thread: %chat reset) and run the cell again.",
    ),
)

#: An HTTP status read as the gRPC status it stands for (the OpenAI-compatible API).
HTTP_STATUSES: dict[int, str] = {
    400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED",
    404: "NOT_FOUND", 408: "DEADLINE_EXCEEDED", 413: "RESOURCE_EXHAUSTED",
    429: "RESOURCE_EXHAUSTED", 499: "CANCELLED", 501: "UNIMPLEMENTED", 502: "UNAVAILABLE",
    503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED",
}

#: The real service puts its session ids before the cause:
#: ``Error in session internal_id=…&request_id=…&folder_id=…: <cause>``.
_SESSION_PREFIX = re.compile(r"(?i)^\s*error in session\b[^:]*:\s*")
#: ``request_id=…&folder_id=…`` noise elsewhere in the details.
_ID_NOISE = re.compile(
    r"(?i)[(\[]?\b(?:\w*_id|request|session|trace)=[^\s&,;:)\]]*"
    r"(?:&\w+=[^\s&,;:)\]]*)*[)\]]?[:,;]?\s*"
)
_CAUSE_LENGTH = 240


def service_cause(details: str) -> str:
    """The cause in a service's error details: no session ids, whole unless very long."""
    lines = [line.strip() for line in details.strip().splitlines() if line.strip()]
    text = _SESSION_PREFIX.sub("", lines[0]) if lines else ""
    text = _ID_NOISE.sub("", text).strip(" :;,")
    if len(text) > _CAUSE_LENGTH:
        cut = text.rfind(" ", 0, _CAUSE_LENGTH)
        text = text[: cut if cut > _CAUSE_LENGTH // 2 else _CAUSE_LENGTH].rstrip(" ,;:") + "…"
    return text.rstrip(".")


def _reading(code: str, cause: str) -> tuple[FailureKind, str | None, dict[str, int]]:
    """What a status with this cause means, the advice to show, and numbers in the cause."""
    kind, template = STATUSES.get(code, ("failed", None))
    for cause_code, pattern, cause_kind, advice in CAUSES:
        found = pattern.search(cause) if cause_code == code else None
        if found:
            return cause_kind, advice, {k: int(v) for k, v in found.groupdict().items()}
    return kind, template, {}


def kind_of(err: BaseException) -> FailureKind:
    """What a failure means, without building its message.

    A ``ServiceError`` says; a gRPC-shaped error (the SDK's, raw) is read by the same
    table as ``failure`` reads it; anything else failed on our side (``client``).
    """
    if isinstance(err, ServiceError):
        return err.kind
    over_http = http_status(err)
    if over_http is not None:
        return _reading(over_http[0], service_cause(over_http[1]))[0]
    code = getattr(err, "code", None)
    if isinstance(err, ChatError) or not callable(code):
        return "client"
    try:
        name = code().name
        details = getattr(err, "details", None)
        text = str(details() if callable(details) else err)
    except Exception:  # noqa: BLE001 - an odd error object is just unknown
        name, text = "UNKNOWN", ""
    return _reading(name, service_cause(text))[0]


def service_error(
    code: str, details: str, *, endpoint: str, folder: str, timeout: float, secrets: Iterable[str]
) -> ServiceError:
    """A gRPC status (by name) as the user's one-line message, scrubbed of secrets."""
    secrets = tuple(secrets)
    cause = service_cause(scrub(details, secrets))
    values: dict[str, object] = {
        "endpoint": endpoint, "folder": folder or "(unset)", "timeout": timeout,
        "details": cause or code,
    }
    kind, template, numbers = _reading(code, cause)
    values.update(numbers)
    if template is None:
        text = f"The service failed ({code}): {cause or 'no details'}. Run the cell again; " \
            "if it keeps failing, set %config ChatMagics.verbose_errors = True and report it."
    else:
        text = template.format(**values).replace("….", "…")
    return ServiceError(scrub(text, secrets), code=code, kind=kind, facts=dict(numbers))


def status_error(code: str, details: str, connection: Connection) -> ServiceError:
    """``service_error`` for a request made over ``connection``."""
    return service_error(code, details, endpoint=connection.shown_endpoint,
                         folder=connection.folder_id, timeout=connection.timeout,
                         secrets=connection.secrets)


def http_error(status: int, details: str, connection: Connection) -> ServiceError:
    """An HTTP error status as the same domain error its gRPC counterpart becomes."""
    return status_error(grpc_code(status), details, connection)


def grpc_code(status: int) -> str:
    """The gRPC status an HTTP error status stands for."""
    return HTTP_STATUSES.get(status, "INTERNAL" if status >= 500 else "FAILED_PRECONDITION")


def http_details(response: object) -> str:
    """The cause in an HTTP error response: the ``message`` of its JSON ``error`` (the
    OpenAI shape and the Yandex Cloud REST shape both have one), else its text.

    A streamed response the SDK never read has no body: its status line is all there is.
    """
    try:
        body = response.json()  # type: ignore[attr-defined]
    except Exception:  # noqa: BLE001 - not JSON, or never read
        body = None
    error = body.get("error", body) if isinstance(body, dict) else None
    if isinstance(error, dict):
        message = error.get("message") or error.get("error")
        if isinstance(message, str) and message:
            return message
    if isinstance(error, str) and error:
        return error
    try:
        text = str(response.text).strip()  # type: ignore[attr-defined]
    except Exception:  # noqa: BLE001 - httpx.ResponseNotRead
        text = ""
    status = getattr(response, "status_code", "")
    return text[:500] or f"HTTP {status} {getattr(response, 'reason_phrase', '')}".strip()


def http_status(err: BaseException) -> tuple[str, str] | None:
    """(gRPC status name, details) of a failure of the OpenAI-compatible API; None when
    ``err`` is not one.

    An error status (httpx's ``HTTPStatusError``) reads as its gRPC status, with the
    cause from the body; an ``error`` event inside a stream (the SDK's ``HttpSseError``,
    whose only record of it is its ``_error`` attribute) by the HTTP status it names; a
    connection that failed is UNAVAILABLE, one that timed out DEADLINE_EXCEEDED.
    """
    import httpx  # the SDK's HTTP client: already imported once a request has failed

    if isinstance(err, httpx.HTTPStatusError):
        return grpc_code(err.response.status_code), http_details(err.response)
    if type(err).__name__ == "HttpSseError":
        error = vars(err).get("_error")
        error = error if isinstance(error, dict) else {}
        status = error.get("code", error.get("http_code"))
        message = error.get("message") or error.get("error") or "the stream failed"
        return grpc_code(status if isinstance(status, int) else 500), str(message)
    if isinstance(err, httpx.TimeoutException):
        return "DEADLINE_EXCEEDED", ""
    if isinstance(err, httpx.TransportError):
        return "UNAVAILABLE", str(err)
    return None


def failure(err: BaseException, connection: Connection) -> ChatError:
    """Any failure of a request over ``connection`` as a one-line, scrubbed ``ChatError``.

    A ``ChatError`` passes as it is; a gRPC error is read by its status; anything else
    failed on our side before the service answered (``kind`` "client").
    """
    if isinstance(err, ChatError):
        return err
    over_http = http_status(err)
    if over_http is not None:
        return status_error(*over_http, connection)
    code = getattr(err, "code", None)
    if callable(code):
        try:
            name = code().name
            details = err.details() or ""  # type: ignore[attr-defined]
        except Exception:  # noqa: BLE001 - an odd error object is just unknown
            name, details = "UNKNOWN", str(err)
        return status_error(name, details, connection)
    text = scrub(f"{type(err).__name__}: {err}", connection.secrets).splitlines()[0][:300]
    return ServiceError(
        f"The request to {connection.shown_endpoint} failed: {text}. "
        "Check %chat config; set %config ChatMagics.verbose_errors = True for details.",
        code=type(err).__name__, kind="client",
    )
