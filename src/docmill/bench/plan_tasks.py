"""``docmill plan`` with a labels file declaring tasks or fields: LLM requests and tokens per document.

What a run asks the LLM follows from the file (``docmill.processors.tasks``): every task answered
by the ``llm`` (its own ``classifier: llm``, or the run's classifier) and the ``fields:`` go to it;
keywords and model tasks do not. With ``llm.tasks_per_request: all`` (the default) they are one
request per document (none when nothing is asked of the LLM); with ``one``, one request per LLM
task, plus one for the fields. Each request's prompt tokens are those of the prompt the tasks build
(``docmill.llm.tasks``) around an empty document (every request also carries the document's text,
which plan adds), its answer tokens those of a typical JSON answer under its schema.

A plain ``labels:`` file, or none, keeps plan's default: one request when the classifier is llm.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from docmill.bench.plan import OUTPUT_TOKENS, PROMPT_OVERHEAD_TOKENS, llm_stage
from docmill.errors import ConfigError
from docmill.llm.prompt import count_prompt_tokens, estimate_tokens
from docmill.llm.tasks import build_task_messages
from docmill.model.fields import Field
from docmill.model.tasks import Task, TaskSet, is_tasks_file, load_tasks

PER_REQUEST = ("all", "one")
_SAMPLE_STRING = "x" * 24  # a name or a phrase, as a field's string answer
_SAMPLE_LIST = 3  # items of a list field's answer
_SAMPLE: dict[str, Any] = {"integer": 3, "number": 0.5, "boolean": True, "date": "2024-01-15"}


@dataclass(frozen=True, slots=True)
class Asked:
    """The LLM requests of one document: how many, and each one's prompt and answer tokens (mean)."""

    requests: int
    prompt_tokens: float = PROMPT_OVERHEAD_TOKENS
    output_tokens: float = OUTPUT_TOKENS
    local: tuple[str, ...] = ()  # the tasks answered without the LLM (measured on the sample)
    fields: int = 0  # fields asked of the LLM
    estimated: bool = False  # from a tasks file's prompts (else plan's defaults)


def asked(
    labels: Path | None, classifier: str | None, flag: bool | None = None, per_request: str = "all"
) -> Asked:
    """The requests per document of a run of ``classifier`` with ``labels`` (``--llm``/``--no-llm``:
    ``flag``, the run's classifier when none is named: llm, unless ``--no-llm``)."""
    if per_request not in PER_REQUEST:
        raise ConfigError(f"llm.tasks_per_request must be all or one, got {per_request!r}")
    if labels is None or not is_tasks_file(labels):
        return Asked(1 if llm_stage(classifier, flag) else 0)
    taskset = load_tasks(labels)
    run = classifier or ("keywords" if flag is False else "llm")
    llm = [task for task in taskset if task.kind(run) == "llm"]
    groups = _requests(llm, taskset.fields, per_request)
    local = tuple(t.name for t in taskset if t.kind(run) != "llm")
    found = _asked(groups, local, len(taskset.fields))
    if flag is not None and flag != bool(found.requests):
        given = "--llm" if flag else "--no-llm"
        raise ConfigError(f"{given} contradicts {labels}, whose tasks make {found.requests} LLM requests")
    return found


def _requests(
    llm: Sequence[Task], fields: Sequence[Field], per_request: str
) -> list[tuple[Sequence[Task], Sequence[Field]]]:
    """What each request of a document asks: (tasks, fields)."""
    if not llm and not fields:
        return []
    if per_request == "all":
        return [(llm, fields)]
    return [([task], ()) for task in llm] + ([((), fields)] if fields else [])


def _asked(
    groups: list[tuple[Sequence[Task], Sequence[Field]]], local: tuple[str, ...], fields: int
) -> Asked:
    if not groups:
        return Asked(0, local=local, estimated=True)
    prompts = [count_prompt_tokens(build_task_messages(tasks, "", fields)) for tasks, fields in groups]
    answers = [estimate_tokens(json.dumps(typical_answer(tasks, fields))) for tasks, fields in groups]
    n = len(groups)
    return Asked(n, sum(prompts) / n, sum(answers) / n, local, fields, estimated=True)


def typical_answer(tasks: Sequence[Task], fields: Sequence[Field]) -> dict[str, Any]:
    """A typical reply under the tasks' schema: the longest label (a multi-label task: its first
    ``top_k`` or two), a field's sample value (lists of three), and the confidence."""
    reply: dict[str, Any] = {}
    for task in tasks:
        names = sorted(task.labels.names, key=len, reverse=True)
        reply[task.name] = names[: task.top_k or 2] if task.multi else names[0]
    for field in fields:
        one = max(field.values, key=len) if field.values else _SAMPLE.get(field.type, _SAMPLE_STRING)
        reply[field.name] = [one] * _SAMPLE_LIST if field.list else one
    return reply | {"confidence": 0.87}


def local_labels(labels: Path, local: Sequence[str], folder: Path) -> Path | None:
    """A labels file of ``labels``' local tasks only, written in ``folder``, for measuring them on the
    sample without the LLM (None when no task is local)."""
    if not local:
        return None
    kept = TaskSet(tuple(task for task in load_tasks(labels) if task.name in local))
    path = folder / "local-tasks.yaml"
    body = {"tasks": {task.name: _portable(task, labels.parent) for task in kept}}
    path.write_text(json.dumps(body), encoding="utf-8")  # JSON is YAML
    return path


def _portable(task: Task, folder: Path) -> dict[str, Any]:
    """``task`` as written, its model file (relative to the labels file) made absolute."""
    data = task.to_dict()
    kind, _, model = (task.classifier or "").partition(":")
    if kind == "model" and not Path(model).is_absolute() and (folder / model).is_file():
        data["classifier"] = f"model:{(folder / model).resolve()}"
    return data


def measured_with(
    labels: Path | None, classifier: str | None, found: Asked, folder: Path
) -> tuple[str | None, dict[str, str]]:
    """(classifier, settings) to measure on the sample: with a tasks file, its local tasks only (the
    LLM is modelled, never called)."""
    if labels is None:
        return classifier, {}
    if not found.estimated:
        return classifier, {"labels": str(labels)}
    path = local_labels(labels, found.local, folder)
    if path is None:
        return None, {}
    local = classifier if classifier and not llm_stage(classifier) else "keywords"
    return local, {"labels": str(path)}


def request_line(found: Asked, per_request: str) -> str | None:
    """How plan counted the requests, for its report (None without a tasks file)."""
    if not found.estimated:
        return None
    apart = "one request per task" + (" and one for the fields" if found.fields else "")
    how = apart if per_request == "one" else "all in one request"
    tokens = f"~{math.ceil(found.prompt_tokens):,} prompt tokens each besides the text"
    local = f"; answered locally: {', '.join(found.local)}" if found.local else ""
    if not found.requests:
        return f"Tasks: nothing is asked of the LLM{local}."
    return f"Tasks: {found.requests} LLM request(s) per document, {how}, {tokens}{local}."


__all__ = ["PER_REQUEST", "Asked", "asked", "local_labels", "measured_with", "request_line", "typical_answer"]
