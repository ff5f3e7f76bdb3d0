"""The notebook's own functions as the model's tools (SPEC 12), with the user's approval.

``offer`` turns the named callables of the user namespace into function tools: the
description is the docstring, the parameters a JSON Schema that pydantic builds from
the signature and type hints (one ``TypeAdapter`` per parameter, so an annotation it
cannot express is a one-line error naming that parameter, and the model's arguments are
validated and converted the same way: JSON numbers arrive as floats).

``run_rounds`` is the loop of one turn: while the reply asks for calls, each call is
shown, approved (or not) by the policy, run in the order given, and its ``str()`` result
(truncated with a note) goes back to the model. Only offered names ever run; a refused,
unknown or malformed call is reported to the model instead. Nothing here commits:
the session commits the turn once the model answers, so an interrupt loses nothing.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import threading
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

from .backend import Reply, RequestOptions, ToolDefinition
from .conversation import Message, ToolCall, ToolRound
from .errors import Interrupted, InvalidReply, ServiceError, UsageProblem, scrub
from .settings import ToolPolicy, default
from .storable import problem

#: The ``tool_calls`` setting: ask before each call, run them all, or refuse them all.
Policy = ToolPolicy
POLICIES: tuple[str, ...] = typing.get_args(ToolPolicy)

#: Decides one call: (function name, arguments) -> run it?
Approver = Callable[[str, Mapping[str, Any]], bool]

REFUSED = "The user did not allow this call; it was not run."


@dataclass(frozen=True)
class ToolEvent:
    """A call about to be decided (``call``) or finished (``done``, with its record)."""

    kind: Literal["call", "done"]
    name: str
    arguments: Mapping[str, Any]
    record: ToolCall | None = None
    replayed: bool = False


@dataclass(frozen=True)
class Tool:
    """One offered callable: its definition for the model, and how to call it."""

    definition: ToolDefinition
    function: Callable[..., Any]
    adapters: Mapping[str, Any]  # parameter name -> pydantic TypeAdapter
    signature: inspect.Signature

    @property
    def name(self) -> str:
        return self.definition.name

    def ordered(self, arguments: Mapping[str, Any]) -> dict[str, Any]:
        """The arguments in the signature's order (the wire's map order is arbitrary), then
        any the signature does not name, as given."""
        known = [name for name in self.signature.parameters if name in arguments]
        return {name: arguments[name] for name in [*known, *(a for a in arguments
                                                              if a not in known)]}

    def bind(self, arguments: Mapping[str, Any]) -> tuple[list[Any], dict[str, Any]]:
        """The model's arguments validated against the signature, ready for the call."""
        unknown = sorted(set(arguments) - set(self.adapters))
        if unknown:
            raise TypeError(f"{self.name}() got unexpected arguments: {', '.join(unknown)}")
        args: list[Any] = []
        kwargs: dict[str, Any] = {}
        for name, parameter in self.signature.parameters.items():
            if name not in arguments:
                if parameter.default is inspect.Parameter.empty:
                    raise TypeError(f"{self.name}() missing required argument: {name!r}")
                continue
            value = self.adapters[name].validate_python(arguments[name])
            if parameter.kind is inspect.Parameter.POSITIONAL_ONLY:
                args.append(value)
            else:
                kwargs[name] = value
        return args, kwargs


def _hints(function: Callable[..., Any]) -> dict[str, Any]:
    """Resolved annotations; string annotations that do not resolve stay as written."""
    try:
        return typing.get_type_hints(function, include_extras=True)
    except Exception:  # noqa: BLE001 - a forward reference the user never defined
        return {}


