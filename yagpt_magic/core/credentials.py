"""What a Yandex Cloud credential looks like, so that none is accepted where it would be saved.

Flags, ``%chat system`` and ``%config`` values all end up in the notebook file; a
credential belongs in the environment or in ``%chat login`` (kernel memory only).
"""

from __future__ import annotations

import re
from typing import TypeVar

from traitlets import TraitError

from .errors import UsageProblem

T = TypeVar("T")

_TOKEN = r"[A-Za-z0-9_\-.~+/=]"
#: API keys (AQVN…), IAM tokens (t1.…) and OAuth tokens (y0_…–y3_…).
_YANDEX = r"(?:AQVN|t1\.|y[0-3]_)"
#: The whole value is one credential, maybe written as an auth header. AQVN is rare
#: enough to refuse at any length; "t1." and "y1_" need a token's length.
_WHOLE = re.compile(
    rf"(?i:(?:api-key|bearer)\s+)?(?:AQVN{_TOKEN}{{4,}}|(?:t1\.|y[0-3]_){_TOKEN}{{8,}})"
)
#: Inside a longer text (a system prompt): a token long enough not to be a word, or any
#: auth header whose value looks generated (a digit in 16+ token characters).
_INSIDE = re.compile(
    rf"(?<![A-Za-z0-9_\-.]){_YANDEX}{_TOKEN}{{16,}}"
    rf"|(?i:\b(?:api-key|bearer)\s+)(?={_TOKEN}*\d){_TOKEN}{{16,}}"
)


def looks_like_credential(value: object) -> bool:
    """Whether ``value`` is, or contains, something shaped like a Yandex Cloud credential.

    Anything but a string (a number, a bool) is not; a list is checked item by item.
    """
    if isinstance(value, (list, tuple, set, frozenset)):
        return any(looks_like_credential(item) for item in value)
    if not isinstance(value, str):
        return False
    stripped = value.strip().strip("'\"")
    return bool(_WHOLE.fullmatch(stripped) or _INSIDE.search(value))


def mask_credentials(text: str) -> str:
    """``text`` with everything shaped like a credential replaced by ``***``.

    For text that leaves the kernel (``%chat explain`` sends a traceback), beside
    ``errors.scrub``, which removes the credentials actually known.
    """
    return _INSIDE.sub("***", text)


class CredentialRefused(UsageProblem, TraitError):
    """A credential was given where it would be saved with the notebook.

    Also a ``TraitError``, so a ``@validate`` that raises it makes traitlets roll the
    value back and ``%config`` shows one line.
    """


def refuse_secret(value: T, where: str) -> T:
    """Return ``value``, or refuse it in one line if it looks like a credential.

    ``where`` names the place for the user: ``-s``, ``%chat system``,
    ``ChatMagics.model``. The value itself is never repeated.
    """
    if looks_like_credential(value):
        raise CredentialRefused(
            f"{where} looks like a credential, and credentials never go in magic arguments "
            "or %config (the notebook saves them): set YC_API_KEY or YC_IAM_TOKEN in the "
            "environment, or run %chat login."
        )
    return value
