"""The session's settings: plain data that every view reads, fed by ``ChatMagics``.

``%config ChatMagics.NAME = ...`` and ``ipython_config.py`` stay the user's way to
set them (traitlets on the magics class), but the traitlets only feed this object:
the session, the commands and the widget read ``Settings`` and never the magics.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Literal

#: The Text Generation API's modes, then the OpenAI-compatible API's efforts (``models``).
ReasoningMode = Literal["", "disabled", "enabled_hidden", "low", "medium", "high"]
ToolPolicy = Literal["ask", "auto", "never"]


@dataclass
class Settings:
    """Every user setting of SPEC 5, with its default."""

    model: str = "yandexgpt"
    model_version: str = "latest"
    temperature: float = 0.6
    max_tokens: int = 2000
    system_prompt: str = ""
    stream: bool = True
    #: 0: each model's own window (``models.context_window``); else it holds for every model.
    context_window: int = 0
    timeout: float = 30.0
    folder_id: str = ""
    endpoint: str = ""
    #: The OpenAI-compatible API's base URL ("": env YAGPT_CHAT_ENDPOINT, else the SDK's).
    chat_endpoint: str = ""
    insecure: bool = False
    yc_profile: str = ""
    data_logging: bool = False
    reasoning_mode: ReasoningMode = ""
    verbose_errors: bool = False
    allow_html: bool = False
    image_hosts: tuple[str, ...] = ()
    tools: tuple[str, ...] = ()
    tool_calls: ToolPolicy = "ask"
    max_tool_rounds: int = 5
    tool_result_limit: int = 4000
    #: ``%%chat --map``: most requests in flight at once (the rate adapts below it).
    max_concurrency: int = 32
    #: ``%%chat --map``: where finished rows are kept ("" = the user's cache directory).
    cache_dir: str = ""
    #: The chat widget: which key sends ("enter": Shift+Enter is a new line; "shift-enter":
    #: the reverse) and the height its history scrolls within (any CSS length).
    widget_send_key: Literal["enter", "shift-enter"] = "enter"
    widget_height: str = "28em"
    #: Names the user set (``%config`` or a config file), for ``%chat config``'s sources.
    configured: set[str] = field(default_factory=set, compare=False, repr=False)

    def set(self, name: str, value: Any, *, configured: bool = True) -> None:
        """Change one setting (a traitlet changed); lists become tuples, so it stays plain."""
        if name not in NAMES:
            raise AttributeError(f"no setting named {name!r}")
        setattr(self, name, tuple(value) if isinstance(value, list) else value)
        if configured:
            self.configured.add(name)

    def source(self, name: str) -> str:
        """Where a setting's value came from, as ``%chat config`` shows it."""
        return "%config" if name in self.configured else "default"


#: The ``%config`` section the user sets these in: the magics class that feeds them.
CONFIG_SECTION = "ChatMagics"


def config_line(name: str) -> str:
    """How the user sets ``name``: ``%config ChatMagics.NAME``, for messages and tables."""
    return f"%config {CONFIG_SECTION}.{name}"


#: The setting names, in the order ``%chat config`` lists them.
NAMES: tuple[str, ...] = tuple(f.name for f in fields(Settings) if f.name != "configured")
