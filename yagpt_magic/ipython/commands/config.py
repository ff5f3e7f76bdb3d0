"""``%chat config``: effective settings and where each came from; never a secret's value."""

from __future__ import annotations

import argparse
import os

from ...core.models import model_name
from ...core.session import ChatSession
from ...display.reply import Table
from ...service.connection import (
    resolve_chat_endpoint,
    resolve_credential,
    resolve_endpoint,
    resolve_folder,
    resolve_insecure,
)
from . import Context, Parser, thread_parser

SETTINGS = (
    "model", "model_version", "temperature", "max_tokens", "system_prompt", "stream",
    "context_window", "timeout", "data_logging", "reasoning_mode", "verbose_errors",
    "allow_html", "image_hosts", "tools", "tool_calls", "max_tool_rounds", "tool_result_limit",
)  # fmt: skip


def flagged(session: ChatSession, thread: str) -> list[tuple[str, str, str]]:
    """Settings of the thread's last turn that a per-cell flag changed from the config."""
    found = session.threads.get(thread)
    if found is None or not found.turns:
        return []
    settings = session.settings
    index, turn = len(found.turns) - 1, found.turns[-1]
    source = f"per-cell flag (turn {index} of {thread!r})"
    rows = []
    model = model_name(turn.model)
    if model and model != model_name(settings.model):
        rows.append(("model", model, source))
    for name in ("temperature", "max_tokens"):
        value = turn.settings.get(name)
        if value is not None and value != getattr(settings, name):
            rows.append((name, repr(value), source))
    return rows


def parser() -> Parser:
    return thread_parser("config")


def run(ctx: Context, args: argparse.Namespace) -> Table:
    session, live, env = ctx.session, ctx.live, os.environ
    settings = session.settings
    rows: list[tuple[str, str, str]] = []
    for name in SETTINGS:
        value = getattr(settings, name)
        shown = repr(list(value)) if isinstance(value, tuple) else repr(value)
        rows.append((name, shown, settings.source(name)))

    if live.offline is not None:
        offline = "%chat offline (built-in emulator)"
        rows.append(("endpoint", live.offline.address, offline))
        rows.append(("chat_endpoint", live.offline.chat_url, offline))
    elif env.get("YAGPT_OFFLINE") == "1":
        starts = "built-in emulator (starts on the first request)"
        rows.append(("endpoint", starts, "env YAGPT_OFFLINE"))
        rows.append(("chat_endpoint", starts, "env YAGPT_OFFLINE"))
    else:
        endpoint, source = resolve_endpoint(settings.endpoint, env)
        rows.append(("endpoint", endpoint or "SDK default", source))
        chat_url, source = resolve_chat_endpoint(settings.chat_endpoint, env)
        rows.append(("chat_endpoint", chat_url or "SDK default (from the endpoint)", source))
    insecure = resolve_insecure(settings.insecure, env) or live.offline is not None
    source = "%config / env YAGPT_INSECURE / offline" if insecure else "default"
    rows.append(("insecure", repr(insecure), source))
    folder, source = resolve_folder(settings.folder_id, live.login_folder, env)
    rows.append(("folder_id", folder or "(unset)", source))
    credential = resolve_credential(live.login, env, settings.yc_profile)
    if credential is None and env.get("YAGPT_OFFLINE") == "1":
        rows.append(("credential", "the emulator's own key (hidden)", "env YAGPT_OFFLINE"))
    elif credential is None:
        rows.append(("credential", "(none)", "set YC_API_KEY or run %chat login / %chat offline"))
    else:
        shown = credential.value if credential.kind == "yc_profile" else "(hidden)"
        rows.append(("credential", f"{credential.kind} {shown}", credential.source))
    rows += flagged(session, args.thread)
    title = "Effective settings (per-cell flags override model, temperature, max_tokens, stream)"
    return Table(("setting", "value", "source"), rows, title)
