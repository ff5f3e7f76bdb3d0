"""``%chat models``: the models the extension knows, their context windows, the current one."""

from __future__ import annotations

import argparse

from ...core.models import MODELS, context_window, known, model_name
from ...core.settings import config_line
from ...display.reply import Table
from . import Context, Parser


def parser() -> Parser:
    return Parser("models")


def run(ctx: Context, args: argparse.Namespace) -> Table:
    settings = ctx.session.settings
    current = model_name(settings.model)
    override = settings.context_window
    rows = [
        (model.name, model.title, f"{model.window:,}",
         f"{override:,} (%config)" if override else f"{model.window:,}",
         "current" if model.name == current else "")
        for model in MODELS
    ]
    if not known(settings.model):
        fitted = context_window(settings.model, override)
        rows.append((current, "(not in the table)", "", f"{fitted:,}", "current"))
    setting = config_line("context_window")
    title = (f"Context windows: {setting} = {override:,} overrides every model" if override
             else f"Context windows (set {setting} to override every model)")
    return Table(("model", "name", "window", "fitted to", ""), rows, title)
