"""The project's exceptions, and how each one reads to a notebook user.

Every error a user can meet is a ``ChatError``: one or two lines that say what went
wrong and what to do next. The magics turn them into ``UsageError`` (no traceback)
unless ``verbose_errors`` is on. gRPC errors are translated here by status-code
*name*, so this module never imports grpc.
"""

from __future__ import annotations

import re
from collections.abc import Iterable


class ChatError(Exception):
    """Base class: a short, user-facing message."""


class UsageProblem(ChatError):
    """Bad input from the user (flags, empty cell, unknown thread); nothing was sent."""


class ConfigProblem(ChatError):
    """Missing or invalid configuration (credentials, folder); nothing was sent."""


class ContextTooLong(ChatError):
    """The new message cannot fit the context window even on its own."""


class ServiceError(ChatError):
    """The service refused or failed the request; the thread is unchanged."""

    def __init__(self, message: str, *, code: str = "") -> None:
        super().__init__(message)
        self.code = code


class ContentFiltered(ChatError):
    """The model's answer was withheld by the content filter; nothing was committed."""


class Interrupted(ChatError):
    """The user stopped the reply; nothing was committed."""


class TranscriptError(ChatError):
    """A transcript file could not be read or written; no thread was changed."""


class ReplayMiss(ChatError):
    """Replay mode met a request that the transcript does not hold."""


_ADVICE = {
    "UNAUTHENTICATED": (
        "authentication failed: the API key or IAM token was rejected. "
        "Check YC_API_KEY / YC_IAM_TOKEN (or run %chat login); IAM tokens expire after 12 hours."
    ),
    "PERMISSION_DENIED": (
        "permission denied: the credential may not use this model in folder {folder}. "
        "Check the folder id and that the service account has the ai.languageModels.user role."
    ),
    "RESOURCE_EXHAUSTED": (
        "quota or rate limit reached. Wait a little and run the cell again, "
        "or ask for a higher quota in the Yandex Cloud console."
    ),
    "INVALID_ARGUMENT": (
        "the service rejected the request as invalid: {details}. "
        "Check the model name (-m), temperature, max_tokens and the message length."
    ),
    "NOT_FOUND": (
        "not found: {details}. Check the model name (-m) and the folder id."
    ),
    "UNAVAILABLE": (
        "the service at {endpoint} is unreachable. "
        "Check the network and ChatMagics.endpoint, then run the cell again."
    ),
    "DEADLINE_EXCEEDED": (
        "no answer from {endpoint} within {timeout:g} s. "
        "Run the cell again, or raise %config ChatMagics.timeout."
    ),
    "CANCELLED": "the request was cancelled. Run the cell again.",
}


def service_error(
    code: str, details: str, *, endpoint: str, folder: str, timeout: float, secrets: Iterable[str]
) -> ServiceError:
    """Translate a gRPC status into the user's one-line message (scrubbed of secrets)."""
    details = scrub(details.strip().splitlines()[0] if details.strip() else "", secrets)
    if len(details) > 200:
        details = details[:200] + "…"
    template = _ADVICE.get(code)
    if template is None:
        text = f"the service failed ({code}): {details or 'no details'}. Run the cell again; " \
            "if it keeps failing, set %config ChatMagics.verbose_errors = True and report it."
    else:
        text = template.format(
            endpoint=endpoint, folder=folder or "(unset)", timeout=timeout, details=details or code
        )
    return ServiceError(scrub(text, secrets), code=code)


class ScrubbedCause(Exception):
    """The original failure's traceback as text, with every secret removed.

    With ``verbose_errors`` the user sees the full chain; the raw gRPC error would
    carry server details verbatim, which may echo the credential back.
    """


def scrubbed_cause(err: BaseException, secrets: Iterable[str]) -> ScrubbedCause:
    import traceback

    text = "".join(traceback.format_exception(type(err), err, err.__traceback__))
    return ScrubbedCause(scrub(text, secrets))


def mask_arguments(message: str) -> str:
    """argparse's "unrecognized arguments: ..." without the values, which may be a key.

    A key typed as a flag (``--api-key AQVN...``) must not be echoed into an error
    output that is saved with the notebook; flag names are kept so the user sees what
    was wrong.
    """
    head, sep, rest = message.partition("unrecognized arguments:")
    if not sep:
        return message
    shown = [word if word.startswith("-") else "…" for word in rest.split()]
    return f"{head}{sep} {' '.join(shown)}"


_BEARER = re.compile(r"(?i)\b(api-key|bearer)\s+\S+")


def scrub(text: str, secrets: Iterable[str]) -> str:
    """Remove every known secret, and anything shaped like an auth header, from text."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    return _BEARER.sub(lambda m: f"{m.group(1)} ***", text)
