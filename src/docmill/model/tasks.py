"""Classification tasks: several label sets per document, each answered on its own.

A labels file may declare tasks instead of one label set::

    tasks:
      topic:    {labels: {network: {…}, storage: {…}}}
      audience: {labels: {programmer: {…}, user: {…}}, multi: true, threshold: 0.5, top_k: 2}
      language: {classifier: keywords, labels: {c: {…}, python: {…}}}

Each task has its label set (the format of ``docmill.model.labels``), an optional ``classifier``
of its own (``keywords``, ``llm`` or ``model:FILE``; default: the run's), an optional
``description`` (what the LLM is told the task is), and ``multi: true`` for a set of labels
instead of one: those scoring at least ``threshold`` (default 0.5), at most ``top_k`` of them.
A single-label task's ``threshold`` leaves a document below it without a label.

A file with a top-level ``labels:`` is one task named ``label`` (``TaskSet.legacy``): every
output for it stays what it was before tasks existed. Whatever is wrong in a file is one
``ConfigError`` line naming the file and the dotted key (``tasks.audience.top_k``), with the
nearest valid key for a misspelt one, before any document is read.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from docmill.errors import ConfigError
from docmill.model.fields import Field, parse_fields
from docmill.model.labels import LabelSet, parse_labels
from docmill.settings import SettingError, check, from_mapping, unknown

LEGACY = "label"  # the one task of a file with a top-level ``labels:``
RESERVED = frozenset({"confidence", "reason", "tasks", "score", "scores", "labels"})
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_TOP_KEYS = ("tasks", "fields", "labels")
DEFAULT_MULTI_THRESHOLD = 0.5


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskOptions:
    """One entry of ``tasks:`` as written: checked key by key (``tasks.NAME.KEY``)."""

    labels: Mapping[str, Any]
    classifier: str | None = None
    description: str = ""
    multi: bool = False
    threshold: float | None = None
    top_k: int | None = None

    def __post_init__(self) -> None:
        ok = self.threshold is None or 0.0 <= self.threshold <= 1.0
        check(ok, "threshold", self.threshold, "must be within [0, 1]")
        check(self.top_k is None or self.top_k >= 1, "top_k", self.top_k, "must be >= 1")
        check(self.top_k is None or self.multi, "top_k", self.top_k, "needs multi: true")
        spec = self.classifier
        ok = spec is None or spec in ("keywords", "llm") or (spec.startswith("model:") and len(spec) > 6)
        check(ok, "classifier", spec, "keywords, llm or model:FILE")


@dataclass(frozen=True, slots=True)
class Task:
    """A label set answered per document: one label, or (``multi``) a set of them."""

    name: str
    labels: LabelSet
    classifier: str | None = None  # None: the run's classifier
    description: str = ""
    multi: bool = False
    threshold: float | None = None
    top_k: int | None = None

    @property
    def cutoff(self) -> float:
        """The score a label needs: ``threshold``, or 0.5 for a multi-label task, 0 otherwise."""
        if self.threshold is not None:
            return self.threshold
        return DEFAULT_MULTI_THRESHOLD if self.multi else 0.0

    def kind(self, run_classifier: str) -> str:
        """``keywords``, ``llm`` or ``model``: what answers this task in a run of ``run_classifier``."""
        return (self.classifier or run_classifier).partition(":")[0]

    def to_dict(self) -> dict[str, Any]:
        data = {"labels": self.labels.to_dict()["labels"], "multi": self.multi}
        extra = {k: getattr(self, k) for k in ("classifier", "description", "threshold", "top_k")}
        return data | {k: v for k, v in extra.items() if v not in (None, "")}


@dataclass(frozen=True, slots=True)
class TaskSet:
    """The tasks of a labels file, in file order; ``legacy``: a plain ``labels:`` file."""

    tasks: tuple[Task, ...]
    legacy: bool = False
    fields: tuple[Field, ...] = ()  # values the LLM extracts beside the tasks (docmill.model.fields)

    def __iter__(self) -> Any:
        return iter(self.tasks)

    def __len__(self) -> int:
        return len(self.tasks)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(task.name for task in self.tasks)

    def fingerprint(self) -> str:
        """Stable hash of every task (order included)."""
        data = [t.to_dict() | {"name": t.name} for t in self.tasks]
        data += [dataclasses.asdict(f) for f in self.fields]
        blob = json.dumps(data, ensure_ascii=False)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def describe(self) -> dict[str, dict[str, Any]]:
        """What the run record keeps: each task's labels and whether it is multi-label."""
        return {t.name: {"labels": list(t.labels.names), "multi": t.multi} for t in self.tasks}

    def describe_fields(self) -> dict[str, dict[str, Any]]:
        """What the run record keeps of the fields: each one's type."""
        return {f.name: f.describe() for f in self.fields}


def is_tasks_file(path: str | os.PathLike[str] | None) -> bool:
    """Whether ``path`` is a labels file declaring tasks: a mapping without a top-level ``labels:``
    (False for a missing, unreadable or plain file: ``load_labels`` reports what is wrong with it)."""
    if not path or not Path(path).is_file():
        return False
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return False  # the classifier that reads it reports the problem
    return isinstance(data, Mapping) and ("labels" not in data or "fields" in data)


