"""The emulated model's reply text, shaped by the JSON the request asks for.

A provider with structured outputs (OpenAI ``response_format: json_schema``, Ollama ``format:
<schema>``) decodes under the schema: the reply always validates, a string ``enum`` is a closed
choice, no property the schema forbids appears. Clients rely on that, so the emulator does the same:
``answer`` walks the schema and builds a value for it (objects, enums, consts, strings, numbers,
integers, booleans, arrays, nulls, ``anyOf``/``oneOf``/``allOf`` and local ``$ref``), asking the
classification model (``emulator_model``) for every string enum, restricted to its members. An array
of a string enum (a multi-label answer) holds every member with evidence in the document, best first.
Any other string, number or list of strings (a structured field) is read from the document
(``emulator_fields``): ``null`` where the document does not say and the schema allows it.

The document the model reads is the fenced text of docmill's own prompt; any other prompt (a user
of the ``openai`` client writing their own) is read whole. Strict OpenAI schemas are checked the way
OpenAI checks them (every property required, ``additionalProperties: false``), and refused with
400 otherwise (:func:`strict_schema_problem`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from docmill.llm import emulator_model
from docmill.llm.emulator_fields import MISSING, Reader, reads
from docmill.llm.prompt import LabelSpec, answer_json, parse_messages

Schema = Mapping[str, Any]
Chooser = Callable[[Sequence[str]], str]
_REASON_NAMES = ("reason", "explanation", "rationale", "justification", "why")
_DEPTH = 16  # a recursive $ref stops here, as a provider's grammar would bound it


def requested(request: Mapping[str, Any], *, ollama: bool) -> tuple[bool, Schema | None]:
    """(whether JSON is asked for, the schema it must follow or None)."""
    if ollama:
        wanted = request.get("format")
        return bool(wanted), wanted if isinstance(wanted, Mapping) else None
    response_format = request.get("response_format") or {}
    if not isinstance(response_format, Mapping):
        return False, None
    kind = response_format.get("type")
    if kind != "json_schema":
        return kind == "json_object", None
    schema = (response_format.get("json_schema") or {}).get("schema")
    return True, schema if isinstance(schema, Mapping) else {"type": "object"}


def strict_schema_problem(request: Mapping[str, Any]) -> str | None:
    """Why OpenAI would refuse this strict schema (None when it is acceptable or not strict)."""
    response_format = request.get("response_format") or {}
    spec = response_format.get("json_schema") if isinstance(response_format, Mapping) else None
    if not isinstance(spec, Mapping) or not spec.get("strict"):
        return None
    schema = spec.get("schema")
    if not isinstance(schema, Mapping) or schema.get("type") != "object":
        return "a strict json_schema must be an object schema"
    return _object_problem(schema, "")


def _object_problem(schema: Schema, where: str) -> str | None:
    """The first strict-mode violation in ``schema`` and the objects nested in it."""
    properties = schema.get("properties") or {}
    if schema.get("type") == "object" or "properties" in schema:
        if schema.get("additionalProperties") is not False:
            return f"'additionalProperties' is required to be supplied and to be false (at {where or '/'})"
        missing = [name for name in properties if name not in (schema.get("required") or [])]
        if missing:
            return (
                f"'required' must include every key in properties; missing {missing[0]!r} (at {where or '/'})"
            )
    children = list(properties.items()) + [("items", schema.get("items"))]
    children += [(f"anyOf[{i}]", s) for i, s in enumerate(schema.get("anyOf") or [])]
    children += [(f"$defs.{k}", s) for k, s in (schema.get("$defs") or {}).items()]
    for name, child in children:
        if isinstance(child, Mapping) and (problem := _object_problem(child, f"{where}/{name}")):
            return problem
    return None


def answer(
    request: Mapping[str, Any],
    messages: Sequence[Mapping[str, Any]],
    *,
    ollama: bool,
    seed: int,
    error_rate: float,
    gullible: bool,
    bad_label: bool,
) -> str:
    """The reply text: JSON following the requested schema, bare JSON, or JSON inside prose."""
    labels, text = parse_messages(messages)
    if not text:  # not docmill's prompt: the model reads everything the user wrote
        text = "\n".join(str(m.get("content", "")) for m in messages if m.get("role") == "user")
    wants_json, schema = requested(request, ollama=ollama)

    def choose(names: Sequence[str]) -> tuple[str, float, str]:
        offered = {spec.name: spec for spec in labels}
        specs = [offered.get(name, LabelSpec(name)) for name in names] if names else labels
        found = emulator_model.classify(specs, text, seed=seed, error_rate=error_rate, gullible=gullible)
        if names and found[0] not in names:  # decoding under the schema cannot leave the enum
            found = emulator_model.classify(specs, text, seed=seed, error_rate=error_rate)
        return ("not-a-label", *found[1:]) if bad_label else found

    def choose_many(names: Sequence[str]) -> list[str]:
        offered = {spec.name: spec for spec in labels}
        found = emulator_model.evident([offered.get(name, LabelSpec(name)) for name in names], text)
        return ["not-a-label"] if bad_label else found

    if schema is None:
        content = answer_json(*choose(()))
        return content if wants_json else f"Here is the classification:\n```json\n{content}\n```"
    return json.dumps(generate(schema, choose, choose_many, Reader(text)))


def generate(
    schema: Schema,
    choose: Callable[[Sequence[str]], tuple[str, float, str]],
    choose_many: Callable[[Sequence[str]], list[str]] | None = None,
    reader: Reader | None = None,
) -> Any:
    """A value valid under ``schema``; string enums are chosen by ``choose`` among their members,
    arrays of a string enum by ``choose_many`` (when given), other properties read from the
    document by ``reader`` (``emulator_fields``) when it states them."""
    builder = _Builder(schema, choose, 0.0, "", "")
    builder.choose_many, builder.reader = choose_many, reader
    builder.label, builder.confidence, builder.reason = choose(builder.first_enum(schema, 0))
    return builder.value(schema, "", 0)


class _Builder:
    """One walk over a schema. ``label`` answers a string property named like a label with no enum."""

    def __init__(
        self,
        root: Schema,
        choose: Callable[[Sequence[str]], tuple[str, float, str]],
        confidence: float,
        reason: str,
        label: str,
    ) -> None:
        self.root, self.choose = root, choose
        self.confidence, self.reason, self.label = confidence, reason, label
        self.choose_many: Callable[[Sequence[str]], list[str]] | None = None
        self.reader: Reader | None = None

    def value(self, schema: Any, name: str, depth: int) -> Any:
        schema = self._resolve(schema)
        if not isinstance(schema, Mapping) or depth > _DEPTH:
            return None if depth > _DEPTH else self.reason
        if "const" in schema:
            return schema["const"]
        if "enum" in schema:
            return self._enum(list(schema["enum"]))
        for key in ("anyOf", "oneOf"):
            if schema.get(key):
                branch = self._resolve(_pick_branch(schema[key]))
                if _nullable(schema[key]) and self._unstated(branch, name):
                    return None  # the document does not say: null, where the schema allows it
                return self.value(branch, name, depth + 1)
        if schema.get("allOf"):
            return self.value(_merged(schema, [self._resolve(s) for s in schema["allOf"]]), name, depth + 1)
        return self._typed(schema, _type_of(schema), name, depth)

    def _read(self, schema: Any, name: str) -> Any:
        """What the document says of property ``name`` (``MISSING``: nothing, or not a field)."""
        if self.reader is None or not name or not isinstance(schema, Mapping):
            return MISSING
        return self.reader.read(name, schema, _type_of(schema))

    def _unstated(self, schema: Any, name: str) -> bool:
        """Whether ``name`` is a field (not a label) that the document does not state."""
        field = isinstance(schema, Mapping) and reads(schema, _type_of(schema))
        return field and self.reader is not None and self._read(schema, name) is MISSING

    def _typed(self, schema: Schema, kind: str, name: str, depth: int) -> Any:
        if (found := self._read(schema, name)) is not MISSING:
            return found
        if kind == "object":
            return self._object(schema, depth)
        if kind == "array":
            return self._array(schema, name, depth)
        if kind in ("number", "integer"):
            return _number(schema, self.confidence, integer=kind == "integer")
        if kind == "boolean":
            return self.confidence >= 0.5
        if kind == "null":
            return None
        return self._string(schema, name)

    def _resolve(self, schema: Any) -> Any:
        """Follow a local ``$ref`` (``#/$defs/X``, ``#/definitions/X``, ``#``)."""
        seen = 0
        while isinstance(schema, Mapping) and isinstance(schema.get("$ref"), str) and seen < _DEPTH:
            target: Any = self.root
            for part in schema["$ref"].removeprefix("#").strip("/").split("/"):
                if part:
                    target = target.get(part.replace("~1", "/").replace("~0", "~"), {})
            schema, seen = target, seen + 1
        return schema

    def first_enum(self, schema: Any, depth: int) -> list[str]:
        """The first string enum met (the label, in a classification schema), for confidence and reason."""
        schema = self._resolve(schema)
        if not isinstance(schema, Mapping) or depth > _DEPTH:
            return []
        if names := [m for m in schema.get("enum") or [] if isinstance(m, str)]:
            return names
        children = [*(schema.get("properties") or {}).values(), schema.get("items")]
        children += [*(schema.get("anyOf") or []), *(schema.get("oneOf") or []), *(schema.get("allOf") or [])]
        for child in children:
            if names := self.first_enum(child, depth + 1):
                return names
        return []

    def _enum(self, members: list[Any]) -> Any:
        names = [m for m in members if isinstance(m, str)]
        if not names:
            return members[0] if members else None
        return self.choose(names)[0]

    def _object(self, schema: Schema, depth: int) -> dict[str, Any]:
        properties: Mapping[str, Any] = schema.get("properties") or {}
        extra = schema.get("additionalProperties", True)
        if not properties and extra is True and not schema.get("required"):  # any object: the usual answer
            return {"label": self.label, "confidence": round(self.confidence, 3), "reason": self.reason}
        result = {key: self.value(sub, key, depth + 1) for key, sub in properties.items()}
        for key in schema.get("required") or []:
            if key not in result:
                result[key] = self.value(extra if isinstance(extra, Mapping) else {}, key, depth + 1)
        return result

    def _array(self, schema: Schema, name: str, depth: int) -> list[Any]:
        low = int(schema.get("minItems") or 0)
        high = schema.get("maxItems")
        count = max(low, 1) if high is None else min(max(low, 1), int(high))
        item = self._resolve(schema.get("items") or {})
        names = [m for m in item.get("enum") or [] if isinstance(m, str)] if isinstance(item, Mapping) else []
        if names and self.choose_many is not None:
            return _sized(self.choose_many(names), names, low, high)
        if isinstance(item, Mapping) and "enum" in item and count > 1 and schema.get("uniqueItems"):
            first = self._enum(list(item["enum"]))
            rest = [m for m in item["enum"] if m != first]
            return [first, *rest][:count]
        return [self.value(item, name, depth + 1) for _ in range(count)]

    def _string(self, schema: Schema, name: str) -> str:
        if schema.get("format") in ("date", "date-time"):  # a valid one, as decoding under it gives
            return "2024-01-15" if schema["format"] == "date" else "2024-01-15T00:00:00Z"
        lowered = name.lower()
        text = self.label if lowered in ("label", "category", "class", "classification") else self.reason
        if any(word in lowered for word in _REASON_NAMES):
            text = self.reason
        low, high = int(schema.get("minLength") or 0), schema.get("maxLength")
        text = text.ljust(low, ".")
        return text if high is None else text[: int(high)]


def _sized(chosen: list[str], names: list[str], low: int, high: Any) -> list[str]:
    """``chosen`` within ``minItems``/``maxItems``: cut, or padded with the other members."""
    chosen = chosen[: int(high)] if high is not None else chosen
    rest = [n for n in names if n not in chosen]
    return chosen + rest[: max(0, low - len(chosen))]


def _type_of(schema: Schema) -> str:
    kind = schema.get("type")
    if isinstance(kind, list):  # ["string", "null"]: answer the first that is not null
        kind = next((k for k in kind if k != "null"), "null")
    if isinstance(kind, str):
        return kind
    return "object" if "properties" in schema else "array" if "items" in schema else "string"


def _nullable(branches: Sequence[Any]) -> bool:
    return any(isinstance(b, Mapping) and b.get("type") == "null" for b in branches)


def _pick_branch(branches: Sequence[Any]) -> Any:
    """The branch a model would take: an enum first (it carries the choice), then anything not null."""
    for branch in branches:
        if isinstance(branch, Mapping) and "enum" in branch:
            return branch
    for branch in branches:
        if not (isinstance(branch, Mapping) and branch.get("type") == "null"):
            return branch
    return branches[0]


def _merged(schema: Schema, parts: Sequence[Any]) -> dict[str, Any]:
    """``allOf`` as one schema: properties and required lists joined, other keys overridden."""
    merged: dict[str, Any] = {k: v for k, v in schema.items() if k != "allOf"}
    for part in parts:
        if not isinstance(part, Mapping):
            continue
        properties = {**(merged.get("properties") or {}), **(part.get("properties") or {})}
        required = [*(merged.get("required") or []), *(part.get("required") or [])]
        merged.update(part)
        merged.update(properties=properties, required=list(dict.fromkeys(required)))
    return merged


def _number(schema: Schema, confidence: float, *, integer: bool) -> float | int:
    """``confidence`` placed within the schema's bounds (scaled to them when both are given)."""
    low = _bound(schema, "minimum", "exclusiveMinimum")
    high = _bound(schema, "maximum", "exclusiveMaximum")
    if low is not None and high is not None:
        value = low + confidence * (high - low)
    else:
        value = confidence * (100 if integer else 1)
        value = max(value, low) if low is not None else value
        value = min(value, high) if high is not None else value
    if integer:
        return _inside(round(value), schema)
    return _inside(round(value, 3), schema)


def _bound(schema: Schema, inclusive: str, exclusive: str) -> float | None:
    for key in (inclusive, exclusive):
        value = schema.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    return None


def _inside(value: float | int, schema: Schema) -> float | int:
    """Step ``value`` off exclusive bounds (the rare schema that has them)."""
    step = 1 if isinstance(value, int) else 0.001
    low, high = schema.get("exclusiveMinimum"), schema.get("exclusiveMaximum")
    if isinstance(low, int | float) and not isinstance(low, bool) and value <= low:
        value = low + step
    if isinstance(high, int | float) and not isinstance(high, bool) and value >= high:
        value = high - step
    return value
