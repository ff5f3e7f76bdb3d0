"""The models the emulator serves, and the service's own wording for what it refuses.

A model URI is ``gpt://FOLDER/NAME/VERSION`` with an optional fine-tune suffix
(``gpt://b1g.../yandexgpt-lite/latest@tamr1234``). ``model_version`` is what the real
service reports: a date. Two of them are recorded (test_run: ``yandexgpt/latest`` is
"07.03.2024"; test_function_call: ``yandexgpt/rc`` is "09.02.2025"); the others are
invented but plausible dates, marked below.

Error wording, and where it comes from:

- ``invalid model_uri``: the gRPC details the real service sent to the SDK for a model
  it does not serve (github.com/black-roland/homeassistant-yandexgpt issue 14). It
  arrived *without* the session prefix, so the emulator sends it bare too.
- ``invalid message role 'X'``: recorded from the REST API with the session prefix
  (``Error in session internal_id=…&request_id=…&client_request_id=…&folder_id=…: …``).
- ``number of input tokens must be no more than 32768, got 59830``: same prefix (SPEC 8).
- ``ai.textGenerationCompletionRequestsPerSecond.rate rate quota limit exceed: allowed N
  requests``: the real quota wording (recorded for the per-hour and embeddings quotas,
  e.g. langchain-ai/langchain issue 19773), unprefixed.
- An empty message list and an unknown ``tool_choice`` function are not recorded anywhere
  we could find: their wording is ours.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

#: Model names the catalogue serves.
MODEL_NAMES = ("yandexgpt", "yandexgpt-lite", "aliceai-llm")
#: Branches every model has.
VERSIONS = ("latest", "rc", "deprecated")

# (name, version) -> model_version date. R = recorded, I = invented.
_DATES = {
    ("yandexgpt", "latest"): "07.03.2024",  # R: test_run, test_chat, test_tokenize
    ("yandexgpt", "rc"): "09.02.2025",  # R: test_function_call, test_structured_output_*
    ("yandexgpt", "deprecated"): "06.12.2023",  # I
    ("yandexgpt-lite", "latest"): "07.03.2024",  # I (same generation as yandexgpt)
    ("yandexgpt-lite", "rc"): "09.02.2025",  # I
    ("yandexgpt-lite", "deprecated"): "06.12.2023",  # I
    ("aliceai-llm", "latest"): "20.10.2025",  # I
    ("aliceai-llm", "rc"): "20.10.2025",  # I
    ("aliceai-llm", "deprecated"): "20.10.2025",  # I
}

# The 2024 recordings carry no completionTokensDetails; the 2025 ones carry it (empty).
_REPORTS_DETAILS_SINCE_YEAR = 2025

_URI_RE = re.compile(
    r"^gpt://(?P<folder>[a-z0-9]+)/(?P<name>[a-z0-9.-]+)/(?P<version>[a-z]+)"
    r"(?:@(?P<tune>[A-Za-z0-9_-]+))?$"
)

INVALID_MODEL_URI = "invalid model_uri"
EMPTY_MESSAGES = "messages must not be empty"
QUOTA_NAME = "ai.textGenerationCompletionRequestsPerSecond.rate"
ROLES = ("system", "user", "assistant")


@dataclass(frozen=True)
class Model:
    """One served model: where it lives and how it reports itself."""

    folder: str
    name: str
    version: str
    tune: str | None
    model_version: str

    @property
    def reports_usage_details(self) -> bool:
        """Whether usage carries ``completion_tokens_details`` (2025+ models do)."""
        return int(self.model_version.rsplit(".", 1)[-1]) >= _REPORTS_DETAILS_SINCE_YEAR


def lookup(model_uri: str) -> Model | None:
    """The catalogue entry for ``model_uri``, or None when the service would refuse it."""
    match = _URI_RE.match(model_uri)
    if match is None:
        return None
    date = _DATES.get((match["name"], match["version"]))
    if date is None:
        return None
    return Model(match["folder"], match["name"], match["version"], match["tune"], date)


def folder_of(model_uri: str) -> str:
    """The folder part of a URI, even a malformed one (for error prefixes and quotas)."""
    _scheme, _, rest = model_uri.partition("://")
    return rest.split("/", 1)[0]


def too_many_tokens(limit: int, got: int) -> str:
    """The service's cause when the input does not fit the context window."""
    return f"number of input tokens must be no more than {limit}, got {got}"


def invalid_role(role: str) -> str:
    """The service's cause for a message role it does not know."""
    return f"invalid message role '{role}'"


def quota_exceeded(allowed: float) -> str:
    """The service's wording when the folder's requests-per-second quota is spent."""
    return f"{QUOTA_NAME} rate quota limit exceed: allowed {allowed:g} requests"


def session_prefix(folder: str, client_request_id: str) -> str:
    """``Error in session internal_id=…&request_id=…&client_request_id=…&folder_id=…: ``.

    The real ``internal_id`` is four dash-separated hex words, ``request_id`` a UUID,
    ``client_request_id`` the ``x-client-request-id`` the SDK sent (empty without one).
    """
    hexes = uuid.uuid4().hex
    internal = "-".join(hexes[i : i + 8] for i in range(0, 32, 8))
    return (
        f"Error in session internal_id={internal}&request_id={uuid.uuid4()}"
        f"&client_request_id={client_request_id}&folder_id={folder}: "
    )
