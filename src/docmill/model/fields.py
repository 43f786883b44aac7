"""Structured fields: typed values the LLM extracts from each document, validated like labels.

Declared beside ``tasks:`` in a labels file::

    fields:
      section:  {type: integer, required: true, description: "The manual section, 1 to 8."}
      name:     {type: string, description: "The command, function or file the page documents."}
      see_also: {type: string, list: true, description: "The pages named under SEE ALSO."}
      kind:     {type: enum, values: [command, function, format]}

A field's ``type`` is ``string``, ``number``, ``integer``, ``boolean``, ``date`` (``YYYY-MM-DD``) or
``enum`` (one of its ``values``); ``list: true`` makes it a list of those; ``required: true`` refuses
an answer without it (an optional field may be ``null``). The JSON schema of each field is strict,
and every answer is checked against it (``check_value``): a value of the wrong type, outside the
enum or missing when required raises ``InvalidModelOutput`` naming the field, which the LLM
classifier asks again and then quarantines with that reason.
"""

from __future__ import annotations

import dataclasses
import datetime
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from docmill.errors import InvalidModelOutput
from docmill.settings import SettingError, check, from_mapping

Kind = Literal["string", "number", "integer", "boolean", "date", "enum"]
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_JSON_TYPES = {
    "string": "string",
    "number": "number",
    "integer": "integer",
    "boolean": "boolean",
    "date": "string",
}
_WORDS = {
    "string": "a string",
    "number": "a number",
    "integer": "an integer",
    "boolean": "true or false",
    "date": "a date YYYY-MM-DD",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Field:
    """One field to extract (as written under ``fields.NAME``, checked key by key)."""

    name: str = ""
    type: Kind = "string"
    list: bool = False
    values: tuple[str, ...] = ()
    required: bool = False
    description: str = ""

    def __post_init__(self) -> None:
        check(self.type != "enum" or bool(self.values), "values", list(self.values), "an enum needs values")
        check(self.type == "enum" or not self.values, "values", list(self.values), "only an enum has values")

    def describe(self) -> dict[str, Any]:
        """What the run record keeps (and export reads): type, list, enum values."""
        return {
            "type": self.type,
            "list": self.list,
            **({"values": list(self.values)} if self.values else {}),
        }


def parse_fields(data: Any) -> tuple[Field, ...]:
    """The ``fields:`` section: a mapping of field name → its settings."""
    if not isinstance(data, Mapping) or not data:
        raise SettingError("fields", "must be a non-empty mapping of field name → {type: …}")
    return tuple(_field(name, entry) for name, entry in data.items())


def _field(name: Any, entry: Any) -> Field:
    key = f"fields.{name}"
    check(isinstance(name, str) and bool(_NAME.match(name)), key, name, "a letter, then letters, digits or _")
    field = from_mapping(Field, entry, key, hidden=("name",))  # the key above is the name
    return dataclasses.replace(field, name=name, description=" ".join(field.description.split()))


def field_schema(field: Field) -> dict[str, Any]:
    """The strict JSON schema of ``field``'s value (nullable when it is optional)."""
    if field.type == "enum":
        one: dict[str, Any] = {"type": "string", "enum": list(field.values)}
    else:
        one = {"type": _JSON_TYPES[field.type]}
    if field.type == "date":
        one["format"] = "date"
    value: dict[str, Any] = {"type": "array", "items": one} if field.list else one
    if field.description:
        value["description"] = field.description
    if field.required:
        return value
    return {"anyOf": [value, {"type": "null"}]}


def check_value(field: Field, value: Any) -> Any:
    """``value`` as recorded (a matching enum member, an integral float as int), or InvalidModelOutput."""
    if value is None:
        if field.required:
            raise InvalidModelOutput(f"field {field.name!r} is required, got null")
        return None
    if not field.list:
        return _one(field, value)
    if not isinstance(value, list):
        raise InvalidModelOutput(f"field {field.name!r}: expected a list, got {str(value)[:40]!r}")
    return [_one(field, item) for item in value]


def _one(field: Field, value: Any) -> Any:
    kind = field.type
    if kind == "enum":
        allowed = {v.casefold(): v for v in field.values}
        if isinstance(value, str) and value.strip().casefold() in allowed:
            return allowed[value.strip().casefold()]
        raise InvalidModelOutput(
            f"field {field.name!r}: {str(value)[:40]!r} is not one of {len(allowed)} values"
        )
    ok = _fits(kind, value)
    if not ok:
        raise InvalidModelOutput(f"field {field.name!r}: expected {_WORDS[kind]}, got {str(value)[:40]!r}")
    return int(value) if kind == "integer" else value


def _fits(kind: str, value: Any) -> bool:
    if kind == "boolean":
        return isinstance(value, bool)
    if isinstance(value, bool):
        return False
    if kind == "integer":
        return isinstance(value, int) or (isinstance(value, float) and value.is_integer())
    if kind == "number":
        return isinstance(value, int | float)
    if kind == "date":
        return isinstance(value, str) and _is_date(value)
    return isinstance(value, str)


def _is_date(text: str) -> bool:
    try:
        datetime.date.fromisoformat(text)
    except ValueError:
        return False
    return len(text) == 10


__all__ = ["Field", "check_value", "field_schema", "parse_fields"]
