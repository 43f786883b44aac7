"""Every schema the emulator is given gets a value valid under it (generated schemas, jsonschema)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from docmill.llm import emulator_schema

jsonschema = pytest.importorskip("jsonschema")

NAMES = st.sampled_from(["label", "confidence", "reason", "pages", "tags", "why", "x"])
ENUM = st.lists(st.sampled_from(["invoice", "letter", "memo", "HACKED"]), min_size=1, max_size=3, unique=True)


def _leaf() -> st.SearchStrategy[dict[str, Any]]:
    bounds = {
        "minimum": st.integers(-5, 5),
        "maximum": st.integers(6, 200),
        "exclusiveMinimum": st.integers(-9, -6),
    }
    bounded = st.fixed_dictionaries({"type": st.sampled_from(["number", "integer"])}, optional=bounds)
    text = st.fixed_dictionaries(
        {"type": st.just("string")},
        optional={"minLength": st.integers(0, 40), "maxLength": st.integers(40, 80)},
    )
    return st.one_of(
        text,
        bounded,
        st.builds(lambda e: {"type": "string", "enum": e}, ENUM),
        st.just({"type": "boolean"}),
        st.just({"type": "null"}),
        st.just({"type": ["string", "null"]}),
        st.builds(lambda c: {"const": c}, st.integers()),
    )


def _extend(children: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    props = st.dictionaries(NAMES, children, max_size=4)
    objects = st.builds(
        lambda p, closed: {
            "type": "object",
            "properties": p,
            "required": sorted(p),
            "additionalProperties": not closed,
        },
        props,
        st.booleans(),
    )
    arrays = st.builds(
        lambda item, low: {"type": "array", "items": item, "minItems": low, "maxItems": low + 2},
        children,
        st.integers(0, 3),
    )
    unions = st.builds(lambda a, b: {"anyOf": [a, b]}, children, children)
    return st.one_of(objects, arrays, unions)


SCHEMAS = st.recursive(_leaf(), _extend, max_leaves=12)


def _choose(names: Sequence[str]) -> tuple[str, float, str]:
    return (names[-1] if names else "unknown"), 0.73, "because"


@settings(max_examples=300, deadline=None)
@given(SCHEMAS)
def test_generated_values_validate(schema: dict[str, Any]) -> None:
    jsonschema.validate(emulator_schema.generate(schema, _choose), schema)


def test_enum_members_come_from_the_chooser_and_refs_resolve() -> None:
    schema = {
        "type": "object",
        "properties": {
            "kind": {"$ref": "#/$defs/K"},
            "score": {"type": "integer", "minimum": 0, "maximum": 10},
        },
        "$defs": {"K": {"enum": ["a", "b", "c"]}},
        "required": ["kind", "score"],
        "additionalProperties": False,
    }
    assert emulator_schema.generate(schema, _choose) == {"kind": "c", "score": 7}


def test_strict_schema_problems_are_named() -> None:
    def body(schema: dict[str, Any]) -> dict[str, Any]:
        return {"response_format": {"type": "json_schema", "json_schema": {"schema": schema, "strict": True}}}

    closed = {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}
    assert emulator_schema.strict_schema_problem(body({**closed, "additionalProperties": False})) is None
    assert "additionalProperties" in str(emulator_schema.strict_schema_problem(body(closed)))
    missing = {**closed, "required": [], "additionalProperties": False}
    assert "'a'" in str(emulator_schema.strict_schema_problem(body(missing)))
