"""The model table (SPEC 15): a user picks a model, the table picks the API."""

from __future__ import annotations

from typing import Any

import pytest

from yagpt_magic.core import models
from yagpt_magic.core.models import (
    OPENAI_COMPATIBLE,
    TEXT_GENERATION,
    ModelRef,
    api_for,
    context_window,
    model_name,
    name_and_version,
    parse_model,
    reads_images,
    reasoning_value,
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


@pytest.mark.parametrize(("model", "ref"), [
    ("yandexgpt", ModelRef("yandexgpt")),
    ("yandexgpt-lite/rc", ModelRef("yandexgpt-lite", "rc")),
    ("yandexgpt-lite/latest@tamr1234", ModelRef("yandexgpt-lite", "latest@tamr1234")),
    ("gpt://b1g/yandexgpt/rc", ModelRef("yandexgpt", "rc", "b1g", uri=True)),
    ("gpt://b1g/yandexgpt-lite/latest@tamr1", ModelRef("yandexgpt-lite", "latest@tamr1", "b1g",
                                                       uri=True)),
    # How the OpenAI-compatible API names the model that answered (recorded traffic).
    ("gpt://qwen3-235b-a22b-fp8/latest", ModelRef("qwen3-235b-a22b-fp8", "latest", uri=True)),
    ("gpt://b1g/yandexgpt", ModelRef("yandexgpt", "", "b1g", uri=True)),
])
def test_every_way_of_writing_a_model_reads_as_its_name_version_and_folder(
    model: str, ref: ModelRef,
) -> None:
    assert parse_model(model) == ref
    assert model_name(model) == ref.name


def test_the_model_that_answered_over_http_is_known_by_its_name() -> None:
    assert api_for("gpt://qwen3-235b-a22b-fp8/latest") == OPENAI_COMPATIBLE
    assert context_window("gpt://gemma-3-27b-it/latest") == 131_072
    assert parse_model("gpt://gemma-3-27b-it/latest").short == "gemma-3-27b-it/latest"
    assert parse_model("gpt://b1g/yandexgpt/rc").short == "yandexgpt/rc"


@pytest.mark.parametrize(("model", "asked"), [
    ("yandexgpt", ("yandexgpt", "latest")),
    ("yandexgpt-lite/rc", ("yandexgpt-lite", "rc")),
    ("yandexgpt-lite/latest@tamr1", ("yandexgpt-lite", "latest@tamr1")),
    ("gpt://b1g/yandexgpt/rc", ("gpt://b1g/yandexgpt/rc", "latest")),  # the SDK takes a URI whole
])
def test_the_sdk_is_asked_for_the_written_version_else_the_configured_one(
    model: str, asked: tuple[str, str],
) -> None:
    assert name_and_version(model, "latest") == asked


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


def test_chat_models_shows_window_api_and_images_per_model(shell: Any) -> None:
    table = shell.run_line_magic("chat", "models")
    rows = {row[0]: row for row in table.rows}
    assert rows["qwen3-235b-a22b-fp8"][2:6] == ("262,144", "262,144", "OpenAI-compatible", "")
    assert rows["gemma-3-27b-it"][4:6] == ("OpenAI-compatible", "yes")
    assert rows["yandexgpt"][4:] == ("Text Generation (gRPC)", "", "current")
    plain = table._repr_mimebundle_()["text/plain"]
    assert "OpenAI-compatible API (HTTP)" in plain and "images" in plain
    shell.run_cell("%config ChatMagics.model = 'yandexgpt-lite/latest@tune1'").raise_error()
    rows = {row[0]: row for row in shell.run_line_magic("chat", "models").rows}
    assert rows["yandexgpt-lite/latest@tune1"][1:] == (
        "(not in the table)", "", "32,768", "Text Generation (gRPC)", "", "current")
