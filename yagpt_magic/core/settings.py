"""The session's settings: plain data that every view reads, fed by ``ChatMagics``.

``%config ChatMagics.NAME = ...`` and ``ipython_config.py`` stay the user's way to
set them (traitlets on the magics class), but the traitlets only feed this object:
the session, the commands and the widget read ``Settings`` and never the magics.

Each setting is written once, as a field of ``Settings``: its default, the help text
``%config ChatMagics`` shows, and the range it must be in. The traitlets are built from
these fields (``ipython/magics.py``), and every check of a value, a traitlet's or a
per-cell flag's (``--temperature``), goes through ``problem``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any, Literal, get_args

#: The Text Generation API's modes, then the OpenAI-compatible API's efforts (``models``).
ReasoningMode = Literal["", "disabled", "enabled_hidden", "low", "medium", "high"]
ToolPolicy = Literal["ask", "auto", "never"]
SendKey = Literal["enter", "shift-enter"]

#: A check of a value: whether it is allowed, and the rule a refusal states.
Rule = tuple[Callable[[Any], bool], str]

BETWEEN_0_AND_1: Rule = (lambda value: 0.0 <= value <= 1.0, "must be between 0 and 1")
POSITIVE: Rule = (lambda value: value > 0, "must be a positive number")
POSITIVE_TOKENS: Rule = (lambda value: value > 0, "must be a positive number of tokens")
#: A window of 0 means "each model's own" (``models.context_window``).
TOKENS_OR_0: Rule = (lambda value: value >= 0, "must be a positive number of tokens")
POSITIVE_REQUESTS: Rule = (lambda value: value > 0, "must be a positive number of requests")
POSITIVE_SECONDS: Rule = (lambda value: value > 0, "must be a positive number of seconds")
#: Fewer tokens could not even name a frame's shape and columns (``core/frames.py``).
DESCRIPTION_TOKENS: Rule = (lambda value: value >= 100, "must be at least 100 tokens")


def setting(default: Any, help: str, *, rule: Rule | None = None,
            choices: tuple[str, ...] = ()) -> Any:
    """A field of ``Settings``: its default, its ``%config`` help, its range or choices."""
    return field(default=default, metadata={"help": help, "rule": rule, "choices": choices})


@dataclass
class Settings:
    """Every user setting of SPEC 5: its default, help text and range, in one place."""

    model: str = setting("yandexgpt", "Model: yandexgpt, yandexgpt-lite, NAME/VERSION or a gpt:// URI.")  # noqa: E501
    model_version: str = setting("latest", "Model version: latest, rc or deprecated.")
    temperature: float = setting(0.6, "Sampling temperature, 0..1.", rule=BETWEEN_0_AND_1)
    max_tokens: int = setting(2000, "Most tokens a reply may have; also reserved in the context window.", rule=POSITIVE_TOKENS)  # noqa: E501
    system_prompt: str = setting("", "System prompt for new threads.")
    stream: bool = setting(True, "Stream replies as they are written.")
    #: 0: each model's own window (``models.context_window``); else it holds for every model.
    context_window: int = setting(0, "Context window in tokens for every model; 0: each model's own (%chat models).", rule=TOKENS_OR_0)  # noqa: E501
    timeout: float = setting(30.0, "Seconds to wait for the service to start answering (for --no-stream: for the whole answer).", rule=POSITIVE_SECONDS)  # noqa: E501
    folder_id: str = setting("", "Yandex Cloud folder id (else env YC_FOLDER_ID / FOLDER_ID).")
    endpoint: str = setting("", "gRPC endpoint host:port (else env YC_API_ENDPOINT, else the SDK default).")  # noqa: E501
    #: The OpenAI-compatible API's base URL ("": env YAGPT_CHAT_ENDPOINT, else the SDK's).
    chat_endpoint: str = setting("", "Base URL of the OpenAI-compatible API (Qwen3, gpt-oss, Gemma), e.g. http://127.0.0.1:8080/v1/ (else env YAGPT_CHAT_ENDPOINT, else the SDK's).")  # noqa: E501
    insecure: bool = setting(False, "Plaintext gRPC and HTTP, for a local endpoint (or env YAGPT_INSECURE=1).")  # noqa: E501
    yc_profile: str = setting("", "A yc CLI profile to take the credential from.")
    data_logging: bool = setting(False, "Let the service log prompts (sent as enable_server_data_logging).")  # noqa: E501
    reasoning_mode: ReasoningMode = setting("", "Reasoning: '' (unset); disabled or enabled_hidden (Text Generation API); low, medium or high effort (OpenAI-compatible API). Each model gets the nearest it takes.", choices=get_args(ReasoningMode))  # noqa: E501
    verbose_errors: bool = setting(False, "Show the full traceback of a failed request.")
    allow_html: bool = setting(False, "Render raw HTML in replies (unsafe: replies are text you did not write).")  # noqa: E501
    image_hosts: tuple[str, ...] = setting((), "Hosts whose images a reply may load.")
    tools: tuple[str, ...] = setting((), "Functions of the notebook offered to the model on every turn (like --tools).")  # noqa: E501
    tool_calls: ToolPolicy = setting("ask", "Tool calls the model asks for: ask before each, auto (run), never (refuse).", choices=get_args(ToolPolicy))  # noqa: E501
    max_tool_rounds: int = setting(5, "Most rounds of tool calls in one turn before the model must answer.", rule=POSITIVE)  # noqa: E501
    tool_result_limit: int = setting(4000, "Characters of a tool's result sent to the model; longer ones are cut with a note.", rule=POSITIVE)  # noqa: E501
    #: ``%%chat --map``: a ceiling only; the pacer finds the service's limit below it.
    max_concurrency: int = setting(64, "%%chat --map: most requests in flight at once, a ceiling only: the pacer finds the service's limit below it.", rule=POSITIVE_REQUESTS)  # noqa: E501
    #: ``%%chat --map``: where finished rows are kept ("" = the user's cache directory).
    cache_dir: str = setting("", "%%chat --map: directory of the finished-row cache ('' = ~/.cache/yagpt-magic/rows or $XDG_CACHE_HOME).")  # noqa: E501
    #: The chat widget: which key sends ("enter": Shift+Enter is a new line; "shift-enter":
    #: the reverse) and the height its history scrolls within (any CSS length).
    widget_send_key: SendKey = setting("enter", "Chat widget: the key that sends; the other one makes a new line.", choices=get_args(SendKey))  # noqa: E501
    widget_height: str = setting("28em", "Chat widget: the height its history scrolls within (a CSS length).")  # noqa: E501
    #: ``--vars``: the most tokens a DataFrame, Series or array becomes (``core/frames.py``).
    vars_budget: int = setting(2000, "--vars: the most tokens a DataFrame, Series or numpy array becomes (a description: shape, columns with dtypes and nulls, first rows).", rule=DESCRIPTION_TOKENS)  # noqa: E501
    #: Names the user set (``%config`` or a config file), for ``%chat config``'s sources.
    configured: set[str] = field(default_factory=set, compare=False, repr=False)

    def __post_init__(self) -> None:
        for name in CHECKED:
            found = problem(name, getattr(self, name))
            if found is not None:
                raise ValueError(found)

    def set(self, name: str, value: Any, *, configured: bool = True) -> None:
        """Change one setting (a traitlet changed); lists become tuples, so it stays plain.

        A value out of its setting's range is refused with ``ValueError``, as ``%config``
        refuses it, so code that sets the session's settings directly cannot slip past.
        """
        if name not in NAMES:
            raise AttributeError(f"no setting named {name!r}")
        found = problem(name, value)
        if found is not None:
            raise ValueError(found)
        setattr(self, name, tuple(value) if isinstance(value, list) else value)
        if configured:
            self.configured.add(name)

    def source(self, name: str) -> str:
        """Where a setting's value came from, as ``%chat config`` shows it."""
        return "%config" if name in self.configured else "default"


