"""``%chat models``: the models the extension knows: window, API, images; the current one."""

from __future__ import annotations

import argparse

from ...core.models import API_TITLES, MODELS, api_for, context_window, lookup, model_name
from ...core.settings import config_line
from ...display.reply import Table
from . import Context, Parser

#: The API column: short, since the title says what each one is.
_API = {"text-generation": "Text Generation (gRPC)", "openai-compatible": "OpenAI-compatible"}


def parser() -> Parser:
    return Parser("models")


def run(ctx: Context, args: argparse.Namespace) -> Table:
    settings = ctx.session.settings
    current = model_name(settings.model)
    override = settings.context_window
    rows = [
        (model.name, model.title, f"{model.window:,}",
         f"{override:,} (%config)" if override else f"{model.window:,}",
         _API[model.api], "yes" if model.images else "",
         "current" if model.name == current else "")
        for model in MODELS
    ]
    if lookup(settings.model) is None or "@" in settings.model:
        fitted = context_window(settings.model, override)
        rows.append((settings.model, "(not in the table)", "", f"{fitted:,}",
                     _API[api_for(settings.model)], "", "current"))
    setting = config_line("context_window")
    title = (f"Context windows: {setting} = {override:,} overrides every model" if override
             else f"Context windows (set {setting} to override every model)")
    title += (f". The model picks the API: {API_TITLES['openai-compatible']} for the models "
              "that have no other, else the Text Generation API (gRPC)")
    return Table(("model", "name", "window", "fitted to", "API", "images", ""), rows, title)
