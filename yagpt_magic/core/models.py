"""The models the extension knows and their context windows: plain data, no SDK.

Windows are the context lengths Yandex AI Studio documents for its common-instance
text models ("Модели базового инстанса", https://yandex.cloud/ru/docs/foundation-models/
concepts/yandexgpt/models, as of November 2025). A model not listed gets
``DEFAULT_WINDOW``; ``%config ChatMagics.context_window`` overrides every model.
"""

from __future__ import annotations

from dataclasses import dataclass

#: The window of a model this table does not know (YandexGPT's).
DEFAULT_WINDOW = 32_768


@dataclass(frozen=True)
class Model:
    """A served completions model: the name in its URI, what it is, its window."""

    name: str
    title: str
    window: int


MODELS: tuple[Model, ...] = (
    Model("yandexgpt", "YandexGPT Pro", 32_768),
    Model("yandexgpt-lite", "YandexGPT Lite", 32_768),
    Model("aliceai-llm", "Alice AI LLM", 32_768),
    Model("qwen3-235b-a22b-fp8", "Qwen3 235B A22B", 262_144),
    Model("gpt-oss-120b", "gpt-oss 120B", 131_072),
    Model("gpt-oss-20b", "gpt-oss 20B", 131_072),
    Model("gemma-3-27b-it", "Gemma 3 27B", 131_072),
    Model("llama", "Llama 3.3 70B", 8_192),
    Model("llama-lite", "Llama 3.1 8B", 8_192),
)

_BY_NAME = {model.name: model for model in MODELS}


def model_name(model: str) -> str:
    """``yandexgpt``, ``yandexgpt-lite/rc`` or ``gpt://folder/NAME/version`` -> NAME."""
    if "://" in model:
        parts = model.split("://", 1)[1].split("/")
        return parts[1] if len(parts) > 1 else parts[0]
    return model.split("/", 1)[0]


def context_window(model: str, override: int | None = None) -> int:
    """The window to fit a request into: the override if set, else the model's own."""
    if override:
        return override
    known = _BY_NAME.get(model_name(model))
    return known.window if known is not None else DEFAULT_WINDOW


def known(model: str) -> bool:
    return model_name(model) in _BY_NAME
