"""``%%chat`` and ``%chat``: parse arguments, call the session, display. Nothing else.

What lives in the layers below this one reaches the magic through its constructor:
the table of ``%chat`` commands and the ``--map`` runner, both handed in by the
package root (``load_ipython_extension``), the one place that knows every layer.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, line_magic, magics_class, no_var_expand
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring
from IPython.utils.process import arg_split
from traitlets import (
    Bool,
    CaselessStrEnum,
    Float,
    Int,
    List,
    TraitError,
    TraitType,
    Unicode,
    observe,
    validate,
)

from ..core.credentials import CredentialRefused, looks_like_credential, refuse_secret
from ..core.errors import (
    ChatError,
    UsageProblem,
    mask_arguments,
    sendable,
    sentence,
    single_dash,
)
from ..core.models import checked_model
from ..core.settings import CHECKED, NAMES, SPECS, Settings, problem
from ..core.template import split_code
from .cells import CellLog

if TYPE_CHECKING:  # the session and what it needs load on first use: %load_ext stays cheap
    from ..core.backend import RequestOptions
    from ..core.conversation import Thread
    from ..core.session import Answer, ChatSession
    from ..core.structured import Schema
    from ..service.live import LiveBackends
    from .commands import CommandTable

#: ``%%chat --map``: (session, user namespace, the cell's flags, the cell) -> the result.
MapRunner = Callable[["ChatSession", dict[str, Any], argparse.Namespace, str], Any]

_VARS = re.compile(r"(?<!\{)\{(?:(In|Out)\[(-?\d+)\]|([A-Za-z_]\w*))\}(?!\})")


class CellFailed(UsageError):
    """A ``%%chat`` cell or ``%chat`` command failed: one line, no traceback.

    IPython prints a plain ``UsageError`` to stderr and sends no ``error`` output, so a
    notebook runner (papermill, nbclient) reports the failed cell with blank lines where
    the cause should be. A subclass goes through IPython's ordinary error path instead,
    which asks ``_render_traceback_``: one line, in the cell's error output and wherever
    the runner prints it. It is still a ``UsageError`` to anything that catches one.
    """

    def _render_traceback_(self) -> list[str]:
        return [f"UsageError: {self}"]


def _unquote(value: str | None) -> str | None:
    """Strip one pair of surrounding quotes: IPython's argument splitter keeps them."""
    if value and len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value


def _purge_credentials(config: Any) -> None:
    """Drop credential-shaped values from the shell's ``ChatMagics`` config section.

    ``%config`` merges a value into the shell's config even when our validator refuses
    it; left there, it would fail every later ``%reload_ext`` and stay in memory.
    """
    section = config.get("ChatMagics") if hasattr(config, "get") else None
    if not section:
        return
    for name in [n for n, value in section.items() if looks_like_credential(value)]:
        del section[name]


def configurable(name: str) -> TraitType[Any, Any]:
    """The ``%config`` traitlet of setting ``name``: default, help and choices from its field.

    The trait's type follows the default's (a tuple is a list of strings); a setting
    with choices is a case-insensitive enum. Nothing about a setting is written here.
    """
    spec = SPECS[name]
    trait: TraitType[Any, Any]
    if spec.choices:
        trait = CaselessStrEnum(list(spec.choices), default_value=spec.default, help=spec.help)
    elif isinstance(spec.default, bool):
        trait = Bool(spec.default, help=spec.help)
    elif isinstance(spec.default, int):
        trait = Int(spec.default, help=spec.help)
    elif isinstance(spec.default, float):
        trait = Float(spec.default, help=spec.help)
    elif isinstance(spec.default, tuple):
        trait = List(Unicode(), default_value=list(spec.default), help=spec.help)
    else:
        trait = Unicode(spec.default, help=spec.help)
    return trait.tag(config=True)


