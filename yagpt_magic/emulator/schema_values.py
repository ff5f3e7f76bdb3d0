"""Deterministic JSON values for a JSON Schema, filled from the user's text where it can.

Used for ``response_format`` (``json_schema``: the reply is the JSON of
:func:`value_for`; ``json_object``: :func:`object_reply`) and for the arguments of tool
calls. The rule, the same everywhere:

- numbers (``integer``/``number``) come from the numbers written in the text, in order
  (an array of numbers takes all of them: "5, 4, a, 1" gives ``[5, 4, 1]``, as the real
  model did in test_structured_output_json_schema); without one, ``minimum`` or 0;
- strings come from quoted strings in the text ("…", '…', «…»), in order; without one,
  the schema's ``default``, its first ``examples`` entry, a value of its ``format``
  (date, date-time, email, uri, uuid), else ``"example"``; ``minLength``/``maxLength`` hold;
- an ``enum`` (or ``const``) takes the first value the text mentions, else its first value;
- booleans are the ``default`` or false; ``null`` is null, and so is an optional
  (``anyOf`` with null) whose ``default`` is null;
- objects get every property (required and optional), filled scalars first, then arrays
  and objects, each group by name (a protobuf Struct does not keep the schema's order on
  the wire, so the order written in the schema cannot matter); arrays get ``minItems``
  items (at least one) unless the text supplies numbers or strings for them;
- ``$ref`` (``#/$defs/...`` as pydantic emits, or ``#/definitions/...``), ``allOf``,
  ``anyOf``/``oneOf`` (the first non-null branch) and type lists are followed.

The values are deterministic: the same schema and text always give the same JSON.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

__all__ = ["Hints", "object_reply", "value_for"]

_NUMBER_RE = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?!\w)")
_QUOTED_RE = re.compile(r"\"([^\"\n]+)\"|'([^'\n]+)'|«([^»\n]+)»|“([^”\n]+)”")
_FORMATS = {
    "date": "2024-03-07",
    "date-time": "2024-03-07T12:00:00Z",
    "time": "12:00:00",
    "email": "user@example.com",
    "uri": "https://example.com/",
    "uuid": "00000000-0000-4000-8000-000000000000",
}
_MAX_DEPTH = 8


class Hints:
    """What a text offers to fill values with: its numbers, quoted strings and words."""

    def __init__(self, text: str, strings: Sequence[str] = ()) -> None:
        self.text = text
        self.numbers = [float(m) for m in _NUMBER_RE.findall(text)]
        quoted = [next(g for g in m if g) for m in _QUOTED_RE.findall(text)]
        self.strings = [*strings, *quoted]
        self._lower = text.lower()

    def mentions(self, value: object) -> bool:
        """Whether the text names ``value`` (case-insensitive, as a whole word)."""
        word = re.escape(str(value).lower())
        return bool(word) and re.search(rf"(?<!\w){word}(?!\w)", self._lower) is not None


class _Filler:
    """One pass over a schema; numbers and strings are consumed in the order met."""

    def __init__(self, root: Mapping[str, Any], hints: Hints) -> None:
        self.root = root
        self.hints = hints
        self._numbers = list(hints.numbers)
        self._strings: Iterator[str] = iter(hints.strings)

    def resolve(self, schema: Mapping[str, Any]) -> Mapping[str, Any]:
        """Follow ``$ref`` and merge ``allOf`` so the caller sees one plain schema."""
        seen = 0
        while "$ref" in schema and seen < _MAX_DEPTH:
            target: Any = self.root
            for part in str(schema["$ref"]).lstrip("#/").split("/"):
                target = target.get(part, {}) if isinstance(target, Mapping) else {}
            rest = {k: v for k, v in schema.items() if k != "$ref"}
            schema = {**target, **rest}
            seen += 1
        if "allOf" in schema:
            merged: dict[str, Any] = {k: v for k, v in schema.items() if k != "allOf"}
            for part in schema["allOf"]:
                sub = self.resolve(part)
                for key, value in sub.items():
                    if key == "properties":
                        merged["properties"] = {**merged.get("properties", {}), **value}
                    elif key == "required":
                        merged["required"] = [*merged.get("required", []), *value]
                    else:
                        merged.setdefault(key, value)
            schema = merged
        for key in ("anyOf", "oneOf"):
            if key in schema:
                branches = [self.resolve(b) for b in schema[key]]
                nullable = any(b.get("type") == "null" for b in branches)
                if nullable and "default" in schema and schema["default"] is None:
                    return {"type": "null"}
                usable = [b for b in branches if b.get("type") != "null"] or branches
                rest = {k: v for k, v in schema.items() if k != key}
                schema = {**rest, **usable[0]}
        return schema

    def value(self, schema: Mapping[str, Any], depth: int = 0) -> Any:
        schema = self.resolve(schema)
        if "const" in schema:
            return schema["const"]
        if "enum" in schema:
            choices = list(schema["enum"])
            return next((c for c in choices if self.hints.mentions(c)), choices[0])
        kind = schema.get("type")
        if isinstance(kind, list):
            kind = next((k for k in kind if k != "null"), "null")
        if kind is None:
            kind = "object" if "properties" in schema else "string"
        if depth > _MAX_DEPTH:
            return None if kind == "null" else _EMPTY.get(kind, "")
        if kind == "object":
            props = schema.get("properties", {})
            filled = {name: self.value(props[name], depth + 1) for name in self.fill_order(props)}
            return {name: filled[name] for name in props}
        if kind == "array":
            return self.array(schema, depth)
        if kind in ("integer", "number"):
            return self.number(schema, integer=kind == "integer")
        if kind == "boolean":
            return bool(schema.get("default", False))
        if kind == "null":
            return None
        return self.string(schema)

    def fill_order(self, props: Mapping[str, Any]) -> list[str]:
        """Scalars before arrays and objects, each by name: a Struct loses the schema's order."""

        def nested(name: str) -> bool:
            sub = self.resolve(props[name])
            return "enum" not in sub and sub.get("type", "object") in ("array", "object")

        return sorted(props, key=lambda name: (nested(name), name))

    def array(self, schema: Mapping[str, Any], depth: int) -> list[Any]:
        items = self.resolve(schema.get("items", {}))
        low = int(schema.get("minItems", 1))
        high = int(schema.get("maxItems", max(low, 10_000)))
        kind = items.get("type")
        found: list[Any] = []
        if kind in ("integer", "number") and "enum" not in items:
            found = self.take_numbers(items, integer=kind == "integer", every=True)
        elif kind == "string" and "enum" not in items and self.hints.strings:
            found = [self.string(items) for _ in self.hints.strings]
        while len(found) < low:
            found.append(self.value(items, depth + 1))
        return found[:high]

    def take_numbers(
        self, schema: Mapping[str, Any], *, integer: bool, every: bool
    ) -> list[int | float]:
        """The text's next number (or all of them) that fits ``schema``, consumed."""
        low = schema.get("minimum", schema.get("exclusiveMinimum"))
        high = schema.get("maximum", schema.get("exclusiveMaximum"))
        taken: list[int | float] = []
        while self._numbers and (every or not taken):
            candidate = self._numbers.pop(0)
            if integer and candidate != int(candidate):
                continue
            if (low is not None and candidate < low) or (high is not None and candidate > high):
                continue
            taken.append(int(candidate) if integer else candidate)
        return taken

    def number(self, schema: Mapping[str, Any], *, integer: bool) -> int | float:
        taken = self.take_numbers(schema, integer=integer, every=False)
        if taken:
            return taken[0]
        low = schema.get("minimum", schema.get("exclusiveMinimum"))
        if "default" in schema:
            return schema["default"]  # type: ignore[no-any-return]
        base = low if low is not None else 0
        if "exclusiveMinimum" in schema and low is not None:
            base = low + 1
        return int(base) if integer else float(base)

    def string(self, schema: Mapping[str, Any]) -> str:
        text = next(self._strings, None)
        if text is None:
            if isinstance(schema.get("default"), str):
                text = schema["default"]
            elif schema.get("examples"):
                text = str(schema["examples"][0])
            else:
                text = _FORMATS.get(str(schema.get("format")), "example")
        low = int(schema.get("minLength", 0))
        high = schema.get("maxLength")
        if len(text) < low:
            text = text + "x" * (low - len(text))
        if high is not None:
            text = text[: int(high)]
        return text


_EMPTY: dict[str, Any] = {"object": {}, "array": [], "integer": 0, "number": 0.0,
                          "boolean": False, "string": ""}


def value_for(schema: Mapping[str, Any], text: str, *, strings: Sequence[str] = ()) -> Any:
    """A value valid against ``schema``, filled from ``text`` (see the module docstring).

    ``strings`` go before the text's quoted strings (a tool call's expression, say).
    """
    return _Filler(schema, Hints(text, strings)).value(schema)


def object_reply(text: str, reply: str, messages: int, digest: str) -> str:
    """The JSON object a ``json_object`` request gets: what the emulator saw, as data."""
    hints = Hints(text)
    payload = {
        "source": "offline emulator",
        "question": text.strip().splitlines()[0][:200] if text.strip() else "",
        "numbers": [int(n) if n == int(n) else n for n in hints.numbers],
        "quoted": hints.strings,
        "messages": messages,
        "digest": digest,
        "note": reply,
    }
    return json.dumps(payload, ensure_ascii=False)
