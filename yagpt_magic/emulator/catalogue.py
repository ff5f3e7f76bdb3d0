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
- The documented limits (:mod:`.limits`) have no recorded refusal: their quota names
  below are guessed after the recorded ones, and their wording follows the rate quota's.

Two APIs, two lists. The Text Generation API (gRPC) serves the YandexGPT family
(``MODEL_NAMES``); the OpenAI-compatible HTTP API serves ``CHAT_MODELS``: the same
YandexGPT models plus the open models (Qwen3, gpt-oss, Gemma), exactly the text models of
the service's recorded ``GET /v1/models`` (tests/real_traffic/chat/
test_completion_uri_parser.yaml, November 2025). A model only one API serves is refused
by the other: the gRPC one answers ``invalid model_uri`` as for any model it does not
serve; the HTTP one answers 404 (see :func:`chat_model_not_found`).

Batch-only models: the batch service also runs models the interactive API does not
serve. Those named here are the ones in the SDK's recorded batch tasks
(``tests/batch/cassettes``: gemma-3-12b-it, qwen2.5-7b-instruct, llama3.3-70b-instruct,
mixtral-8x22b-instruct-v0.1, deepseek-r1-distill-llama-70b) and in its batch example
(``examples/sync/completions/batch.py``: qwen2.5-32b-instruct); only their ``latest``
branch is recorded, so only it is served.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any

#: Model names the catalogue serves.
MODEL_NAMES = ("yandexgpt", "yandexgpt-lite", "aliceai-llm")
#: Branches every model has.
VERSIONS = ("latest", "rc", "deprecated")
#: Models only the batch service runs (see the module docstring for where each is from).
BATCH_MODEL_NAMES = (
    "gemma-3-12b-it",
    "qwen2.5-7b-instruct",
    "qwen2.5-32b-instruct",
    "llama3.3-70b-instruct",
    "mixtral-8x22b-instruct-v0.1",
    "deepseek-r1-distill-llama-70b",
)
#: The branch a batch-only model is served on, and the date it reports (invented: batch
#: results carry no model_version).
BATCH_VERSION = "latest"
BATCH_MODEL_DATE = "01.04.2025"

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
#: The quota behind each documented limit (a field of .limits.Limits); guessed names.
LIMIT_QUOTAS = {
    "concurrent_generations": "ai.textGenerationCompletionConcurrentGenerations.count",
    "async_submit_rps": "ai.textGenerationAsyncCompletionRequestsPerSecond.rate",
    "async_submit_per_hour": "ai.textGenerationAsyncCompletionRequestsPerHour.rate",
    "operation_poll_rps": "ai.textGenerationAsyncOperationGetRequestsPerSecond.rate",
    "tokenizer_rps": "ai.textGenerationTokenizeRequestsPerSecond.rate",
}
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


def lookup_for_batch(model_uri: str) -> Model | None:
    """The model a batch task may run: any interactive one, or a batch-only one."""
    model = lookup(model_uri)
    if model is not None:
        return model
    match = _URI_RE.match(model_uri)
    if match is None or match["name"] not in BATCH_MODEL_NAMES:
        return None
    if match["version"] != BATCH_VERSION:
        return None
    return Model(match["folder"], match["name"], match["version"], match["tune"], BATCH_MODEL_DATE)


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


def limit_exceeded(limit: str, allowed: float) -> str:
    """The refusal for a documented limit (a field name of .limits.Limits), unprefixed."""
    name = LIMIT_QUOTAS[limit]
    if limit == "concurrent_generations":
        return f"{name} quota limit exceed: allowed {allowed:g} concurrent generations"
    return f"{name} rate quota limit exceed: allowed {allowed:g} requests"


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


# -- the OpenAI-compatible HTTP API ----------------------------------------------------