@dataclass(frozen=True)
class SettingSpec:
    """What ``ChatMagics`` needs to build a setting's traitlet: read from its field."""

    name: str
    default: Any
    help: str
    #: The values a setting of a fixed set takes (``reasoning_mode``), else empty.
    choices: tuple[str, ...] = ()
    rule: Rule | None = None


#: Every setting's spec, in the order ``%chat config`` lists them.
SPECS: dict[str, SettingSpec] = {
    f.name: SettingSpec(f.name, f.default, f.metadata["help"], f.metadata["choices"],
                        f.metadata["rule"])
    for f in fields(Settings) if f.name != "configured"
}

#: The setting names, in the order ``%chat config`` lists them.
NAMES: tuple[str, ...] = tuple(SPECS)

#: The settings that have a range to check (the traitlets validate exactly these).
CHECKED: tuple[str, ...] = tuple(name for name, spec in SPECS.items() if spec.rule)


def default(name: str) -> Any:
    """Setting ``name``'s default, for a type that mirrors a setting (``RequestOptions``)."""
    return SPECS[name].default


def problem(name: str, value: Any, *, label: str | None = None) -> str | None:
    """What is wrong with ``value`` for setting ``name``, or None if it is in range.

    One sentence that names the value as ``label`` says it (a per-cell flag such as
    ``--temperature``) or as the setting itself, and says what it must be.
    """
    rule = SPECS[name].rule
    if rule is None or value is None:
        return None
    allowed, must = rule
    if allowed(value):
        return None
    return f"{label or name} {must}, not {value}"


#: The ``%config`` section the user sets these in: the magics class that feeds them.
CONFIG_SECTION = "ChatMagics"


def config_line(name: str) -> str:
    """How the user sets ``name``: ``%config ChatMagics.NAME``, for messages and tables."""
    return f"%config {CONFIG_SECTION}.{name}"
