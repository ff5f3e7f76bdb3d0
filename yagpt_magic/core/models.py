"""The models the extension knows: each one's window, API, images and reasoning; no SDK.

From the service's models page ("Модели базового инстанса",
https://yandex.cloud/ru/docs/foundation-models/concepts/yandexgpt/models, and
https://aistudio.yandex.ru/docs/ai-studio/concepts/generation/models, as of November 2025):
YandexGPT and Alice AI are served through the Text Generation API (gRPC, the SDK's
``models.completions``); Qwen3, gpt-oss and Gemma only through the OpenAI-compatible API
(HTTP, the SDK's ``chat.completions``). A user picks a model; the extension picks the API.
A model this table does not know (a fine-tune, a ``gpt://`` URI of another model) goes to
the Text Generation API and gets ``DEFAULT_WINDOW``; ``%config ChatMagics.context_window``
overrides every model's window.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .credentials import refuse_secret
from .errors import UsageProblem

#: The window of a model this table does not know (YandexGPT's).
DEFAULT_WINDOW = 32_768

#: The two APIs a model can be served through (``Backend.api`` of the live backends).
Api = Literal["text-generation", "openai-compatible"]
TEXT_GENERATION: Api = "text-generation"
OPENAI_COMPATIBLE: Api = "openai-compatible"
#: How each API reads in one line (``%chat models``, errors).
API_TITLES: dict[str, str] = {
    TEXT_GENERATION: "Text Generation API (gRPC)",
    OPENAI_COMPATIBLE: "OpenAI-compatible API (HTTP)",
}

#: ``reasoning_mode`` values of the Text Generation API, and ``reasoning_effort`` values
#: of the OpenAI-compatible one (the SDK's ``ChatReasoningMode``).
GRPC_REASONING = ("disabled", "enabled_hidden")
HTTP_REASONING = ("low", "medium", "high")


@dataclass(frozen=True)
class Model:
    """A served completions model: the name in its URI, what it is, and what it takes."""

    name: str
    title: str
    window: int
    api: Api = TEXT_GENERATION
    #: Whether the model reads images in a message (SPEC 15).
    images: bool = False
    #: The reasoning settings it takes (``GRPC_REASONING``, ``HTTP_REASONING`` or none).
    reasoning: tuple[str, ...] = GRPC_REASONING


MODELS: tuple[Model, ...] = (
    Model("yandexgpt", "YandexGPT Pro", 32_768),
    Model("yandexgpt-lite", "YandexGPT Lite", 32_768),
    Model("aliceai-llm", "Alice AI LLM", 32_768),
    Model("qwen3-235b-a22b-fp8", "Qwen3 235B A22B", 262_144, OPENAI_COMPATIBLE,
          reasoning=HTTP_REASONING),
    Model("gpt-oss-120b", "gpt-oss 120B", 131_072, OPENAI_COMPATIBLE,
          reasoning=HTTP_REASONING),
    Model("gpt-oss-20b", "gpt-oss 20B", 131_072, OPENAI_COMPATIBLE, reasoning=HTTP_REASONING),
    Model("gemma-3-27b-it", "Gemma 3 27B", 131_072, OPENAI_COMPATIBLE, images=True,
          reasoning=()),
    Model("llama", "Llama 3.3 70B", 8_192, reasoning=()),
    Model("llama-lite", "Llama 3.1 8B", 8_192, reasoning=()),
)

_BY_NAME = {model.name: model for model in MODELS}


#: The versions a model is served at; how a two-part URI tells ``NAME/VERSION`` from
#: ``FOLDER/NAME``.
VERSIONS = ("latest", "rc", "deprecated")


@dataclass(frozen=True)
class ModelRef:
    """A model as a user writes it or the service names it, in its parts.

    The forms: ``yandexgpt``, ``yandexgpt-lite/rc``, ``NAME/latest@tune`` (a fine-tune),
    ``gpt://FOLDER/NAME/VERSION`` (the SDK's and the Text Generation API's URI) and
    ``gpt://NAME/VERSION`` (how the OpenAI-compatible API names the model it ran).
    """

    #: The model's name in ``MODELS`` (a fine-tune's: its base's).
    name: str
    #: ``rc``, ``latest@tune``; "" when none is written.
    version: str = ""
    #: A URI's folder; "" when none is written.
    folder: str = ""
    #: Whether it was written as a URI (``gpt://…``), which the SDK takes whole.
    uri: bool = False

    @property
    def short(self) -> str:
        """``NAME/VERSION`` (or ``NAME``): what a view shows for the model that answered."""
        return f"{self.name}/{self.version}" if self.version else self.name


def parse_model(model: str) -> ModelRef:
    """The one reader of a model's name, version and folder, in any of ``ModelRef``'s forms."""
    if "://" in model:
        parts = model.split("://", 1)[1].split("/")
        if len(parts) >= 3:
            return ModelRef(parts[1], "/".join(parts[2:]), parts[0], uri=True)
        if len(parts) == 2 and parts[1].split("@", 1)[0] in VERSIONS:
            return ModelRef(parts[0], parts[1], uri=True)
        if len(parts) == 2:
            return ModelRef(parts[1], folder=parts[0], uri=True)
        return ModelRef(parts[0], uri=True)
    name, _, version = model.partition("/")
    return ModelRef(name.split("@", 1)[0], version)


def model_name(model: str) -> str:
    """``yandexgpt``, ``yandexgpt-lite/rc``, ``NAME/latest@suffix`` or a ``gpt://`` URI -> NAME."""
    return parse_model(model).name


