"""``%%chat`` and ``%chat``: parse arguments, call the session, display. Nothing else."""

from __future__ import annotations

import argparse
import os
import re
import time
import uuid
from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, line_magic, magics_class, no_var_expand
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring
from traitlets import Bool, CaselessStrEnum, Float, Int, List, TraitError, Unicode, validate

from .errors import ChatError, ContentFiltered, Interrupted, UsageProblem, mask_arguments

if TYPE_CHECKING:  # the session and what it needs load on first use: %load_ext stays cheap
    from .backend import RequestOptions
    from .connection import Connection
    from .conversation import Fit
    from .session import Answer, ChatSession
    from .view import ReplyView

_SECRET_SHAPES = re.compile(r"^(AQVN|t1\.|y[0-3]_)")
_VARS = re.compile(r"(?<!\{)\{(?:(In|Out)\[(-?\d+)\]|([A-Za-z_]\w*))\}(?!\})")
#: Fenced blocks and inline code spans: code is left exactly as typed under --vars.
_CODE = re.compile(
    r"^(?P<fence>`{3,}|~{3,})[^\n]*\n.*?^(?P=fence)[ \t]*$"
    r"|(?P<ticks>`+)(?!`).+?(?<!`)(?P=ticks)(?!`)",
    re.M | re.S,
)


def _unquote(value: str | None) -> str | None:
    """Strip one pair of surrounding quotes: IPython's argument splitter keeps them."""
    if value and len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value


def _not_a_secret(value: str, name: str) -> str:
    if _SECRET_SHAPES.match(value.strip()):
        raise TraitError(
            f"{name} looks like a credential; credentials never go in %config (it is saved in "
            "the notebook). Set YC_API_KEY / YC_IAM_TOKEN in the environment or run %chat login."
        )
    return value