@magics_class
class ChatMagics(Magics):
    """Chat with YandexGPT: ``%%chat`` for a turn, ``%chat`` for commands."""

    model = configurable("model")
    model_version = configurable("model_version")
    temperature = configurable("temperature")
    max_tokens = configurable("max_tokens")
    system_prompt = configurable("system_prompt")
    stream = configurable("stream")
    context_window = configurable("context_window")
    timeout = configurable("timeout")
    folder_id = configurable("folder_id")
    endpoint = configurable("endpoint")
    chat_endpoint = configurable("chat_endpoint")
    insecure = configurable("insecure")
    yc_profile = configurable("yc_profile")
    data_logging = configurable("data_logging")
    reasoning_mode = configurable("reasoning_mode")
    verbose_errors = configurable("verbose_errors")
    allow_html = configurable("allow_html")
    image_hosts = configurable("image_hosts")
    tools = configurable("tools")
    tool_calls = configurable("tool_calls")
    max_tool_rounds = configurable("max_tool_rounds")
    tool_result_limit = configurable("tool_result_limit")
    max_concurrency = configurable("max_concurrency")
    cache_dir = configurable("cache_dir")
    widget_send_key = configurable("widget_send_key")
    widget_height = configurable("widget_height")
    vars_budget = configurable("vars_budget")

    def __init__(self, shell: Any, session: ChatSession | None = None, *,
                 commands: CommandTable | None = None,
                 run_map: MapRunner | None = None) -> None:
        _purge_credentials(getattr(shell, "config", None))
        super().__init__(shell)
        #: What the traitlets hold, as plain data the session and views read.
        self.settings = session.settings if session is not None else Settings()
        for name in NAMES:
            self.settings.set(name, getattr(self, name), configured=False)
        self.settings.configured.update(set(self.config.get("ChatMagics", {})) & set(NAMES))
        self._session = session
        self._live: LiveBackends | None = None
        #: ``%chat`` commands (default: this layer's own) and the ``--map`` runner.
        self.commands = commands
        self.run_map = run_map
        self._parsed: dict[str, argparse.Namespace] = {}
        #: The code cells this shell runs, for ``--cells``; ``load_ipython_extension``
        #: registers it on the shell's events and unloading removes it.
        self.cells = CellLog(shell)
        if session is not None:
            session.cells = self.cells

    @observe(*NAMES)
    def _feed_settings(self, change: dict[str, Any]) -> None:
        """A traitlet changed (``%config``): the session's settings follow it."""
        settings = getattr(self, "settings", None)  # not yet built inside __init__
        if settings is not None:
            settings.set(change["name"], change["new"])

    @property
    def live(self) -> LiveBackends:
        """How this kernel reaches the service (login, offline emulator), built on first use."""
        if self._live is None:
            from ..service.live import LiveBackends

            backends = self._session.backends if self._session is not None else None
            self._live = backends if isinstance(backends, LiveBackends) else \
                LiveBackends(self.settings)
        return self._live

    @property
    def session(self) -> ChatSession:
        """The kernel's settings, threads and backends, built on first use."""
        if self._session is None:
            from ..core.session import ChatSession

            live = self.live
            self._session = ChatSession(self.settings, live, secrets=live.secrets)
            self._session.namespace = self._shell.user_ns  # where --tools names are found
            self._session.cells = self.cells
        return self._session

    def close(self) -> dict[str, Thread]:
        """Close what the extension started (backends, emulator); returns the threads,
        so a reload can bring them back."""
        threads = self._session.threads if self._session is not None else {}
        if self._session is not None:
            self._session.close()
        if self._live is not None:
            self._live.close()
        return threads

    # -- validation -------------------------------------------------------------------
    @validate(*CHECKED)
    def _check_range(self, proposal: dict[str, Any]) -> Any:
        """Refuse a value out of its setting's range (``core/settings.py`` says which)."""
        found = problem(proposal["trait"].name, proposal["value"])
        if found is not None:
            raise TraitError(found)
        return proposal["value"]

    @validate("folder_id", "endpoint", "chat_endpoint", "yc_profile", "model", "model_version",
              "system_prompt", "image_hosts")
    def _check_not_secret(self, proposal: dict[str, Any]) -> Any:
        name = proposal["trait"].name
        try:
            return refuse_secret(proposal["value"], f"ChatMagics.{name}")
        except CredentialRefused:
            self._purge_after_cell()
            raise

    def _purge_after_cell(self) -> None:
        """Purge the refused value once ``%config`` has merged it (after this cell).

        A one-shot ``post_run_cell`` callback: no hook stays registered.
        """
        shell = self.shell
        if shell is None or not hasattr(shell, "events"):
            return

        def purge(*_args: Any) -> None:
            _purge_credentials(shell.config)
            shell.events.unregister("post_run_cell", purge)

        shell.events.register("post_run_cell", purge)

    @property
    def _shell(self) -> Any:
        """The shell, which a registered magic always has (``Magics`` types it Optional)."""
        if self.shell is None:
            raise RuntimeError("ChatMagics is not registered with a shell")
        return self.shell

    def options(self, **overrides: Any) -> RequestOptions:
        """Request options from the settings, with per-turn overrides that are not None."""
        return self.session.options(**overrides)

    # -- %%chat -----------------------------------------------------------------------
    @no_var_expand
    @magic_arguments()
    @argument("-t", "--thread", default="default", help="Thread to use (created if new).")
    @argument("-m", "--model", help="Model for this turn: yandexgpt, yandexgpt-lite, NAME/VERSION, gpt://...")  # noqa: E501
    @argument("--temperature", type=float, metavar="T", help="Temperature for this turn, 0..1.")
    @argument("--max-tokens", type=int, metavar="N", help="Most tokens for this reply.")
    @argument("-s", "--system", help="Set the thread's system prompt from this turn on.")
    @argument("--no-stream", action="store_true", help="Wait for the whole reply instead of streaming it.")  # noqa: E501
    @argument("-o", "--output", metavar="NAME", help="Also store the reply in this variable: its text, or with --schema/--json the parsed object (with --map: the list's variable, or the DataFrame's new column).")  # noqa: E501
    @argument("--vars", action="store_true", help="Replace {name}, {In[N]} and {Out[N]} in the message.")  # noqa: E501
    @argument("--cells", type=int, metavar="N", help="Send the last N code cells this kernel ran (source, and result or error) before the message; the oldest are left out first if the window has no room.")  # noqa: E501
    @argument("--schema", metavar="NAME", help="Ask for JSON that fits NAME (a pydantic model, dataclass or JSON Schema dict) and check the reply against it.")  # noqa: E501
    @argument("--json", action="store_true", help="Ask for any JSON object; the reply is parsed into a dict.")  # noqa: E501
    @argument("--tools", metavar="F,G", help="Offer these functions of the notebook to the model; each call runs only as ChatMagics.tool_calls allows (default: ask).")  # noqa: E501
    @argument("--map", metavar="DATA", help="One request per row of DATA (a DataFrame, list of dicts or list of strings); the cell is a template with {column} fields.")  # noqa: E501
    @argument("--concurrency", type=int, metavar="N", help="With --map: most requests in flight (default ChatMagics.max_concurrency).")  # noqa: E501
    @argument("--batch", action="store_true", help="With --map: run through the service's batch processing instead.")  # noqa: E501
    @argument("--deferred", action="store_true", help="With --map: run through the service's asynchronous mode (its own quotas); picked up again after an interrupt or a restart.")  # noqa: E501
    @argument("--estimate", action="store_true", help="With --map: send nothing that generates; count the input with the tokenizer and say the rows, tokens, time and (--batch) minimum billed size.")  # noqa: E501
    @argument("--fresh", action="store_true", help="With --map: send every row again, even those answered before (the cache is not read).")  # noqa: E501
    @argument("--image", action="append", metavar="X", help="Send an image with the message, for a model that reads images (gemma-3-27b-it): the path of a PNG, JPEG or WebP file, or a variable holding image bytes, a PIL image or a matplotlib figure. Repeat for more.")  # noqa: E501
    @cell_magic
    def chat(self, line: str, cell: str) -> Any:
        """Send the cell to YandexGPT as the next message of a thread and show the reply.

        Examples::

            %%chat -s "You are a smart assistant"
            Hi! What fields of science did Albert Einstein study?

            %%chat -t code -m yandexgpt-lite --temperature 0.2
            Explain this traceback: ...

            %%chat --tools lookup
            What is the mean price in my table? Use lookup.

            %%chat --schema Fact -o facts
            List the facts in this text: ...

            %%chat --map reviews -o sentiment
            Answer positive or negative. Review: {text}

            %%chat -m gemma-3-27b-it --image plot.png --image fig
            What do these two charts show?

            %%chat --vars
            Which columns of {df} have missing values?

            %%chat --cells 2
            Why is the mean in my last cell so low?
        """
        try:
            args = self._parse(line)
            self._check_flags(args)
            if args.map is not None or args.batch or args.concurrency or args.fresh \
                    or args.deferred or args.estimate:
                if self.run_map is None:
                    raise UsageProblem("--map needs the whole extension: %load_ext yagpt_magic.")
                return self.run_map(self.session, self._shell.user_ns, args, cell)
            text = self._interpolate(cell) if args.vars else cell
            if not text.strip():
                raise UsageProblem("The cell is empty: write your message below the %%chat line.")
            schema = self._schema(args)
            if args.system is not None:
                self.session.set_system(args.thread, args.system)
            options = self.session.options(
                model=args.model,
                temperature=args.temperature,
                max_tokens=args.max_tokens,
                stream=False if args.no_stream else None,
            )
            text, note = text.strip("\n"), ""
            if args.cells is not None:
                from ..core.images import IMAGE_TOKENS
                from .cells import cells_context

                images = IMAGE_TOKENS * len(args.image or [])  # they go with the message
                context = cells_context(self.session, args.thread, text, args.cells, options,
                                        reserve=images)
                text, note = context.text, context.note(self.session.window(options))
            answer = self._ask(args.thread, text, options, args.tools, schema,
                               self._images(args), note)
        except ChatError as err:
            self._fail(err)
            return
        if args.output:
            self._shell.user_ns[args.output] = (
                answer.value if schema is not None else answer.turn.reply)

    def _parse(self, line: str) -> argparse.Namespace:
        """The flags of a ``%%chat`` line; a notebook repeats a few lines, so they are kept."""
        parsed = self._parsed.get(line)
        if parsed is None:
            flags = self.chat.parser._option_string_actions  # type: ignore[attr-defined]  # set by @magic_arguments
            misread = single_dash(arg_split(line), flags)
            if misread:
                raise UsageProblem(misread)
            try:
                parsed = parse_argstring(self.chat, line)
            except UsageError as err:
                raise UsageProblem(sentence(mask_arguments(str(err), flags))) from None
            for name in ("thread", "model", "system", "output", "tools", "schema", "map"):
                setattr(parsed, name, _unquote(getattr(parsed, name)))
            if len(self._parsed) >= 256:
                self._parsed.clear()
            self._parsed[line] = parsed
        return argparse.Namespace(**vars(parsed))

    def _check_flags(self, args: Any) -> None:
        for flag, name in (("--temperature", "temperature"), ("--max-tokens", "max_tokens")):
            found = problem(name, getattr(args, name), label=flag)
            if found is not None:
                raise UsageProblem(f"{found}.")
        if args.model is not None:
            checked_model(args.model, "-m")
        if args.output is not None and not args.output.isidentifier():
            raise UsageProblem(f"-o needs a Python variable name, not {args.output!r}.")
        if args.map is not None and not args.map.isidentifier():
            raise UsageProblem(f"--map needs the name of a variable, not {args.map!r}.")
        if args.thread is not None and not args.thread.strip():
            raise UsageProblem("-t needs a thread name.")
        if args.schema is not None and args.json:
            raise UsageProblem("Use --schema NAME or --json, not both.")
        if args.schema is not None and not args.schema.strip():
            raise UsageProblem("--schema needs the name of a pydantic model, dataclass or dict.")
        for flag, name in (("-s", "system"), ("-t", "thread"), ("-o", "output"),
                           ("--schema", "schema")):
            refuse_secret(getattr(args, name), flag)

    def _schema(self, args: Any) -> Schema | None:
        """What ``--schema NAME`` / ``--json`` ask the reply to be, checked before sending."""
        if args.schema is None and not args.json:
            return None
        from ..core.structured import from_flags

        return from_flags(args.schema, args.json, self._shell.user_ns)

    def _interpolate(self, text: str) -> str:
        """Replace only ``{name}``, ``{In[N]}`` and ``{Out[N]}`` outside code; the rest stays."""
        ns = self._shell.user_ns

        def value(match: re.Match[str]) -> str:
            history, number, name = match.groups()
            if name is not None:
                if name not in ns:
                    raise UsageProblem(f"--vars: {{{name}}} is not defined; nothing was sent.")
                found, label = ns[name], name
            else:
                store = ns.get(history, {} if history == "Out" else [])
                label = f"{history}[{number}]"
                try:
                    found = store[int(number)]
                except (IndexError, KeyError, TypeError):
                    raise UsageProblem(
                        f"--vars: {{{label}}} does not exist; nothing was sent.") from None
            return sendable(self._text_of(found, label, match), f"--vars: {{{label}}}")

        return "".join(piece if code else _VARS.sub(value, piece)
                       for code, piece in split_code(text))

    def _text_of(self, value: Any, label: str, where: re.Match[str]) -> str:
        """A value as ``--vars`` sends it: a frame or array described (a block of its own
        lines, so its tables read as tables), anything else ``str()``."""
        from ..core.frames import describe

        described = describe(value, self.settings.vars_budget, label)
        if described is None:
            return str(value)
        text, start, end = where.string, where.start(), where.end()
        before = "" if start == 0 or text[start - 1] == "\n" else "\n\n"
        after = "" if end == len(text) or text[end] == "\n" else "\n\n"
        return before + described + after

    def _images(self, args: argparse.Namespace) -> list[Any]:
        """``--image X``: a variable of that name if there is one, else a file's path."""
        from ..core.images import Named

        ns = self._shell.user_ns
        found: list[Any] = []
        for spec in args.image or []:
            name = _unquote(spec) or ""
            if not name.strip():
                raise UsageProblem("--image needs a file's path or a variable's name.")
            found.append(Named(name, ns[name]) if name.isidentifier() and name in ns else name)
        return found

    def _ask(self, thread: str, text: str, options: RequestOptions, tools: str | None = None,
             schema: Schema | None = None, images: Sequence[Any] = (),
             note: str = "") -> Answer:
        from ..display.reply import ask_and_show
        from ..display.tool_calls import CellApproval
        from .shell import cell_id, reply_display

        display = reply_display(self._shell, thread, self.session.settings)
        display.view.context = note
        cell = CellApproval(waiting=display.wait_for, policy=self.settings.tool_calls,
                            below=display.below)
        return ask_and_show(self.session, display, thread, text, options=options,
                            cell_id=cell_id(self._shell), tools=tools, approve=cell.approve,
                            on_tool=cell.show, schema=schema, images=images)

    def _fail(self, err: ChatError) -> None:
        """Fail the cell: one line, or the whole traceback when ``verbose_errors``."""
        if self.settings.verbose_errors:
            raise err
        raise CellFailed(str(err)) from None

    # -- %chat ------------------------------------------------------------------------
    @no_var_expand
    @line_magic("chat")  # type: ignore[arg-type]  # IPython types magics as taking no args
    def chat_command(self, line: str) -> Any:
        """Commands for the chat threads; ``%chat help`` lists them."""
        from .commands import OWN, CommandTable, Context, dispatch

        commands = self.commands if self.commands is not None else CommandTable(OWN)
        try:
            return dispatch(Context(self.session, self.shell, commands, self.live), line)
        except ChatError as err:
            self._fail(err)