def name_and_version(model: str, version: str) -> tuple[str, str]:
    """What to ask the SDK for: ``NAME/VERSION`` split (``version`` if none is written);
    a bare name and a ``gpt://`` URI pass whole, as the SDK takes them."""
    ref = parse_model(model)
    if ref.uri or "/" not in model:
        return model, version
    return ref.name, ref.version or version


def lookup(model: str) -> Model | None:
    """The table's entry for ``model`` (any of the forms ``model_name`` takes), if any."""
    return _BY_NAME.get(model_name(model))


def context_window(model: str, override: int | None = None) -> int:
    """The window to fit a request into: the override if set, else the model's own."""
    if override:
        return override
    found = lookup(model)
    return found.window if found is not None else DEFAULT_WINDOW


def known(model: str) -> bool:
    return lookup(model) is not None


def api_for(model: str) -> Api:
    """The API that serves ``model``: the table's, else the Text Generation API.

    A fine-tune (``NAME/latest@suffix``, ``gpt://…/NAME/latest@suffix``) is a tune of a
    Text Generation model, whatever its base is called.
    """
    found = lookup(model)
    if found is None or "@" in model:
        return TEXT_GENERATION
    return found.api


def reads_images(model: str) -> bool:
    found = lookup(model)
    return found is not None and found.images


def image_models() -> list[str]:
    """The names of the models that read images, for the refusal that names them."""
    return [model.name for model in MODELS if model.images]


def reasoning_value(model: str, mode: str | None) -> str | None:
    """The reasoning setting to send with ``model``, or None to send none.

    ``reasoning_mode`` takes both APIs' words; each model gets the nearest one it takes:
    ``enabled_hidden`` is ``medium`` effort on the OpenAI-compatible API, an effort is
    ``enabled_hidden`` on the Text Generation API, and ``disabled`` there is no effort
    asked for here (gpt-oss always reasons a little). A model that takes no reasoning
    setting (Gemma) is sent none, so a notebook-wide setting never fails its turns.
    """
    if not mode:
        return None
    found = lookup(model)
    takes = found.reasoning if found is not None else GRPC_REASONING
    if mode in takes:
        return mode
    if takes == HTTP_REASONING:
        return "medium" if mode == "enabled_hidden" else None
    if takes == GRPC_REASONING and mode in HTTP_REASONING:
        return "enabled_hidden"
    return None


def checked_model(value: str, where: str) -> str:
    """A model name as a user typed it (``-m``, the widget's model box), or a one-line
    ``UsageProblem`` naming ``where``: it goes into the model URI the service sees and the
    notebook saves, so it is never empty and never shaped like a credential."""
    name = value.strip()
    if not name:
        raise UsageProblem(f"{where} needs a model name, e.g. yandexgpt or yandexgpt-lite/rc.")
    return refuse_secret(name, where)