def build_tool(name: str, function: Any) -> Tool:
    """The tool for one callable of the user namespace; a ``UsageProblem`` if it can't be."""
    from pydantic import TypeAdapter
    from pydantic.errors import PydanticUserError

    if not callable(function):
        raise UsageProblem(f"--tools: {name!r} is a {type(function).__name__}, not a function.")
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):
        raise UsageProblem(f"--tools: the signature of {name!r} cannot be read.") from None
    hints = _hints(function)
    properties: dict[str, Any] = {}
    definitions: dict[str, Any] = {}
    required: list[str] = []
    adapters: dict[str, Any] = {}
    for pname, parameter in signature.parameters.items():
        if parameter.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
            star = "*" if parameter.kind is inspect.Parameter.VAR_POSITIONAL else "**"
            raise UsageProblem(f"--tools: {name}() takes {star}{pname}; the model can only "
                               "pass named parameters. Wrap it in a function that names them.")
        annotation = hints.get(pname, parameter.annotation)
        if annotation is inspect.Parameter.empty:
            annotation = Any
        try:
            adapter = TypeAdapter(annotation)
            schema = adapter.json_schema()
        except PydanticUserError:
            raise UsageProblem(
                f"--tools: parameter {pname!r} of {name}() has a type the model cannot send "
                f"({_type_name(annotation)}); annotate it with str, int, float, bool, list, "
                "dict, a Literal or a pydantic model."
            ) from None
        definitions.update(schema.pop("$defs", {}))
        if parameter.default is inspect.Parameter.empty:
            required.append(pname)
        else:
            # A default JSON can't carry is left out: the model may simply omit the argument.
            with contextlib.suppress(TypeError, ValueError):
                schema["default"] = json.loads(json.dumps(parameter.default))
        properties[pname] = schema
        adapters[pname] = adapter
    # "required" even when empty: the parameters with defaults are explicitly optional.
    parameters: dict[str, Any] = {"type": "object", "properties": properties,
                                  "required": required}
    if definitions:
        parameters["$defs"] = definitions
    description = inspect.getdoc(function) or ""
    definition = ToolDefinition(name, description, json.dumps(parameters, ensure_ascii=False))
    return Tool(definition, function, adapters, signature)


def _type_name(annotation: Any) -> str:
    return getattr(annotation, "__qualname__", None) or repr(annotation)


def offer(namespace: Mapping[str, Any], names: Sequence[str],
          cache: dict[str, Tool] | None = None) -> dict[str, Tool]:
    """The named callables of ``namespace`` as tools; an unknown name is a ``UsageProblem``.

    ``cache`` keeps each name's tool while the name holds the same object: building a
    schema costs ~0.2 ms a function, and ``ChatMagics.tools`` offers them every turn.
    Redefining a function (a new ``def``) makes a new object, so its new hints count.
    """
    tools: dict[str, Tool] = {}
    for raw in names:
        name = raw.strip()
        if not name:
            continue
        if not name.isidentifier():
            raise UsageProblem(f"--tools: {name!r} is not a Python name; list functions as f,g.")
        if name not in namespace:
            raise UsageProblem(f"--tools: {name!r} is not defined in the notebook; define it "
                               "first (nothing was sent).")
        function = namespace[name]
        cached = cache.get(name) if cache is not None else None
        if cached is None or cached.function is not function:
            cached = build_tool(name, function)
            if cache is not None:
                cache[name] = cached
        tools[name] = cached
    return tools


def split_names(value: str | Sequence[str] | None) -> tuple[str, ...]:
    """``f,g`` (a flag) or ``["f", "g"]`` (the setting) as a tuple of names."""
    if value is None:
        return ()
    parts = value.split(",") if isinstance(value, str) else list(value)
    return tuple(p.strip() for p in parts if p.strip())


def describe(name: str, arguments: Mapping[str, Any], width: int = 200) -> str:
    """A call in brief (``%chat history``): ``lookup(column='price', n=3)``, cut at ``width``.

    Never what a user approves: that is ``call_text``, in full.
    """
    text = f"{shown_name(name)}({', '.join(_one_line(arguments))})"
    return text if len(text) <= width else text[: width - 1] + "…"


def visible(text: str) -> str:
    """``text`` with every character that is not printable shown as its escape.

    A model controls tool names, arguments and (through a tool) results; ANSI escapes,
    ``\\r``, newlines and bidirectional overrides in them could redraw or reorder
    what the user reads before approving a call.
    """
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def shown_name(name: str) -> str:
    """A function or argument name as typed, unless it is no Python name: then its repr."""
    return name if name.isidentifier() and name.isprintable() else repr(name)


def _one_line(arguments: Mapping[str, Any]) -> list[str]:
    named = [f"{k}={_repr(v)}" for k, v in arguments.items() if shown_name(k) == k]
    odd = {k: v for k, v in arguments.items() if shown_name(k) != k}
    return named + ([f"**{_repr(odd)}"] if odd else [])


def _repr(value: Any) -> str:
    """``repr`` (which escapes every unprintable character of a str); a value nested too
    deep for it is named instead of shown."""
    try:
        return repr(value)
    except RecursionError:
        return f"<a {type(value).__name__} nested too deep to show>"


