"""``%chat models``: the models the extension knows, their context windows, the current one."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..models import MODELS, context_window, known, model_name
from ..view import Table
from . import Parser

if TYPE_CHECKING:
    from ..magics import ChatMagics


def run(magics: ChatMagics, argv: list[str]) -> Table:
    Parser("models").parse_args(argv)
    current = model_name(magics.model)
    override = magics.context_window
    rows = [
        (model.name, model.title, f"{model.window:,}",
         f"{override:,} (%config)" if override else f"{model.window:,}",
         "current" if model.name == current else "")
        for model in MODELS
    ]
    if not known(magics.model):
        fitted = context_window(magics.model, override)
        rows.append((current, "(not in the table)", "", f"{fitted:,}", "current"))
    title = (f"Context windows: %config ChatMagics.context_window = {override:,} overrides every "
             "model" if override else
             "Context windows (set %config ChatMagics.context_window to override every model)")
    return Table(("model", "name", "window", "fitted to", ""), rows, title)
