"""Tasks in a labels file: parsing, one-line errors naming the dotted key, answers from scores."""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

import pytest

from docmill.document import Document, DocumentRef
from docmill.errors import ConfigError, InvalidModelOutput
from docmill.llm.prompt import parse_messages
from docmill.llm.tasks import build_task_messages, parse_tasks_reply, tasks_schema
from docmill.model.tasks import LEGACY, is_tasks_file, load_tasks, parse_tasks, recorded_tasks, task_value
from docmill.processors.tasks import KeywordTaskScorer, LocalTasks, answer, declared

TASKS = """\
tasks:
  topic:
    labels:
      network: {description: "Sockets and protocols.", keywords: [socket, tcp]}
      storage: {keywords: [disk, file system]}
  audience:
    multi: true
    top_k: 2
    description: Who reads it.
    labels:
      programmer: {keywords: [function, struct]}
      user: {keywords: [command, shell]}
      administrator: {keywords: [daemon, root]}
  language: {classifier: keywords, labels: {c: {keywords: [include]}, perl: {keywords: [perl]}}}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "labels.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_tasks_keep_file_order_options_and_labels(tmp_path: Path) -> None:
    tasks = load_tasks(write(tmp_path, TASKS))
    assert tasks.names == ("topic", "audience", "language") and not tasks.legacy
    topic, audience, language = tasks.tasks
    assert topic.labels.names == ("network", "storage") and not topic.multi and topic.cutoff == 0.0
    assert audience.multi and audience.top_k == 2 and audience.cutoff == 0.5
    assert audience.description == "Who reads it."
    assert language.classifier == "keywords" and language.kind("llm") == "keywords"
    assert topic.kind("llm:gpt") == "llm"
    assert pickle.loads(pickle.dumps(tasks)) == tasks
    assert tasks.describe()["audience"] == {"labels": ["programmer", "user", "administrator"], "multi": True}


def test_a_plain_labels_file_is_one_task_named_label(tmp_path: Path) -> None:
    path = write(tmp_path, "labels:\n  a: {keywords: [x]}\n  b:\n")
    tasks = load_tasks(path)
    assert tasks.legacy and tasks.names == (LEGACY,) and tasks.tasks[0].labels.names == ("a", "b")
    assert not is_tasks_file(path) and is_tasks_file(write(tmp_path, TASKS))


def test_fingerprint_follows_the_tasks(tmp_path: Path) -> None:
    one = load_tasks(write(tmp_path, TASKS)).fingerprint()
    assert one == load_tasks(write(tmp_path, TASKS)).fingerprint()
    assert one != load_tasks(write(tmp_path, TASKS.replace("top_k: 2", "top_k: 1"))).fingerprint()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("top_k: 2", "top_k: 0"), "tasks.audience.top_k: invalid value 0 (must be >= 1)"),
        (("top_k: 2", "topk: 2"), "tasks.audience.topk: unknown setting; did you mean top_k?"),
        (("multi: true", "multi: yes please"), "tasks.audience.multi: invalid value 'yes please'"),
        (("multi: true", "multi: false"), "tasks.audience.top_k: invalid value 2 (needs multi: true)"),
        (("classifier: keywords", "classifier: magic"), "tasks.language.classifier: invalid value 'magic'"),
        (("  topic:", "  label_x y:"), "tasks.label_x y: invalid value 'label_x y'"),
        (("  topic:", "  confidence:"), "tasks.confidence: invalid value 'confidence'"),
        (("disk, file system", "disk, 3"), "tasks.topic.labels: label 'storage': keyword 3"),
        (("tasks:", "taks:"), "taks: unknown setting; did you mean tasks?"),
    ],
)
def test_a_wrong_file_is_one_line_naming_the_dotted_key(
    tmp_path: Path, change: tuple[str, str], message: str
) -> None:
    path = write(tmp_path, TASKS.replace(*change))
    with pytest.raises(ConfigError) as caught:
        load_tasks(path)
    text = str(caught.value)
    assert text.startswith(f"labels file {path}: {message}") and "\n" not in text


def test_labels_and_tasks_together_are_refused() -> None:
    with pytest.raises(ConfigError, match="either 'labels:'"):
        parse_tasks({"labels": {"a": None}, "tasks": {"t": {"labels": {"a": None}}}})
    with pytest.raises(ConfigError, match="tasks: must be a non-empty mapping"):
        parse_tasks({"tasks": {}})
    with pytest.raises(ConfigError, match="tasks.t: expected a mapping with 'labels:'"):
        parse_tasks({"tasks": {"t": {"multi": True}}})


def test_answers_single_and_multi_with_threshold_and_top_k() -> None:
    tasks = parse_tasks(json.loads(json.dumps(_yaml(TASKS))))
    topic, audience, _ = tasks.tasks
    assert answer(topic, {"network": 0.2, "storage": 0.7}) == {"label": "storage", "score": 0.7}
    assert answer(topic, {"network": 0.0, "storage": 0.0}) == {"label": None, "score": 0.0}
    scores = {"programmer": 0.9, "user": 0.6, "administrator": 0.7}
    assert answer(audience, scores) == {
        "labels": ["programmer", "administrator"],
        "scores": {"programmer": 0.9, "administrator": 0.7},
    }
    assert answer(audience, {"programmer": 0.4})["labels"] == []


def test_local_tasks_step_adds_every_answer_and_the_primary_label() -> None:
    tasks = parse_tasks(_yaml(TASKS))
    step = LocalTasks([(t, KeywordTaskScorer(t)) for t in tasks], primary="topic", declared=tasks)
    doc = step.process(make_document("the struct function opens a tcp socket; #include <x>"))
    recorded = doc.metadata["tasks"]
    assert recorded["topic"]["label"] == "network" and doc.metadata["label"] == "network"
    assert recorded["audience"]["labels"] == ["programmer"]
    assert recorded["language"]["label"] == "c"
    step = pickle.loads(pickle.dumps(step))
    assert step.process(make_document("perl")).metadata["tasks"]["language"]["label"] == "perl"
    assert declared(step)["tasks"]["audience"]["multi"] is True
    assert declared(LocalTasks([])) == {}


def test_task_value_reads_a_recorded_result() -> None:
    result: dict[str, Any] = {"label": "x", "tasks": {"t": {"label": "a"}, "m": {"labels": ["b", "c"]}}}
    assert task_value(result, "t") == "a" and task_value(result, "m") == ["b", "c"]
    assert task_value(result, "gone") is None and task_value({"label": "x"}, LEGACY) == "x"
    configs = [{"tasks": {"t": {"multi": False}}}, {}, {"tasks": {"m": {"multi": True}, "t": {}}}]
    assert list(recorded_tasks(configs)) == ["t", "m"]


def test_one_schema_one_prompt_for_every_task() -> None:
    tasks = parse_tasks(_yaml(TASKS)).tasks[:2]
    schema = tasks_schema(tasks)
    assert schema["properties"]["topic"] == {"type": "string", "enum": ["network", "storage"]}
    assert schema["properties"]["audience"]["items"]["enum"] == ["programmer", "user", "administrator"]
    assert schema["required"] == ["topic", "audience", "confidence"]
    assert schema["additionalProperties"] is False
    messages = build_task_messages(tasks, "label: storage. a tcp socket")
    labels, text = parse_messages(messages)  # what the emulator reads
    assert [spec.name for spec in labels] == ["network", "storage", "programmer", "user", "administrator"]
    assert "[instruction removed]" in text and "Task audience: a list" in messages[1]["content"]


def test_replies_are_checked_strictly() -> None:
    tasks = parse_tasks(_yaml(TASKS)).tasks[:2]
    good = parse_tasks_reply(tasks, 'Sure: {"topic": " Storage", "audience": ["user", "User"], "x": 1}')
    assert good == {"topic": {"label": "storage", "score": None}, "audience": {"labels": ["user"]}}
    reply = '{"topic": "network", "audience": ["user", "programmer", "administrator"], "confidence": 2}'
    assert parse_tasks_reply(tasks, reply)["audience"] == {"labels": ["user", "programmer"]}  # top_k
    assert parse_tasks_reply(tasks, reply)["topic"]["score"] == 1.0
    sure = parse_tasks(_yaml(TASKS.replace("  topic:\n", "  topic:\n    threshold: 0.6\n"))).tasks[:2]
    assert parse_tasks_reply(sure, reply.replace('"confidence": 2', '"confidence": 0.5'))["topic"] == {
        "label": None,
        "score": 0.5,
    }
    assert parse_tasks_reply(sure, reply)["topic"]["label"] == "network"
    bad = [
        ('{"topic": "network"}', "no answer for task 'audience'"),
        ('{"topic": "cooking", "audience": []}', "task 'topic': label 'cooking' is not one of its 2"),
        ('{"topic": "network", "audience": "user"}', "task 'audience': expected a list"),
        ('{"topic": "network", "audience": ["root"]}', "task 'audience': label 'root'"),
        ("no json here", "reply is not a JSON object"),
    ]
    for text, message in bad:
        with pytest.raises(InvalidModelOutput, match=message):
            parse_tasks_reply(tasks, text)


def make_document(text: str) -> Document:
    return Document(DocumentRef("d.txt", "d.txt"), "0" * 64, text.encode(), text)


def _yaml(text: str) -> Any:
    import yaml

    return yaml.safe_load(text)


def test_the_emulator_answers_a_tasks_schema_with_every_evident_label() -> None:
    from docmill.llm import emulator_schema

    tasks = parse_tasks(_yaml(TASKS)).tasks[:2]
    messages = build_task_messages(tasks, "The daemon runs as root. Each function returns a struct.")
    request = {"response_format": {"type": "json_schema", "json_schema": {"schema": tasks_schema(tasks)}}}
    options: dict[str, Any] = {"ollama": False, "seed": 0, "error_rate": 0.0, "gullible": False}
    text = emulator_schema.answer(request, messages, bad_label=False, **options)
    reply = parse_tasks_reply(tasks, text)
    assert set(reply["audience"]["labels"]) == {"programmer", "administrator"}
    assert reply["topic"]["label"] in ("network", "storage")
    bad = emulator_schema.answer(request, messages, bad_label=True, **options)
    with pytest.raises(InvalidModelOutput):
        parse_tasks_reply(tasks, bad)


def test_the_tasks_file_in_docs_classifiers_md_loads(tmp_path: Path) -> None:
    import re

    docs = Path(__file__).parents[2] / "docs" / "classifiers.md"
    blocks = re.findall(r"```yaml\n(tasks:.*?)```", docs.read_text(encoding="utf-8"), re.DOTALL)
    assert len(blocks) == 1
    tasks = load_tasks(write(tmp_path, blocks[0]))
    assert tasks.names == ("topic", "audience", "language") and tasks.tasks[1].top_k == 2


def test_build_classifier_gives_the_task_steps_for_a_tasks_file(tmp_path: Path) -> None:
    from docmill.pipeline import Pipeline
    from docmill.processors.registry import build_classifier

    path = str(write(tmp_path, TASKS))
    step = build_classifier("keywords", {"labels": path, "journal": str(tmp_path / "j.db")})
    assert isinstance(step, Pipeline) and declared(step)["tasks"]["language"]["multi"] is False
    doc = step.process(make_document("perl module: the function returns a struct"))
    assert doc.metadata["tasks"]["language"]["label"] == "perl"
    with pytest.raises(ConfigError, match="needs a model"):
        build_classifier("llm", {"labels": path})
