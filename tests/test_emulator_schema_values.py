"""JSON values from a schema (emulator/schema_values.py): valid, deterministic, text-fed."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest

from yagpt_magic.emulator.schema_values import Hints, value_for

SCHEMAS: list[dict[str, Any]] = [
    {"type": "string"},
    {"type": "integer", "minimum": 10, "maximum": 20},
    {"type": "number", "exclusiveMinimum": 0},
    {"type": "boolean"},
    {"type": "null"},
    {"type": ["string", "null"]},
    {"enum": ["a", "b", 3]},
    {"const": {"fixed": True}},
    {"type": "string", "minLength": 12, "maxLength": 14},
    {"type": "string", "format": "date-time"},
    {"type": "string", "format": "email"},
    {"type": "array", "items": {"type": "string"}, "minItems": 3, "maxItems": 3},
    {"type": "array", "items": {"type": "integer"}, "maxItems": 2},
    {"type": "object", "properties": {"a": {"type": "object", "properties": {
        "b": {"type": "array", "items": {"type": "object", "properties": {
            "c": {"type": "integer"}}, "required": ["c"]}}}}}},
    {"allOf": [{"type": "object", "properties": {"x": {"type": "integer"}}, "required": ["x"]},
               {"properties": {"y": {"type": "string"}}, "required": ["y"]}]},
    {"oneOf": [{"type": "integer"}, {"type": "string"}]},
    {"definitions": {"N": {"type": "integer", "minimum": 1}},
     "type": "object", "properties": {"n": {"$ref": "#/definitions/N"}}, "required": ["n"]},
    {"$defs": {"T": {"type": "object", "properties": {"kids": {
        "type": "array", "items": {"$ref": "#/$defs/T"}}}}}, "$ref": "#/$defs/T"},
]


@pytest.mark.parametrize("schema", SCHEMAS, ids=[str(i) for i in range(len(SCHEMAS))])
@pytest.mark.parametrize("text", ["", 'make "one" and "two" from 12, 3.5, -4 and 18'])
def test_values_validate_and_are_deterministic(schema: dict[str, Any], text: str) -> None:
    value = value_for(schema, text)
    jsonschema.validate(value, schema)
    assert value == value_for(schema, text)


def test_values_come_from_the_text() -> None:
    schema = {
        "type": "object",
        "properties": {
            "title": {"type": "string"},
            "year": {"type": "integer", "minimum": 1900},
            "mood": {"enum": ["happy", "sad"]},
            "scores": {"type": "array", "items": {"type": "number"}},
        },
    }
    value = value_for(schema, "«Solaris», 1972, a sad one; scores 8.1 and 7")
    assert value == {"title": "Solaris", "year": 1972, "mood": "sad", "scores": [8.1, 7.0]}


def test_hints_find_numbers_and_quotes_but_not_inside_words() -> None:
    hints = Hints("""v2 of "x" costs 5, 4.5 or -3; 'y' and “z”""")
    assert hints.numbers == [5.0, 4.5, -3.0]
    assert hints.strings == ["x", "y", "z"]