def call_text(name: str, arguments: Mapping[str, Any], width: int = 100) -> str:
    """A call in full, as the user must read it before allowing it to run.

    Every argument whole, in the order given (the signature's: ``ToolRun`` orders them),
    as Python that evaluates to the arguments: one line when it fits in ``width``, else
    one argument a line with long strings split into adjacent literals (at line breaks,
    then spaces). Names that are not Python names and every unprintable character are
    escaped, so no line of it can pose as a prompt or redraw the screen.
    """
    one = f"{shown_name(name)}({', '.join(_one_line(arguments))})"
    if len(one) <= width:
        return one
    lines = [f"{shown_name(name)}("]
    named = {k: v for k, v in arguments.items() if shown_name(k) == k}
    odd = {k: v for k, v in arguments.items() if shown_name(k) != k}
    items = [(f"{k}=", v) for k, v in named.items()] + ([("**", odd)] if odd else [])
    for head, value in items:
        body = _wrapped(value, max(20, width - 4 - len(head)))
        pad = " " * (4 + len(head))
        lines.append(f"    {head}{body[0]}")
        lines += [pad + line for line in body[1:]]
        lines[-1] += ","
    return "\n".join([*lines, ")"])


def _wrapped(value: Any, width: int) -> list[str]:
    """``value`` as lines of Python at most ``width`` wide where it can be split."""
    if isinstance(value, str):
        return _string_lines(value, width)
    import pprint

    try:
        return pprint.pformat(value, width=width, sort_dicts=False).splitlines()
    except RecursionError:
        return [_repr(value)]


def _string_lines(text: str, width: int) -> list[str]:
    """A string as adjacent literals, each at most ``width`` wide: split after line breaks,
    else after the last space that fits, else where the width ends."""
    import re

    pieces: list[str] = []
    for line in re.findall(r"[^\n]*\n|[^\n]+", text) or [""]:
        while line:
            cut = _fits(line, width)
            space = line.rfind(" ", 0, cut) if cut < len(line) else -1
            if space > cut // 2:
                cut = space + 1
            pieces.append(repr(line[:cut]))
            line = line[cut:]
    return pieces


def _fits(text: str, width: int) -> int:
    """How many characters of ``text`` fit in a literal ``width`` wide (escapes count;
    a quote counts as escaped)."""
    size, cut = 2, 0
    for char in text[:width]:
        size += 2 if char == "'" else len(repr(char)) - 2
        if size > width:
            break
        cut += 1
    return max(cut, 1)


def whole_numbers(value: Any) -> Any:
    """``value`` with every whole-number float as an int (``3.0`` -> ``3``).

    The wire has only doubles (a protobuf ``Struct``), JSON has one number type, and a
    notebook saved by JupyterLab writes ``3.0`` as ``3``: read the same way at once, a call
    shows and hashes the same before and after ``%chat restore``. Past 2**53 a float is
    not exact, so it stays one.
    """
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    if isinstance(value, dict):
        return {key: whole_numbers(item) for key, item in value.items()}
    if isinstance(value, list):
        return [whole_numbers(item) for item in value]
    return value


def truncate(text: str, limit: int, *, total: int | None = None) -> str:
    """``text`` cut to ``limit`` characters, with a note saying so (the model reads it).

    ``total``: the length of the whole result when ``text`` is already only its start.
    """
    total = len(text) if total is None else total
    if total <= limit:
        return text
    return (text[:limit] + f"\n[truncated: the result has {total} characters; "
            f"only the first {min(limit, len(text))} were sent]")


