"""Structured output (SPEC 11): a reply parsed and validated into a Python object.

``%%chat --schema NAME`` takes a pydantic model class, a dataclass or a JSON Schema dict
from the user namespace (``--json``: any JSON object). The request carries the schema as
the SDK's ``response_format``; the reply is parsed and validated *before* the turn is
committed, so a reply that does not fit commits nothing.

Validation uses what the schema is written in, so no new dependency is forced on anyone:
a pydantic model validates itself; a dataclass goes through pydantic's ``TypeAdapter``
(the only well-kept library that turns a plain dataclass into a JSON Schema and back);
a dict schema is checked with ``jsonschema``, which nbformat already installs.
"""

from __future__ import annotations

import dataclasses
import json
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal

from .errors import InvalidReply, UsageProblem
from .storable import problem
from .template import fence

SchemaKind = Literal["model", "dataclass", "dict", "json"]

#: The name a ``--json`` turn records as its schema.
ANY_JSON = "json"
_FENCED = re.compile(r"^\s*(`{3,}|~{3,})[^\n]*\n(?P<body>.*)\n\s*\1\s*$", re.S)
_PROBLEM_WIDTH = 200


@dataclass(frozen=True)
class Parsed:
    """A validated reply: the Python object for the user, and its JSON data for the record."""

    value: Any
    data: Any


@dataclass(frozen=True)
class Schema:
    """What a structured turn asks for and how its reply becomes a Python object."""

    name: str
    kind: SchemaKind
    target: Any = field(default=None, compare=False, repr=False)
    json_schema: dict[str, Any] | None = field(default=None, compare=False, repr=False)

    @property
    def response_format(self) -> str:
        """The request's format as plain text: ``"json"`` or the JSON Schema's JSON.

        Text keeps ``RequestOptions`` hashable; the backend turns it into the SDK's
        ``response_format`` value.
        """
        if self.kind == "json" or self.json_schema is None:
            return ANY_JSON
        return json.dumps(self.json_schema, ensure_ascii=False)

    def parse(self, text: str, *, truncated: bool = False) -> Parsed:
        """The reply as a validated object; ``InvalidReply`` names the first problem."""
        body = _unfenced(text)
        try:
            data = json.loads(body, parse_constant=_no_constant)
        except json.JSONDecodeError as err:
            cut = " (the reply was cut at max_tokens; raise --max-tokens)" if truncated else ""
            raise self._invalid(
                f"not valid JSON: {err.msg} at line {err.lineno} column {err.colno}{cut}"
            ) from None
        except ValueError as err:  # NaN/Infinity (below), a number of over 4,300 digits
            raise self._invalid(_short(str(err).split(";")[0])) from None
        except RecursionError:
            raise self._invalid("it is nested too deeply to read") from None
        unkept = problem(data)  # checked before any schema: a transcript must hold it
        if unkept:
            raise self._invalid(unkept)
        if self.kind == "json":
            if not isinstance(data, dict):
                raise self._invalid(f"it is a JSON {_json_type(data)}")
            return Parsed(data, data)
        if self.kind == "dict":
            return Parsed(data, self._check_dict(data))
        return self._check_pydantic(body)

    def _invalid(self, problem: str) -> InvalidReply:
        if self.kind == "json":
            return InvalidReply(f"The reply is not the JSON object --json asked for: {problem}")
        return InvalidReply(f"The reply does not fit {self.name}: {problem}")

    def _check_dict(self, data: Any) -> Any:
        from jsonschema.exceptions import best_match

        error = best_match(_validator(self.response_format).iter_errors(data))
        if error is not None:
            where = _path(error.absolute_path) or "the reply"
            raise self._invalid(f"{where}: {_short(error.message)}")
        return data

    def _check_pydantic(self, body: str) -> Parsed:
        import pydantic

        try:
            if self.kind == "model":
                value = self.target.model_validate_json(body)
                return Parsed(value, value.model_dump(mode="json"))
            adapter = _adapter(self.target, self.name)
            value = adapter.validate_json(body)
            return Parsed(value, adapter.dump_python(value, mode="json"))
        except pydantic.ValidationError as err:
            first = err.errors(include_url=False)[0]
            where = _path(first.get("loc", ())) or "the reply"
            raise self._invalid(f"{where}: {_short(str(first.get('msg', '')))}") from None


def any_json() -> Schema:
    """``--json``: any JSON object, returned as a dict."""
    return Schema(ANY_JSON, "json")