@magics_class
class ChatMagics(Magics):
    """Chat with YandexGPT: ``%%chat`` for a turn, ``%chat`` for commands."""

    model = Unicode("yandexgpt", help="Model: yandexgpt, yandexgpt-lite, NAME/VERSION or a gpt:// URI.").tag(config=True)  # noqa: E501
    model_version = Unicode("latest", help="Model version: latest, rc or deprecated.").tag(config=True)  # noqa: E501
    temperature = Float(0.6, help="Sampling temperature, 0..1.").tag(config=True)
    max_tokens = Int(2000, help="Most tokens a reply may have; also reserved in the context window.").tag(config=True)  # noqa: E501
    system_prompt = Unicode("", help="System prompt for new threads.").tag(config=True)
    stream = Bool(True, help="Stream replies as they are written.").tag(config=True)
    context_window = Int(0, help="Context window in tokens for every model; 0: each model's own (%chat models).").tag(config=True)  # noqa: E501
    timeout = Float(30.0, help="Seconds to wait for the service to start answering (for --no-stream: for the whole answer).").tag(config=True)  # noqa: E501
    folder_id = Unicode("", help="Yandex Cloud folder id (else env YC_FOLDER_ID / FOLDER_ID).").tag(config=True)  # noqa: E501
    endpoint = Unicode("", help="gRPC endpoint host:port (else env YC_API_ENDPOINT, else the SDK default).").tag(config=True)  # noqa: E501
    insecure = Bool(False, help="Plaintext gRPC, for a local endpoint (or env YAGPT_INSECURE=1).").tag(config=True)  # noqa: E501
    yc_profile = Unicode("", help="A yc CLI profile to take the credential from.").tag(config=True)
    data_logging = Bool(False, help="Let the service log prompts (sent as enable_server_data_logging).").tag(config=True)  # noqa: E501
    reasoning_mode = CaselessStrEnum(["", "disabled", "enabled_hidden"], default_value="", help="Reasoning mode: '' (unset), disabled, enabled_hidden.").tag(config=True)  # noqa: E501
    verbose_errors = Bool(False, help="Show the full traceback of a failed request.").tag(config=True)  # noqa: E501
    allow_html = Bool(False, help="Render raw HTML in replies (unsafe: replies are text you did not write).").tag(config=True)  # noqa: E501
    image_hosts = List(Unicode(), help="Hosts whose images a reply may load.").tag(config=True)

    def __init__(self, shell: Any, session: ChatSession | None = None) -> None:
        super().__init__(shell)
        self._session = session
        self._parsed: dict[str, argparse.Namespace] = {}

    @property
    def session(self) -> ChatSession:
        """The kernel's threads and connection, built on first use."""
        if self._session is None:
            from .session import ChatSession

            self._session = ChatSession(self.connection)
            if self.system_prompt:
                self._session.set_system("default", self.system_prompt)
        return self._session

    # -- validation -------------------------------------------------------------------
    @validate("temperature")
    def _check_temperature(self, proposal: dict[str, Any]) -> float:
        if not 0.0 <= proposal["value"] <= 1.0:
            raise TraitError(f"temperature must be between 0 and 1, not {proposal['value']}")
        return proposal["value"]

    @validate("max_tokens", "context_window")
    def _check_positive(self, proposal: dict[str, Any]) -> int:
        unset = proposal["trait"].name == "context_window" and proposal["value"] == 0
        if proposal["value"] <= 0 and not unset:
            raise TraitError(f"{proposal['trait'].name} must be a positive number of tokens")
        return proposal["value"]

    @validate("timeout")
    def _check_timeout(self, proposal: dict[str, Any]) -> float:
        if proposal["value"] <= 0:
            raise TraitError("timeout must be a positive number of seconds")
        return proposal["value"]

    @validate("folder_id", "endpoint", "yc_profile", "model")
    def _check_not_secret(self, proposal: dict[str, Any]) -> str:
        return _not_a_secret(proposal["value"], proposal["trait"].name)

    # -- settings ---------------------------------------------------------------------
    def connection(self) -> Connection:
        """The connection the current settings describe (SPEC 2)."""
        from .connection import resolve

        if self.session.offline is None and os.environ.get("YAGPT_OFFLINE") == "1":
            self.session.start_offline()
        return resolve(
            login=self.session.login,
            login_folder=self.session.login_folder,
            folder_id=self.folder_id,
            endpoint=self.session.offline.address if self.session.offline else self.endpoint,
            insecure=self.insecure or self.session.offline is not None,
            yc_profile=self.yc_profile,
            data_logging=self.data_logging,
            timeout=self.timeout,
        )

    def options(self, **overrides: Any) -> RequestOptions:
        """Request options from config, with per-turn overrides that are not None."""
        from .backend import RequestOptions

        values: dict[str, Any] = {
            "model": self.model,
            "model_version": self.model_version,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "reasoning_mode": self.reasoning_mode or None,
            "stream": self.stream,
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return RequestOptions(**values)

    def cell_id(self) -> str | None:
        """The front end's id of the running cell (JupyterLab, Notebook 7), if it sent one."""
        kernel = getattr(self.shell, "kernel", None)
        if kernel is None:
            return None
        try:
            parent = kernel.get_parent("shell")
        except TypeError:
            parent = kernel.get_parent()
        return ((parent or {}).get("metadata") or {}).get("cellId")

    # -- %%chat -----------------------------------------------------------------------
    @no_var_expand
    @magic_arguments()
    @argument("-t", "--thread", default="default", help="Thread to use (created if new).")
    @argument("-m", "--model", help="Model for this turn: yandexgpt, yandexgpt-lite, NAME/VERSION, gpt://...")  # noqa: E501
    @argument("--temperature", type=float, help="Temperature for this turn, 0..1.")
    @argument("--max-tokens", type=int, help="Most tokens for this reply.")
    @argument("-s", "--system", help="Set the thread's system prompt from this turn on.")
    @argument("--no-stream", action="store_true", help="Wait for the whole reply instead of streaming it.")  # noqa: E501
    @argument("-o", "--output", help="Also store the reply text in this variable.")
    @argument("--vars", action="store_true", help="Replace {name}, {In[N]} and {Out[N]} in the message.")  # noqa: E501
    @cell_magic
    def chat(self, line: str, cell: str) -> None:
        """Send the cell to YandexGPT as the next message of a thread and show the reply.

        Examples::

            %%chat -s "You are a smart assistant"
            Hi! What fields of science did Albert Einstein study?

            %%chat -t code -m yandexgpt-lite --temperature 0.2
            Explain this traceback: ...
        """
        try:
            args = self._parse(line)
            self._check_flags(args)
            text = self._interpolate(cell) if args.vars else cell
            if not text.strip():
                raise UsageProblem("The cell is empty: write your message below the %%chat line.")
            if args.system is not None:
                self.session.set_system(args.thread, args.system)
            elif args.thread not in self.session.threads and self.system_prompt:
                self.session.set_system(args.thread, self.system_prompt)
            options = self.options(
                model=args.model,
                temperature=args.temperature,
                max_tokens=args.max_tokens,
                stream=False if args.no_stream else None,
            )
            answer = self._ask(args.thread, text.strip("\n"), options)
        except ChatError as err:
            self._fail(err)
            return
        if args.output:
            self.shell.user_ns[args.output] = answer.turn.reply

    def _parse(self, line: str) -> argparse.Namespace:
        """The flags of a ``%%chat`` line; a notebook repeats a few lines, so they are kept."""
        parsed = self._parsed.get(line)
        if parsed is None:
            try:
                parsed = parse_argstring(self.chat, line)
            except UsageError as err:
                raise UsageProblem(mask_arguments(str(err))) from None
            for name in ("thread", "model", "system", "output"):
                setattr(parsed, name, _unquote(getattr(parsed, name)))
            if len(self._parsed) >= 256:
                self._parsed.clear()
            self._parsed[line] = parsed
        return argparse.Namespace(**vars(parsed))

    def _check_flags(self, args: Any) -> None:
        if args.temperature is not None and not 0.0 <= args.temperature <= 1.0:
            raise UsageProblem(f"--temperature must be between 0 and 1, not {args.temperature}.")
        if args.max_tokens is not None and args.max_tokens <= 0:
            raise UsageProblem(f"--max-tokens must be a positive number, not {args.max_tokens}.")
        if args.model is not None and not args.model.strip():
            raise UsageProblem("-m needs a model name, e.g. yandexgpt or yandexgpt-lite/rc.")
        if args.output is not None and not args.output.isidentifier():
            raise UsageProblem(f"-o needs a Python variable name, not {args.output!r}.")
        if args.thread is not None and not args.thread.strip():
            raise UsageProblem("-t needs a thread name.")

    def _interpolate(self, text: str) -> str:
        """Replace only ``{name}``, ``{In[N]}`` and ``{Out[N]}`` outside code; the rest stays."""
        ns = self.shell.user_ns

        def value(match: re.Match[str]) -> str:
            history, number, name = match.groups()
            if name is not None:
                if name not in ns:
                    raise UsageProblem(f"--vars: {{{name}}} is not defined; nothing was sent.")
                return str(ns[name])
            store = ns.get(history, {} if history == "Out" else [])
            try:
                return str(store[int(number)])
            except (IndexError, KeyError, TypeError):
                raise UsageProblem(
                    f"--vars: {{{history}[{number}]}} does not exist; nothing was sent."
                ) from None

        parts, last = [], 0
        for code in _CODE.finditer(text):
            parts += [_VARS.sub(value, text[last : code.start()]), code.group(0)]
            last = code.end()
        parts.append(_VARS.sub(value, text[last:]))
        return "".join(parts)

    def _ask(self, thread: str, text: str, options: RequestOptions) -> Answer:
        from .view import ReplyView, Throttle

        view = ReplyView(thread=thread, allow_html=self.allow_html, image_hosts=self.image_hosts)
        live = hasattr(self.shell, "kernel")
        handle: str | None = None
        throttle = Throttle()

        def on_fit(fit: Fit) -> None:
            nonlocal handle
            from .models import context_window

            view.left_out = fit.left_out
            view.window = context_window(options.model, self.context_window)
            if live and options.stream and self.session.replay is None:
                # The request goes out now: say so at once (replay answers instantly).
                view.waiting = f"Waiting for {options.model}…"
                handle = self._publish(view, display_id=uuid.uuid4().hex)

        def on_text(text: str) -> None:
            nonlocal handle
            view.text = text
            if not live or not throttle.due():
                return
            started = time.monotonic()
            if handle is None:
                handle = self._publish(view, display_id=uuid.uuid4().hex)
            else:
                self._publish(view, display_id=handle, update=True)
            throttle.shown(started)

        try:
            answer = self.session.ask(
                thread,
                text,
                options=options,
                context_window=self.context_window,
                cell_id=self.cell_id(),
                on_text=on_text if options.stream else None,
                on_fit=on_fit,
            )
        except KeyboardInterrupt:
            view.interrupted, view.waiting = True, ""
            if handle is not None or view.text:
                self._publish(view, display_id=handle, update=handle is not None)
            raise Interrupted(
                f"Interrupted: the partial reply was not added to thread {thread!r}."
            ) from None
        except ContentFiltered:
            if handle is not None:  # what streamed before the filter stopped it is withdrawn
                view.text, view.filtered, view.waiting = "", True, ""
                self._publish(view, display_id=handle, update=True)
            raise
        except ChatError:
            if handle is not None:
                view.failed, view.waiting = True, ""
                self._publish(view, display_id=handle, update=True)
            raise
        view.waiting = ""
        view.finish(answer)
        self._publish(view, display_id=handle, update=handle is not None)
        return answer

    def _publish(
        self, view: ReplyView, *, display_id: str | None, update: bool = False
    ) -> str | None:
        """Show (or update in place) the reply as one output, and return its display id.

        The bundle is already known, so it goes straight to the display publisher;
        ``display()`` would first ask every formatter (~0.3 ms a turn) for nothing.
        """
        data, metadata = view._repr_mimebundle_()
        transient = {"display_id": display_id} if display_id else None
        self.shell.display_pub.publish(data=data, metadata=metadata, transient=transient,
                                       update=update)
        return display_id

    def _fail(self, err: ChatError) -> None:
        """Fail the cell: one line, or the whole traceback when ``verbose_errors``."""
        if self.verbose_errors:
            raise err
        message = str(err)
        raise UsageError(message[:1].upper() + message[1:]) from None

    # -- %chat ------------------------------------------------------------------------
    @no_var_expand
    @line_magic("chat")
    def chat_command(self, line: str) -> Any:
        """Commands for the chat threads; ``%chat help`` lists them."""
        from .commands import dispatch

        try:
            return dispatch(self, line)
        except ChatError as err:
            self._fail(err)
