"""The model table (SPEC 15): a user picks a model, the table picks the API."""

from __future__ import annotations

import pytest

from yagpt_magic.core import models
from yagpt_magic.core.models import (
    OPENAI_COMPATIBLE,
    TEXT_GENERATION,
    api_for,
    context_window,
    reads_images,
    reasoning_value,
    served_elsewhere,
)


@pytest.mark.parametrize("model", [
    "yandexgpt", "yandexgpt/rc", "yandexgpt-lite", "aliceai-llm",
    "yandexgpt-lite/latest@tamr1234", "gpt://b1g/yandexgpt/latest",
    "gpt://b1g/qwen3-235b-a22b-fp8/latest@mytune",  # a fine-tune is a Text Generation model
    "some-new-model", "gpt://b1g/some-new-model/latest",
])
def test_yandexgpt_alice_fine_tunes_and_unknown_models_go_to_the_text_generation_api(
    model: str,
) -> None:
    assert api_for(model) == TEXT_GENERATION


@pytest.mark.parametrize("model", [
    "qwen3-235b-a22b-fp8", "gpt-oss-120b", "gpt-oss-20b", "gemma-3-27b-it",
    "qwen3-235b-a22b-fp8/latest", "gpt://b1g/gemma-3-27b-it/latest",
])
def test_qwen_gpt_oss_and_gemma_go_to_the_openai_compatible_api(model: str) -> None:
    assert api_for(model) == OPENAI_COMPATIBLE


def test_windows_are_the_documented_ones_and_the_override_holds_for_every_model() -> None:
    assert context_window("qwen3-235b-a22b-fp8") == 262_144
    assert context_window("gemma-3-27b-it") == 131_072
    assert context_window("gpt-oss-20b") == 131_072
    assert context_window("yandexgpt/rc") == 32_768
    assert context_window("unknown-model") == models.DEFAULT_WINDOW
    assert context_window("qwen3-235b-a22b-fp8", 4_000) == 4_000


def test_only_gemma_reads_images() -> None:
    assert [m.name for m in models.MODELS if reads_images(m.name)] == ["gemma-3-27b-it"]
    assert not reads_images("unknown-model")


@pytest.mark.parametrize(("model", "mode", "sent"), [
    ("yandexgpt", "enabled_hidden", "enabled_hidden"),
    ("yandexgpt", "disabled", "disabled"),
    ("yandexgpt", "high", "enabled_hidden"),  # an effort is reasoning, hidden, on gRPC
    ("qwen3-235b-a22b-fp8", "high", "high"),
    ("gpt-oss-20b", "enabled_hidden", "medium"),
    ("gpt-oss-20b", "disabled", None),  # this API cannot switch reasoning off: ask none
    ("gemma-3-27b-it", "high", None),  # takes no reasoning setting: none is sent
    ("qwen3-235b-a22b-fp8", None, None),
    ("unknown-model", "enabled_hidden", "enabled_hidden"),
])
def test_each_model_gets_the_nearest_reasoning_setting_it_takes(
    model: str, mode: str | None, sent: str | None
) -> None:
    assert reasoning_value(model, mode) == sent


def test_the_line_for_a_refused_model_names_both_apis_and_the_command() -> None:
    line = served_elsewhere("gpt://b1g/mistral-large/latest")
    assert "'mistral-large'" in line
    assert "Text Generation API" in line and "OpenAI-compatible API" in line
    assert "qwen3-235b-a22b-fp8" in line and "%chat models" in line
    assert "\n" not in line