def resolve(name: str, namespace: Mapping[str, Any]) -> Schema:
    """``--schema NAME``: the schema a name (``Fact``, ``models.Fact``) refers to."""
    head, *rest = name.split(".")
    if head not in namespace:
        raise UsageProblem(f"--schema {name}: no variable {head!r} in the notebook; define "
                           "the pydantic model, dataclass or JSON Schema dict first.")
    target = namespace[head]
    for part in rest:
        if not hasattr(target, part):
            raise UsageProblem(f"--schema {name}: {head} has no attribute {part!r}.")
        target = getattr(target, part)
    return schema_of(target, name)


def from_flags(name: str | None, json_flag: bool,
               namespace: Mapping[str, Any]) -> Schema | None:
    """What ``--schema NAME`` / ``--json`` ask the reply to be (None: prose)."""
    if name is None and not json_flag:
        return None
    return any_json() if json_flag or name is None else resolve(name, namespace)


def schema_of(target: Any, name: str | None = None) -> Schema:
    """A ``Schema`` for a pydantic model class, a dataclass, or a JSON Schema dict."""
    shown = name or str(getattr(target, "__name__", "the schema"))
    pydantic = sys.modules.get("pydantic")  # a pydantic class means pydantic is imported
    if isinstance(target, type) and pydantic is not None and (
        issubclass(target, pydantic.BaseModel) and target is not pydantic.BaseModel
    ):
        return Schema(shown, "model", target, _model_schema(target))
    if isinstance(target, type) and dataclasses.is_dataclass(target):
        return Schema(shown, "dataclass", target, _adapter(target, shown).json_schema())
    if isinstance(target, Mapping):
        try:
            text = json.dumps(target, ensure_ascii=False)
        except (TypeError, ValueError) as err:
            raise UsageProblem(f"--schema {shown} is not plain JSON data: "
                               f"{_short(str(err))}.") from None
        return Schema(shown, "dict", target, _checked_schema(text, shown))
    kind = "a dataclass instance" if dataclasses.is_dataclass(target) else (
        f"a {type(target).__name__}")
    raise UsageProblem(f"--schema {shown} is {kind}; give a pydantic model class, a dataclass "
                       "or a JSON Schema dict.")


# Describing a schema costs far more than a turn's own work (a metaschema check of a
# dict: milliseconds), and a notebook asks with the same one again and again. A class
# redefined in a cell is a new object, so it gets a new entry.
@lru_cache(maxsize=64)
def _model_schema(target: Any) -> dict[str, Any]:
    return target.model_json_schema()  # type: ignore[no-any-return]  # pydantic: a dict


@lru_cache(maxsize=64)
def _adapter(target: type, name: str = "") -> Any:
    try:
        from pydantic import TypeAdapter
    except ImportError:
        raise UsageProblem(
            f"--schema {name or target.__name__}: a dataclass schema needs pydantic to "
            "describe and check it (pip install pydantic), or use a JSON Schema dict."
        ) from None
    return TypeAdapter(target)


@lru_cache(maxsize=64)
def _checked_schema(text: str, name: str) -> dict[str, Any]:
    """A JSON Schema's JSON text as plain data, checked against its metaschema."""
    from jsonschema import validators
    from jsonschema.exceptions import SchemaError

    plain: dict[str, Any] = json.loads(text)
    try:
        validators.validator_for(plain).check_schema(plain)
    except SchemaError as err:
        where = ".".join(str(p) for p in err.absolute_path) or "the top level"
        raise UsageProblem(f"--schema {name} is not a valid JSON Schema ({where}: "
                           f"{_short(err.message)}).") from None
    return plain


@lru_cache(maxsize=64)
def _validator(text: str) -> Any:
    """A validator for the JSON Schema whose JSON is ``text`` (built once per schema)."""
    from jsonschema import validators

    schema = json.loads(text)
    return validators.validator_for(schema)(schema)


def _no_constant(name: str) -> Any:
    """``NaN``, ``Infinity``: Python's JSON reader takes them, JSON (and a notebook) does not."""
    raise ValueError(f"it holds {name}, which JSON (and so a notebook) cannot store")


def _path(parts: Any) -> str:
    """Where in the reply a problem is: its keys as typed, or escaped if they are not names."""
    return ".".join(str(p) if str(p).isidentifier() else repr(p) for p in parts)


def _unfenced(text: str) -> str:
    """The JSON inside a Markdown code fence, if the model wrapped it in one."""
    found = _FENCED.match(text)
    return found.group("body") if found else text


def _json_type(data: Any) -> str:
    names = {list: "array", str: "string", bool: "boolean", int: "number", float: "number"}
    return "null" if data is None else names.get(type(data), type(data).__name__)


def _short(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= _PROBLEM_WIDTH else line[: _PROBLEM_WIDTH - 1] + "…"


def json_markdown(data: Any) -> str:
    """The value as a fenced ``json`` block: the renderer highlights it as code."""
    return fence(json.dumps(data, ensure_ascii=False, indent=2), "json")