def load_tasks(path: str | os.PathLike[str]) -> TaskSet:
    """Read and validate a labels file (tasks or plain); ConfigError naming the file otherwise."""
    from docmill.model.labels import load_labels

    file = Path(path)
    if not is_tasks_file(file):
        return TaskSet((Task(LEGACY, load_labels(file)),), legacy=True)
    data = yaml.safe_load(file.read_text(encoding="utf-8"))
    try:
        return parse_tasks(data)
    except ConfigError as exc:
        raise ConfigError(f"labels file {file}: {exc}") from None


def parse_tasks(data: Any) -> TaskSet:
    """Build a TaskSet from already-parsed YAML/JSON data (``tasks:`` or plain ``labels:``)."""
    if isinstance(data, Mapping) and "labels" in data and not {"tasks", "fields"} & set(data):
        return TaskSet((Task(LEGACY, parse_labels(data)),), legacy=True)
    if not isinstance(data, Mapping):
        raise ConfigError("expected a mapping with a top-level 'tasks:' or 'labels:' key")
    for key in data:
        if key not in _TOP_KEYS:
            raise unknown(str(key), _TOP_KEYS)
    if "labels" in data and "tasks" in data:
        raise _both()
    fields = parse_fields(data["fields"]) if "fields" in data else ()
    if "labels" in data:  # one label set, and fields
        return TaskSet((Task(LEGACY, parse_labels({"labels": data["labels"]})),), fields=fields)
    tasks = data.get("tasks")
    if fields and tasks is None:
        return TaskSet((), fields=fields)
    if not isinstance(tasks, Mapping) or not tasks:
        raise SettingError("tasks", "must be a non-empty mapping of task name → {labels: …}")
    found = tuple(_task(name, entry) for name, entry in tasks.items())
    clash = sorted({t.name for t in found} & {f.name for f in fields})
    if clash:
        raise SettingError(f"fields.{clash[0]}", "a task has the same name")
    return TaskSet(found, fields=fields)


def _both() -> ConfigError:
    return SettingError("labels", "a file declares either 'labels:' (one task) or 'tasks:', not both")


def _task(name: Any, entry: Any) -> Task:
    key = f"tasks.{name}"
    ok = isinstance(name, str) and bool(_NAME.match(name)) and name not in RESERVED
    rule = "a letter, then letters, digits or _; not " + "/".join(sorted(RESERVED))
    check(ok, key, name, rule)
    if not isinstance(entry, Mapping) or "labels" not in entry:
        raise SettingError(key, "expected a mapping with 'labels:'")
    options = from_mapping(TaskOptions, entry, key)
    try:
        labels = parse_labels({"labels": options.labels})
    except ConfigError as exc:
        raise SettingError(f"{key}.labels", str(exc)) from None
    fields = {f: getattr(options, f) for f in ("classifier", "multi", "threshold", "top_k")}
    return Task(name, labels, description=" ".join(options.description.split()), **fields)


def task_value(result: Mapping[str, Any], name: str) -> str | list[str] | None:
    """A document's answer to task ``name`` in its recorded ``result``: a label, a list, or None."""
    if name == LEGACY and "tasks" not in result:
        label = result.get("label")
        return None if label is None else str(label)
    answer = (result.get("tasks") or {}).get(name)
    if not isinstance(answer, Mapping):
        return None
    if "labels" in answer:
        return [str(label) for label in answer.get("labels") or ()]
    label = answer.get("label")
    return None if label is None else str(label)


def recorded_tasks(configs: Any) -> dict[str, dict[str, Any]]:
    """The tasks the runs' recorded settings declare (the union, in first-seen order)."""
    found: dict[str, dict[str, Any]] = {}
    for config in configs:
        for name, spec in ((config or {}).get("tasks") or {}).items():
            found.setdefault(str(name), dict(spec))
    return found


def recorded_fields(configs: Any) -> dict[str, dict[str, Any]]:
    """The fields the runs' recorded settings declare (the union, in first-seen order)."""
    found: dict[str, dict[str, Any]] = {}
    for config in configs:
        for name, spec in ((config or {}).get("fields") or {}).items():
            found.setdefault(str(name), dict(spec))
    return found


def task_counts(journal: Any, run: Any) -> dict[str, dict[str, int]]:
    """Documents per label of each task ``run`` (a ``RunRecord`` or None) declared, from ``journal``
    (a multi-label answer counts each of its labels); ``{}`` for a run without tasks."""
    from docmill.journal.base import Query

    tasks = [name for name in recorded_tasks([run.config] if run else []) if name != LEGACY]
    counts: dict[str, dict[str, int]] = {name: {} for name in tasks}
    if not tasks:
        return counts
    for record in journal.iter_documents(Query(run_id=run.id)):
        for name in tasks:
            value = task_value(record.result, name)
            for label in [value] if isinstance(value, str) else value or ():
                counts[name][label] = counts[name].get(label, 0) + 1
    return counts


__all__ = [
    "LEGACY",
    "Task",
    "TaskOptions",
    "TaskSet",
    "is_tasks_file",
    "load_tasks",
    "parse_tasks",
    "recorded_fields",
    "recorded_tasks",
    "task_counts",
    "task_value",
]
