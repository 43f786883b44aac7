"""A labels file with ``tasks:`` becomes pipeline steps: local tasks first, then the LLM's.

Tasks answered by ``keywords`` or a ``model:FILE`` run in one synchronous step (``LocalTasks``),
each scoring every label of its task; the LLM tasks follow in one asynchronous step (all in one
request, or one request per task: ``docmill.processors.tasks_llm``). The split keeps the CPU work
apart from the waiting, so ``staged`` runs each where it belongs.

Every answer lands in the result's ``tasks`` mapping: ``{"label", "score"}`` for a single-label
task (``label`` None below the task's threshold), ``{"labels", "scores"}`` for a multi-label one
(the labels scoring at least the threshold, best first, at most ``top_k``; an LLM gives the list
without per-label scores). ``label`` and ``score`` repeat the first single-label task's answer.

Scores: the keywords classifier gives a label's share of the evidence in a single-label task
(as ``docmill.processors.classify_keywords``) and, in a multi-label one, each label's own
``s / (1 + s)``, independent of the others; a model gives its class probabilities.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from docmill.document import Document
from docmill.errors import ConfigError
from docmill.model.fields import Field
from docmill.model.tasks import Task, TaskSet, load_tasks
from docmill.processors.base import Processor
from docmill.processors.classify_keywords import DEFAULT_MAX_CHARS, KeywordScorer
from docmill.settings import SettingError

if TYPE_CHECKING:
    from docmill.config import RunConfig
    from docmill.processors.tasks_llm import EachTaskLLM, TasksLLM


class Scorer(Protocol):
    """Every label's score in [0, 1] for a text."""

    def scores(self, text: str) -> dict[str, float]: ...
    def fingerprint(self) -> str: ...


class KeywordTaskScorer:
    """The keywords classifier's scores for one task."""

    def __init__(self, task: Task, max_chars: int = DEFAULT_MAX_CHARS) -> None:
        self.task, self.max_chars = task, max_chars
        self._scorer: KeywordScorer | None = None

    def scores(self, text: str) -> dict[str, float]:
        if self._scorer is None:
            self._scorer = KeywordScorer(self.task.labels)
        raw = self._scorer.scores(text[: self.max_chars])
        if self.task.multi:
            return {n: s / (1.0 + s) for n, s in zip(self.task.labels.names, raw, strict=True)}
        total = 1.0 + sum(raw)
        return {n: s / total for n, s in zip(self.task.labels.names, raw, strict=True)}

    def __getstate__(self) -> dict[str, Any]:
        return {"task": self.task, "max_chars": self.max_chars, "_scorer": None}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    def fingerprint(self) -> str:
        return f"keywords:{self.max_chars}"


class ModelTaskScorer:
    """A trained model's class probabilities for one task (its classes must be the task's labels)."""

    def __init__(self, task: Task, path: str, **options: Any) -> None:
        from docmill.processors.classify_model import ModelClassifier

        self.model = ModelClassifier(path, **options)
        strangers = [c for c in self.model.labels if c not in task.labels]
        if strangers:
            raise SettingError(
                f"tasks.{task.name}.classifier",
                f"model {path} has label(s) outside the task: {strangers[:3]}",
            )

    def scores(self, text: str) -> dict[str, float]:
        return self.model.probabilities(text)

    def fingerprint(self) -> str:
        return self.model.fingerprint()


def answer(task: Task, scores: Mapping[str, float]) -> dict[str, Any]:
    """The recorded answer of ``task`` given every label's score."""
    ranked = sorted(task.labels.names, key=lambda n: -scores.get(n, 0.0))  # stable: file order breaks ties
    kept = [n for n in ranked if scores.get(n, 0.0) > 0.0 and scores[n] >= task.cutoff]
    if task.multi:
        kept = kept[: task.top_k] if task.top_k else kept
        return {"labels": kept, "scores": {n: round(scores[n], 4) for n in kept}}
    best = ranked[0]
    return {"label": kept[0] if kept and kept[0] == best else None, "score": round(scores.get(best, 0.0), 4)}


class LocalTasks(Processor):
    """Answers the tasks of keywords and model classifiers, in file order."""

    name = "tasks"
    version = "1"

    def __init__(
        self,
        scorers: Sequence[tuple[Task, Scorer]],
        *,
        primary: str | None = None,
        declared: TaskSet | None = None,
    ) -> None:
        self.scorers = tuple(scorers)
        self.primary = primary
        self.declared = declared  # the labels file's tasks, in file order (for the run record)

    def process(self, doc: Document) -> Document:
        text = doc.text if doc.text is not None else (doc.content or b"").decode("utf-8", "replace")
        tasks = dict(doc.metadata.get("tasks") or {})
        for task, scorer in self.scorers:
            tasks[task.name] = answer(task, scorer.scores(text))
        primary = tasks.get(self.primary or "")
        extra = {"label": primary["label"], "score": primary["score"]} if primary else {}
        return doc.with_metadata(tasks=tasks, **extra)

    def config(self) -> Mapping[str, Any]:
        answered = [
            (t.to_dict() | {"name": t.name}, getattr(s, "fingerprint", str)()) for t, s in self.scorers
        ]
        return {"tasks": answered}


