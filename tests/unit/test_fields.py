"""Structured fields: parsing with one-line errors, strict schemas, values checked like labels."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from docmill.errors import ConfigError, InvalidModelOutput
from docmill.llm import emulator_schema
from docmill.llm.tasks import build_task_messages, parse_answer, tasks_schema
from docmill.model.fields import Field, check_value, field_schema, parse_fields
from docmill.model.tasks import load_tasks, parse_tasks

FIELDS = """\
fields:
  section: {type: integer, required: true, description: "The manual section."}
  name: {type: string}
  see_also: {type: string, list: true}
  kind: {type: enum, values: [command, function]}
  updated: {type: date}
  ratio: {type: number}
  old: {type: boolean}
"""


def _fields() -> dict[str, Field]:
    return {f.name: f for f in parse_fields(yaml.safe_load(FIELDS)["fields"])}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("type: integer,", "type: int,"), "fields.section.type: invalid value 'int' (one of string"),
        (
            ("required: true", "requird: true"),
            "fields.section.requird: unknown setting; did you mean required?",
        ),
        (("values: [command, function]", "choices: [a]"), "fields.kind.choices: unknown setting"),
        (("type: enum, values: [command, function]", "type: enum"), "fields.kind.values: invalid value []"),
        (("name: {type: string}", "name: {type: string, values: [a]}"), "fields.name.values: invalid value"),
        (("see_also:", "see also:"), "fields.see also: invalid value 'see also'"),
        (("name: {type: string}", "name: {name: x}"), "fields.name.name: unknown setting"),
    ],
)
def test_a_wrong_field_is_one_line_naming_the_dotted_key(
    tmp_path: Path, change: tuple[str, str], message: str
) -> None:
    path = tmp_path / "labels.yaml"
    path.write_text(FIELDS.replace(*change))
    with pytest.raises(ConfigError) as caught:
        load_tasks(path)
    assert str(caught.value).startswith(f"labels file {path}: {message}"), str(caught.value)


def test_fields_beside_tasks_or_labels() -> None:
    only = parse_tasks(yaml.safe_load(FIELDS))
    assert only.tasks == () and [f.name for f in only.fields][:2] == ["section", "name"]
    with_labels = parse_tasks({"labels": {"a": None}, **yaml.safe_load(FIELDS)})
    assert with_labels.names == ("label",) and not with_labels.legacy and len(with_labels.fields) == 7
    with pytest.raises(ConfigError, match="fields.topic: a task has the same name"):
        parse_tasks({"tasks": {"topic": {"labels": {"a": None}}}, "fields": {"topic": {}}})
    assert only.describe_fields()["kind"] == {
        "type": "enum",
        "list": False,
        "values": ["command", "function"],
    }


def test_schemas_are_strict_and_nullable_unless_required() -> None:
    fields = _fields()
    assert field_schema(fields["section"]) == {"type": "integer", "description": "The manual section."}
    assert field_schema(fields["see_also"]) == {
        "anyOf": [{"type": "array", "items": {"type": "string"}}, {"type": "null"}]
    }
    assert field_schema(fields["updated"])["anyOf"][0] == {"type": "string", "format": "date"}
    schema = tasks_schema([], list(fields.values()))
    assert schema["required"] == [*fields, "confidence"] and schema["additionalProperties"] is False
    request = {"response_format": {"json_schema": {"strict": True, "schema": schema}}}
    assert emulator_schema.strict_schema_problem(request) is None


@pytest.mark.parametrize(
    ("name", "value", "recorded"),
    [
        ("section", 5, 5),
        ("section", 5.0, 5),
        ("ratio", 2, 2),
        ("ratio", 0.5, 0.5),
        ("old", False, False),
        ("kind", " Command", "command"),
        ("updated", "2024-02-29", "2024-02-29"),
        ("see_also", ["ls(1)", "cp(1)"], ["ls(1)", "cp(1)"]),
        ("name", None, None),
    ],
)
def test_valid_values_are_kept(name: str, value: Any, recorded: Any) -> None:
    assert check_value(_fields()[name], value) == recorded


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("section", None, "field 'section' is required, got null"),
        ("section", "5", "field 'section': expected an integer, got '5'"),
        ("section", True, "expected an integer"),
        ("section", 5.5, "expected an integer"),
        ("ratio", "1", "expected a number"),
        ("old", 1, "expected true or false"),
        ("kind", "format", "field 'kind': 'format' is not one of 2 values"),
        ("updated", "2024-02-30", "expected a date YYYY-MM-DD"),
        ("updated", "24-1-5", "expected a date"),
        ("see_also", "ls(1)", "field 'see_also': expected a list"),
        ("see_also", ["ls", 3], "field 'see_also': expected a string, got '3'"),
    ],
)
def test_values_outside_the_schema_are_invalid(name: str, value: Any, message: str) -> None:
    with pytest.raises(InvalidModelOutput, match=message.replace("(", r"\(").replace(")", r"\)")):
        check_value(_fields()[name], value)


def test_the_emulator_answers_fields_within_their_schema() -> None:
    fields = list(_fields().values())
    text = "ls - list directory contents. SEE ALSO dir(1). Updated 2024-03-02."
    messages = build_task_messages([], text, fields)
    assert "* section (integer, required): The manual section." in messages[1]["content"]
    request = {
        "response_format": {"type": "json_schema", "json_schema": {"schema": tasks_schema([], fields)}}
    }
    options: dict[str, Any] = {"ollama": False, "seed": 0, "error_rate": 0.0, "gullible": False}
    text = emulator_schema.answer(request, messages, bad_label=False, **options)
    answer = parse_answer([], fields, text)
    assert isinstance(answer["fields"]["section"], int) and answer["fields"]["updated"] == "2024-03-02"
    assert answer["fields"]["kind"] in ("command", "function")
    with pytest.raises(InvalidModelOutput, match="reply has no value for field 'section'"):
        parse_answer([], fields, '{"name": "ls"}')


def test_the_fields_in_docs_classifiers_md_load(tmp_path: Path) -> None:
    import re

    docs = Path(__file__).parents[2] / "docs" / "classifiers.md"
    blocks = re.findall(r"```yaml\n(fields:.*?)```", docs.read_text(encoding="utf-8"), re.DOTALL)
    path = tmp_path / "labels.yaml"
    path.write_text(blocks[0])
    assert [f.type for f in load_tasks(path).fields] == ["integer", "string", "string", "enum", "date"]