@dataclass(frozen=True)
class ChatModel:
    """A model the OpenAI-compatible API serves, and how its replies are shaped.

    ``open`` models (served by an open-source inference engine) answer with
    ``chatcmpl-…`` ids, name the model without its folder, stream one token a chunk,
    stream tool calls as argument fragments under ``chatcmpl-tool-…`` ids and end a stream
    with a usage chunk; YandexGPT models echo the URI, stream larger pieces, send tool
    calls whole with the function name as id, and send no usage chunk (all recorded in
    tests/real_traffic/chat). ``tool_head`` is how the first tool-call chunk of an open
    model looks: ``"qwen"`` (type ``function``, empty arguments) or ``"gemma"`` (empty
    type, the first argument fragment in it).

    Token counts: YandexGPT models count as on the gRPC API (:mod:`.tokenizer`). An open
    model's chat template frames a request with fewer tokens (``request_framing``, then
    ``message_framing`` a message) and puts a preamble before offered tools
    (``tools_preamble``, once). Calibrated on the recordings, erring high by a few tokens:
    Qwen3's "hello" costs 9 (emulator 11), its 2-, 4- and 6-message chat 26, 56, 87
    (27, 60, 92); the recorded calculator tool requests 190 and 226 (192, 226); Gemma's
    304 and 336 (304, 338) and its text-and-image request 276 (276).
    """

    name: str
    versions: tuple[str, ...]
    owner: str
    open: bool
    reads_images: bool = False
    window: int = 32_768
    tool_head: str = "qwen"
    request_framing: int | None = None
    message_framing: int | None = None
    tools_preamble: int = 0


def _open(name: str, owner: str, window: int, tools_preamble: int, **shape: Any) -> ChatModel:
    """An open model: ``latest`` only, its chat template's framing (see ChatModel)."""
    return ChatModel(
        name, ("latest",), owner, open=True, window=window, request_framing=4,
        message_framing=5, tools_preamble=tools_preamble, **shape,
    )


#: The text models of the recorded ``GET /v1/models``, in its order, with their owners.
#: Windows are the documented context lengths (the package's models table uses the same).
#: gpt-oss is not recorded: it gets Qwen3's framing and tool preamble.
CHAT_MODELS: tuple[ChatModel, ...] = (
    ChatModel("aliceai-llm", ("latest",), "Yandex", open=False),
    _open("gpt-oss-120b", "OpenAI", 131_072, 62),
    _open("gpt-oss-20b", "OpenAI", 131_072, 62),
    _open("gemma-3-27b-it", "Google", 131_072, 174, reads_images=True, tool_head="gemma"),
    _open("qwen3-235b-a22b-fp8", "Alibaba", 262_144, 62),
    ChatModel("yandexgpt-lite", ("latest", "rc"), "Yandex", open=False),
    ChatModel("yandexgpt", ("latest", "rc"), "Yandex", open=False),
)

_CHAT_BY_NAME = {model.name: model for model in CHAT_MODELS}

#: What an image part costs in input tokens (the service documents 256 an image).
IMAGE_TOKENS = 256

_CHAT_URI_RE = re.compile(
    r"^gpt://(?P<folder>[A-Za-z0-9]+)/(?P<name>[A-Za-z0-9._-]+)/(?P<version>[A-Za-z0-9._-]+)$"
)


def parse_chat_uri(model_uri: str) -> tuple[str, str, str] | None:
    """(folder, name, version) of a well-formed ``gpt://FOLDER/NAME/VERSION``, else None."""
    match = _CHAT_URI_RE.match(model_uri)
    if match is None:
        return None
    return match["folder"], match["name"], match["version"]


def lookup_chat(model_uri: str) -> ChatModel | None:
    """The HTTP API's model for a well-formed URI, or None when it does not serve it."""
    parts = parse_chat_uri(model_uri)
    if parts is None:
        return None
    model = _CHAT_BY_NAME.get(parts[1])
    if model is None or parts[2] not in model.versions:
        return None
    return model


def chat_model_ids(folder: str) -> list[str]:
    """Every ``gpt://FOLDER/NAME/VERSION`` the HTTP API lists for a folder, in order."""
    return [f"gpt://{folder}/{m.name}/{v}" for m in CHAT_MODELS for v in m.versions]


def chat_model_not_found(model_uri: str) -> str:
    """The 404 for a model the HTTP API does not serve (OpenAI's wording: no error of the
    real service is recorded, and it follows OpenAI's error conventions)."""
    return f"The model `{model_uri}` does not exist or you do not have access to it."


def bad_chat_uri(model_uri: str) -> str:
    """The 400 for a ``model`` that is not ``gpt://FOLDER/NAME/VERSION``."""
    return f"invalid model uri '{model_uri}': expected gpt://<folder_id>/<model>/<version>"


def no_images(model_name: str) -> str:
    """The 400 for an image part sent to a model that reads only text."""
    return f"model {model_name} does not support image inputs"