# -- from a run's settings ---------------------------------------------------------------------------


def task_steps(config: RunConfig, path: str) -> list[Processor]:
    """The steps answering the tasks of the labels file ``path`` in a run configured by ``config``."""
    taskset = load_tasks(path)
    run = config.classifier
    primary = next((t.name for t in taskset if not t.multi and t.kind(run) != "none"), None)
    local = [t for t in taskset if t.kind(run) in ("keywords", "model")]
    llm = [t for t in taskset if t.kind(run) == "llm"]
    steps: list[Processor] = []
    if local:
        scorers = [(t, _scorer(t, config, Path(path).parent)) for t in local]
        steps.append(LocalTasks(scorers, primary=primary, declared=taskset))
    if llm or taskset.fields:  # the fields are asked of the LLM, with its tasks
        step = _llm_step(llm, taskset.fields, config, primary)
        step.declared = taskset
        steps.append(step)
    return steps


def _scorer(task: Task, config: RunConfig, folder: Path) -> Scorer:
    options = config.classifier_options
    max_chars = getattr(options, "max_chars", None)
    if task.kind(config.classifier) == "keywords":
        return KeywordTaskScorer(
            task, max_chars if task.classifier is None and max_chars else DEFAULT_MAX_CHARS
        )
    own = task.classifier is not None
    spec = task.classifier if own else config.classifier
    path = (spec or "").partition(":")[2] or ("" if own else getattr(options, "model_path", None) or "")
    if not path:
        raise ConfigError("the model classifier needs a model file: --classifier model:PATH")
    if own and not Path(path).is_absolute() and (folder / path).is_file():
        path = str(folder / path)  # a task's model file: beside the labels file
    settings = {} if own else {k: getattr(options, k) for k in ("max_chars", "compiled")}
    return ModelTaskScorer(task, path, **settings)


def _llm_step(
    tasks: Sequence[Task], fields: Sequence[Field], config: RunConfig, primary: str | None
) -> TasksLLM | EachTaskLLM:
    from docmill.processors.classify_llm import connection, wiring
    from docmill.processors.tasks_llm import EachTaskLLM, TasksLLM

    options = config.llm
    model = config.classifier.partition(":")[2] if config.classifier.startswith("llm:") else None
    for task in tasks:
        if task.multi and task.threshold is not None:
            raise SettingError(f"tasks.{task.name}.threshold", "the llm gives no per-label scores; use top_k")
    if not (model or options.model):
        what = "the fields are asked of the llm, which" if fields and not tasks else "the llm classifier"
        raise ConfigError(f"{what} needs a model (--classifier llm:MODEL or model: in the config)")
    settings, shared = connection(options, model), wiring(options, {"journal": config.db}, model=model)
    if options.tasks_per_request == "all":
        return TasksLLM(tasks, settings, fields=fields, primary=primary, **shared)
    each = [TasksLLM([t], settings, primary=primary, **shared) for t in tasks]
    each += [TasksLLM([], settings, fields=fields, **shared)] if fields else []  # the fields: one more
    return each[0] if len(each) == 1 else EachTaskLLM(each)


def tasks_pipeline(spec: str, settings: Mapping[str, Any]) -> Processor:
    """The steps of ``task_steps`` as one Pipeline, from a classifier's ``settings`` (its options,
    ``labels``, ``journal``): what ``build_classifier`` gives for a labels file with tasks."""
    from docmill.config import RunConfig
    from docmill.pipeline import Pipeline

    options = {k: v for k, v in settings.items() if k not in ("labels", "journal")}
    db = str(settings.get("journal") or "docmill.db")  # where an llm response cache sits
    config = RunConfig(classifier=spec, labels=str(settings["labels"]), classifier_options=options, db=db)
    return Pipeline(*task_steps(config, str(settings["labels"])))


def declared(pipeline: Processor) -> dict[str, Any]:
    """``{"tasks": …, "fields": …}`` (file order) for the run record when ``pipeline`` answers tasks
    or extracts fields, else ``{}``."""
    for step in getattr(pipeline, "steps", (pipeline,)):
        found = getattr(step, "declared", None)
        if isinstance(found, TaskSet):
            fields = {"fields": found.describe_fields()} if found.fields else {}
            return {"tasks": found.describe(), **fields}
    return {}


__all__ = [
    "KeywordTaskScorer",
    "LocalTasks",
    "ModelTaskScorer",
    "answer",
    "declared",
    "task_steps",
    "tasks_pipeline",
]