@dataclass
class ToolRun:
    """How one turn treats tool calls: what is offered, the policy, and who is asked."""

    tools: Mapping[str, Tool]
    policy: Policy = default("tool_calls")
    approve: Approver | None = None
    on_event: Callable[[ToolEvent], None] | None = None
    result_limit: int = default("tool_result_limit")
    max_rounds: int = default("max_tool_rounds")
    cancel: threading.Event | None = None
    #: Credentials this kernel knows: a result is scrubbed of them (as an error text is)
    #: before it is shown, kept in the turn or sent to the model.
    secrets: Sequence[str] = ()

    def _emit(self, event: ToolEvent) -> None:
        if self.on_event is not None:
            self.on_event(event)

    def _allowed(self, name: str, arguments: Mapping[str, Any]) -> bool:
        if self.policy == "auto":
            return True
        if self.policy == "never" or self.approve is None:
            return False
        return self.approve(name, arguments)

    def _stop_if_cancelled(self) -> None:
        if self.cancel is not None and self.cancel.is_set():
            raise Interrupted("stopped")

    def run_call(self, name: str, arguments: Mapping[str, Any], call_id: str = "") -> ToolCall:
        """One call: shown, decided, run (only an offered name), its result as text.

        ``call_id`` is the API's id for the call (the OpenAI-compatible API's), kept with
        the record so the result names the call it answers.
        """
        tool = self.tools.get(name)
        arguments = whole_numbers(arguments)
        arguments = tool.ordered(arguments) if tool is not None else dict(arguments)
        self._emit(ToolEvent("call", name, arguments))
        if tool is None:
            offered = ", ".join(self.tools) or "none"
            record = ToolCall(name, arguments, f"Error: no function named {name!r} is "
                              f"offered (offered: {offered}); it was not run.", "unknown")
        elif not self._allowed(name, arguments):
            record = ToolCall(name, arguments, REFUSED, "refused")
        else:
            self._stop_if_cancelled()
            record = self._execute(tool, arguments)
        record = replace(record, id=call_id) if call_id else record
        self._stop_if_cancelled()
        self._emit(ToolEvent("done", name, arguments, record))
        return record

    def _execute(self, tool: Tool, arguments: dict[str, Any]) -> ToolCall:
        from pydantic import ValidationError

        try:
            args, kwargs = tool.bind(arguments)
        except (TypeError, ValidationError) as err:
            summary = "; ".join(line.strip() for line in str(err).splitlines()[:3])
            return ToolCall(tool.name, arguments,
                            self._result(f"{type(err).__name__}: {summary}"), "invalid")
        try:
            text = str(tool.function(*args, **kwargs))  # a broken __str__ counts as raising
        except KeyboardInterrupt:  # the user's interrupt stops the turn
            raise
        except BaseException as err:  # noqa: BLE001 - SystemExit, GeneratorExit…: the model hears of it
            return ToolCall(tool.name, arguments,
                            self._result(f"{type(err).__name__}: {err}"), "raised")
        return ToolCall(tool.name, arguments, self._result(text))

    def _result(self, text: str) -> str:
        """What goes back for a call: scrubbed of credentials, then cut to the limit.

        Only the part that can be sent is scrubbed (a result may be megabytes); the
        margin keeps a key that straddles the cut from leaving a run of it behind.
        """
        margin = self.result_limit + 1024
        # A result is our text: an unpaired surrogate (a file read with surrogateescape)
        # is shown as its escape, so the result can be sent and kept.
        head = scrub(text[:margin].encode("utf-8", "backslashreplace").decode(), self.secrets)
        return truncate(head, self.result_limit, total=len(text) if len(text) > margin else None)

    def run_rounds(
        self,
        reply: Reply,
        messages: Sequence[Message],
        options: RequestOptions,
        send: Callable[[list[Message], RequestOptions], Reply],
    ) -> tuple[Reply, tuple[ToolRound, ...]]:
        """Run calls and send results until the model answers; at most ``max_rounds``.

        After the last allowed round the model is asked once more with ``tool_choice``
        "none", so the turn still ends in an answer.
        """
        rounds: list[ToolRound] = []
        sent = list(messages)
        while reply.status == "tool_calls":
            if len(rounds) >= self.max_rounds or options.tool_choice == "none":
                raise ServiceError(
                    f"The model asked for tools again after {len(rounds)} rounds; nothing "
                    "was added to the thread. Raise ChatMagics.max_tool_rounds or rephrase.",
                    code="TOOL_ROUNDS",
                )
            _check_calls(reply.tool_calls)
            ids = tuple(reply.call_ids) + ("",) * (len(reply.tool_calls) - len(reply.call_ids))
            calls = tuple(self.run_call(name, arguments, call_id)
                          for (name, arguments), call_id in zip(reply.tool_calls, ids))
            done = ToolRound(calls, reply.usage)
            rounds.append(done)
            sent += done.messages()
            last = len(rounds) >= self.max_rounds
            reply = send(sent, replace(options, tool_choice="none") if last else options)
        return reply, tuple(rounds)



def _check_calls(calls: Sequence[tuple[str, Mapping[str, Any]]]) -> None:
    """Refuse, before anything runs, a call whose arguments no transcript could keep."""
    for name, arguments in calls:
        unkept = problem(arguments)
        if unkept:
            raise InvalidReply(f"The model called {shown_name(name)[:60]} with arguments that "
                               f"cannot be kept: {unkept}; nothing was run or added.")


def replayed(rounds: Sequence[ToolRound], on_event: Callable[[ToolEvent], None]) -> None:
    """Show a replayed turn's recorded calls; nothing is run."""
    for tool_round in rounds:
        for call in tool_round.calls:
            on_event(ToolEvent("done", call.name, call.arguments, call, replayed=True))
