"""The LLM answers a document's tasks: all of them in one request, or one request per task.

``TasksLLM`` is the LLM classifier (``docmill.processors.classify_llm``: retries, limits, cache,
copies in flight sharing one call, billing) asking for several tasks with one prompt and one JSON
schema (``docmill.llm.tasks``): one request and one prompt's tokens per document, however many
tasks. ``llm.tasks_per_request: one`` builds one ``TasksLLM`` per task instead, wrapped in
``EachTaskLLM``, which asks them concurrently for each document (tasks on one event loop, or
threads for the blocking strategies), every request under the same provider limits.

Each step adds its tasks' answers to the document's ``tasks`` metadata (beside those of the other
steps), and ``label``/``score`` when it answers the run's first single-label task.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from docmill.document import Document
from docmill.llm.cache import cache_key
from docmill.llm.client import LLMReply
from docmill.llm.prompt import Message, truncate
from docmill.llm.singleflight import SingleFlight
from docmill.llm.tasks import TASKS_PROMPT_VERSION, build_task_messages, parse_answer, tasks_schema
from docmill.model.fields import Field
from docmill.model.labels import LabelSet
from docmill.model.tasks import Task, TaskSet
from docmill.processors.base import AsyncProcessor
from docmill.processors.classify_llm import LLMClassifier, LLMSettings

_SUMMED = ("tokens_in", "tokens_out", "requests", "cost")
_JOINED = ("tasks", "fields")  # what each step answers, kept beside the other steps' answers
_FIELDS_ONLY = LabelSet(("field",))  # the base classifier's label set when a step extracts fields only


class TasksLLM(LLMClassifier):
    """Asks for every task of ``tasks`` in one request; ``primary`` also sets ``label``/``score``."""

    name = "llm-tasks"
    version = "1"
    declared: TaskSet | None = None  # the labels file's tasks, in file order (for the run record)

    def __init__(
        self,
        tasks: Sequence[Task],
        settings: LLMSettings,
        *,
        fields: Sequence[Field] = (),
        primary: str | None = None,
        **wiring: Any,
    ) -> None:
        super().__init__(tasks[0].labels if tasks else _FIELDS_ONLY, settings, **wiring)
        self.tasks, self.fields = tuple(tasks), tuple(fields)
        self.primary = primary
        self._tasks_fingerprint = TaskSet(self.tasks, fields=self.fields).fingerprint()

    def config(self) -> Mapping[str, Any]:
        s = self.settings
        prompt = TASKS_PROMPT_VERSION
        return {
            "tasks": self._tasks_fingerprint,
            "model": s.model,
            "prompt": prompt,
            "max_tokens_in": s.max_tokens_in,
        }

    def process(self, doc: Document) -> Document:
        return merged(doc, super().process(doc))

    async def aprocess(self, doc: Document) -> Document:
        return merged(doc, await super().aprocess(doc))

    def prompt(self, doc: Document) -> list[Message]:
        text = doc.text if doc.text is not None else (doc.content or b"").decode("utf-8", "replace")
        return build_task_messages(self.tasks, truncate(text, self.settings.max_tokens_in), self.fields)

    def parse(self, doc: Document, reply: LLMReply) -> dict[str, Any]:
        cut = reply.finish_reason == "length"
        return parse_answer(self.tasks, self.fields, reply.text, cut=cut)

    def _call_options(self) -> dict[str, Any]:
        s = self.settings
        schema = tasks_schema(self.tasks, self.fields)
        return {"model": s.model, "max_tokens": s.max_tokens_out, "schema": schema}

    def _common(self, answer: Mapping[str, Any]) -> dict[str, Any]:
        tasks = dict(answer["tasks"])
        asked = [task.name for task in self.tasks] + (["fields"] if self.fields else [])
        common: dict[str, Any] = {"tasks": tasks, "model": self.settings.model, "llm_asked": asked}
        if self.fields:
            common["fields"] = dict(answer.get("fields") or {})
        if self.primary in tasks:
            common.update(label=tasks[self.primary]["label"], score=tasks[self.primary].get("score"))
        return common

    def _key(self, doc: Document) -> str:
        s = self.settings
        version = f"tasks-{TASKS_PROMPT_VERSION}"
        return cache_key(
            doc.sha256, version, s.provider, s.model, self._tasks_fingerprint, str(s.max_tokens_in)
        )

    def _flight(self) -> SingleFlight[Document]:
        return SingleFlight(self._cache, _answer_of, clock=self.clock)

    def __repr__(self) -> str:
        s = self.settings
        asked = [t.name for t in self.tasks] + [f.name for f in self.fields]
        return f"TasksLLM(model={s.model!r}, asks={asked}, limits={self.limits!r})"


class EachTaskLLM(AsyncProcessor):
    """One request per task, the tasks of a document asked concurrently (``tasks_per_request: one``)."""

    name = "llm-each-task"
    version = "1"
    requires = (("httpx", "llm"),)
    declared: TaskSet | None = None

    def __init__(self, children: Sequence[TasksLLM]) -> None:
        self.children = tuple(children)

    def config(self) -> Mapping[str, Any]:
        return {"tasks": [child.fingerprint() for child in self.children]}

    def check(self) -> None:
        self.children[0].check()  # one endpoint, one model: one probe

    def setup(self) -> None:
        super().setup()
        for child in self.children:
            child.setup()

    def teardown(self) -> None:
        for child in self.children:
            child.teardown()
        super().teardown()

    def process(self, doc: Document) -> Document:
        with ThreadPoolExecutor(len(self.children), thread_name_prefix="docmill-task") as pool:
            answered = list(pool.map(lambda child: child.process(doc), self.children))
        return combined(doc, answered, self.children)

    async def aprocess(self, doc: Document) -> Document:
        answered = await asyncio.gather(*(child.aprocess(doc) for child in self.children))
        return combined(doc, list(answered), self.children)

    def __repr__(self) -> str:
        return f"EachTaskLLM({', '.join(repr(child) for child in self.children)})"


def merged(before: Document, after: Document) -> Document:
    """``after`` with the tasks (and fields) ``before`` already had answered kept beside its own."""
    joined = {k: {**(before.metadata.get(k) or {}), **(after.metadata.get(k) or {})} for k in _JOINED}
    return after.with_metadata(**{k: v for k, v in joined.items() if v or k == "tasks"})


def combined(doc: Document, answered: Sequence[Document], children: Sequence[TasksLLM] = ()) -> Document:
    """One document from the per-task answers: tasks joined, requests, tokens and cost summed; each
    task's own requests and cost kept beside its answer (the fields' under ``fields_usage``)."""
    joined = {key: dict(doc.metadata.get(key) or {}) for key in _JOINED}
    extra: dict[str, Any] = {
        "llm_asked": [name for one in answered for name in one.metadata.get("llm_asked", ())]
    }
    for one in answered:
        for key in _JOINED:
            joined[key].update(one.metadata.get(key) or {})
        extra.update({k: one.metadata[k] for k in ("label", "score", "model") if k in one.metadata})
    for child, one in zip(children, answered, strict=True):
        usage = {"requests": one.metadata.get("requests") or 0, "cost": one.metadata.get("cost") or 0.0}
        if child.tasks:
            joined["tasks"][child.tasks[0].name] = {**joined["tasks"][child.tasks[0].name], **usage}
        else:
            extra["fields_usage"] = usage
    usage = {key: sum(one.metadata.get(key) or 0 for one in answered) for key in _SUMMED}
    cached = all(one.metadata.get("cached") for one in answered)
    concurrency = max(one.metadata.get("concurrency") or 0 for one in answered)
    extra.update({k: v for k, v in joined.items() if v or k == "tasks"})
    return doc.with_metadata(**extra, **usage, cached=cached, concurrency=concurrency)


def _answer_of(doc: Document) -> dict[str, Any]:
    """What a copy of ``doc`` takes from it: the step's own task answers (as the cache keeps them)."""
    return {key: dict(doc.metadata.get(key) or {}) for key in _JOINED}


__all__ = ["EachTaskLLM", "TasksLLM", "combined", "merged"]
