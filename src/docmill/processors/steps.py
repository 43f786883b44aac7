"""Your own steps: ``--step package.module:Class`` adds a ``Processor`` of yours to the pipeline.

A step is named by ``module:Class`` (imported in every worker, so the module must be importable
there too) or by the name of a ``docmill.steps`` entry point; ``--step`` is repeatable and
``steps: [...]`` in docmill.yaml says the same. Steps run after extraction and classification,
in the order given. A class with an ``Options`` dataclass takes its settings from
``step_options.<Class>`` (checked like every other section: an unknown key or a wrong type is one
line naming the dotted key) and is built as ``Class(options)``; any other class as ``Class()``.

``self.context`` (a ``StepContext``) reaches the run's LLM: ``complete(messages)`` and
``acomplete(messages)`` ask the configured model through a client that takes its turn under the
run's limits, the same budget as the LLM classifier's, so a step making several calls per document
stays within the provider's limits in every strategy. A failed call raises the docmill error it is
(``RateLimitedError``, ``UpstreamError``, …), which the run's retry policy handles like any other.

Everything that can go wrong before the first document does so before any work, in one line: a
module that does not import, a class that is not a Processor, wrong options, a constructor or a
``setup()`` that raises (each step is set up and torn down once in the parent to find out).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from contextvars import ContextVar, Token
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

from docmill.document import Document
from docmill.errors import ConfigError
from docmill.llm.pricing import Price
from docmill.processors.base import AsyncProcessor, Processor
from docmill.settings import from_mapping, unknown

if TYPE_CHECKING:
    from docmill.config import RunConfig
    from docmill.llm.client import LLMReply
    from docmill.llm.prompt import Message
    from docmill.processors.classify_llm import LLMClassifier

GROUP = "docmill.steps"


class StepContext:
    """What a step reaches besides its document: the run's LLM, under the run's limits."""

    def __init__(self, llm: LLMClassifier | None = None) -> None:
        self._llm = llm  # the run's connection, limits and client (built per worker, on first use)

    @property
    def model(self) -> str:
        return self._classifier().settings.model

    def complete(self, messages: Sequence[Message], *, schema: Any = None, max_tokens: int = 0) -> LLMReply:
        """One call to the run's model (blocking)."""
        llm = self._classifier()
        return _counted(llm._started().complete(messages, **self._options(llm, schema, max_tokens)))

    async def acomplete(
        self, messages: Sequence[Message], *, schema: Any = None, max_tokens: int = 0
    ) -> LLMReply:
        """One call to the run's model (awaiting)."""
        llm = self._classifier()
        return _counted(await llm._started().acomplete(messages, **self._options(llm, schema, max_tokens)))

    def close(self) -> None:
        if self._llm is not None:
            self._llm.teardown()

    def _classifier(self) -> LLMClassifier:
        if self._llm is None:
            raise ConfigError("this step calls the LLM: configure one (llm.model and llm.base_url)")
        return self._llm

    @staticmethod
    def _options(llm: LLMClassifier, schema: Any, max_tokens: int) -> dict[str, Any]:
        return {
            "model": llm.settings.model,
            "max_tokens": max_tokens or llm.settings.max_tokens_out,
            "schema": schema,
        }


def load_step_class(spec: str) -> type[Processor]:
    """The class ``spec`` names (``module:Class`` or an entry point's name); ConfigError otherwise."""
    module, _, name = spec.partition(":")
    if not name:
        found = [e for e in entry_points(group=GROUP) if e.name == spec]
        if not found:
            raise ConfigError(f"steps: {spec!r} is neither module:Class nor a {GROUP} entry point")
        module, _, name = found[0].value.partition(":")
    try:
        kind = getattr(importlib.import_module(module), name)
    except Exception as exc:  # any import error of the user's module: one line, before any work
        raise ConfigError(f"steps: cannot import {spec}: {type(exc).__name__}: {exc}") from None
    if not (isinstance(kind, type) and issubclass(kind, Processor)):
        raise ConfigError(f"steps: {spec} is not a docmill Processor (subclass Processor or AsyncProcessor)")
    return kind


def build_steps(config: RunConfig, llm: LLMClassifier | None) -> list[Processor]:
    """The run's own steps, built, given their context and tried once (setup, teardown)."""
    classes = {spec: load_step_class(spec) for spec in config.steps}
    names = {kind.__name__ for kind in classes.values()}
    for name in config.step_options:
        if name not in names:
            raise unknown(f"step_options.{name}", names)
    context, price = StepContext(llm), llm.price if llm is not None else Price()
    built = [
        _built(spec, kind, config.step_options.get(kind.__name__), context) for spec, kind in classes.items()
    ]
    return [metered(step, price) for step in built]


# -- what a step's LLM calls cost, recorded with the document ------------------------------------------


@dataclass
class Usage:
    """The calls a step made for one document (the context's successful ones)."""

    requests: int = 0
    tokens_in: int = 0
    tokens_out: int = 0


_USAGE: ContextVar[Usage | None] = ContextVar("docmill_step_usage", default=None)


def _counted(reply: LLMReply) -> LLMReply:
    usage = _USAGE.get()
    if usage is not None:
        usage.requests += 1
        usage.tokens_in += reply.tokens_in
        usage.tokens_out += reply.tokens_out
    return reply


class Metered(Processor):
    """A user step whose LLM calls are added to the document's ``requests``, tokens and ``cost``, and
    recorded per step under ``steps.<Class>`` (the run's ``max_cost`` counts them)."""

    name = "step"

    def __init__(self, step: Processor, price: Price) -> None:
        self.step, self.price = step, price

    def config(self) -> Mapping[str, Any]:
        return {"step": self.step.fingerprint()}

    def check_requirements(self) -> None:
        self.step.check_requirements()

    def check(self) -> None:
        self.step.check()

    def setup(self) -> None:
        self.step.setup()

    def teardown(self) -> None:
        self.step.teardown()

    def process(self, doc: Document) -> Document:
        usage, token = _started()
        try:
            return self._billed(self.step.process(doc), usage)
        finally:
            _USAGE.reset(token)

    def _billed(self, doc: Document, usage: Usage) -> Document:
        if not usage.requests:
            return doc
        cost = self.price.cost(usage.tokens_in, usage.tokens_out)
        mine = {"requests": usage.requests, "tokens_in": usage.tokens_in, "tokens_out": usage.tokens_out}
        steps = {**(doc.metadata.get("steps") or {}), type(self.step).__name__: {**mine, "cost": cost}}
        totals = {key: (doc.metadata.get(key) or 0) + value for key, value in mine.items()}
        return doc.with_metadata(steps=steps, cost=(doc.metadata.get("cost") or 0.0) + cost, **totals)


class MeteredAsync(Metered, AsyncProcessor):
    """``Metered`` for an ``AsyncProcessor``: awaited by the asyncio-based strategies."""

    def setup(self) -> None:
        AsyncProcessor.setup(self)
        self.step.setup()

    def teardown(self) -> None:
        self.step.teardown()
        AsyncProcessor.teardown(self)

    def process(self, doc: Document) -> Document:
        return AsyncProcessor.process(self, doc)

    async def aprocess(self, doc: Document) -> Document:
        usage, token = _started()
        try:
            assert isinstance(self.step, AsyncProcessor)
            return self._billed(await self.step.aprocess(doc), usage)
        finally:
            _USAGE.reset(token)


def _started() -> tuple[Usage, Token[Usage | None]]:
    usage = Usage()
    return usage, _USAGE.set(usage)


def step_costs(journal: Any, run: Any) -> dict[str, float]:
    """USD per step of ``run``'s documents: each user step's (``steps.<Class>.cost``) and the rest
    (the classifier's, ``classifier``); ``{}`` when no user step called the LLM."""
    from docmill.journal.base import Query

    costs: dict[str, float] = {}
    total = 0.0
    for record in journal.iter_documents(Query(run_id=run.id)) if run is not None else ():
        total += float(record.result.get("cost") or 0.0)
        for name, used in (record.result.get("steps") or {}).items():
            costs[name] = costs.get(name, 0.0) + float(used.get("cost") or 0.0)
    return {"classifier": max(0.0, total - sum(costs.values())), **costs} if costs else {}


def metered(step: Processor, price: Price) -> Processor:
    """``step`` wrapped so that its LLM calls are billed to the document."""
    return MeteredAsync(step, price) if isinstance(step, AsyncProcessor) else Metered(step, price)


def _built(
    spec: str, kind: type[Processor], data: Mapping[str, Any] | None, context: StepContext
) -> Processor:
    options_kind = getattr(kind, "Options", None)
    if options_kind is None and data:
        raise ConfigError(f"step_options.{kind.__name__}: this step takes no options")
    args = [from_mapping(options_kind, data or {}, f"step_options.{kind.__name__}")] if options_kind else []
    try:
        step = kind(*args)
        step.context = context  # type: ignore[attr-defined]
        step.setup()
        step.teardown()
    except Exception as exc:  # the user's code: one line, before any work
        raise ConfigError(f"steps: {spec} failed to start: {type(exc).__name__}: {exc}") from None
    return step


def run_llm(config: RunConfig, steps: Sequence[Processor]) -> LLMClassifier | None:
    """The run's LLM for the steps' context: the limits of its LLM step when it has one (one budget),
    else those ``config.llm`` describes; None when no model is configured."""
    from docmill.limits.provider import ProviderLimits
    from docmill.model.labels import LabelSet
    from docmill.processors.classify_llm import LLMClassifier, connection, wiring

    options = config.llm
    model = config.classifier.partition(":")[2] if config.classifier.startswith("llm:") else None
    if not (model or options.model):
        return None
    shared = wiring(options, {}, model=model)
    found = [getattr(s, "limits", None) for s in _flat(steps)]
    found = [limits for limits in found if isinstance(limits, ProviderLimits)]
    if found:
        shared["limits"] = found[0]
    return LLMClassifier(LabelSet(("step",)), connection(options, model), **shared)


def _flat(steps: Sequence[Processor]) -> list[Processor]:
    flat: list[Processor] = []
    for step in steps:
        flat += [step, *getattr(step, "children", ()), *_flat(getattr(step, "steps", ()))]
    return flat


__all__ = [
    "GROUP",
    "Metered",
    "MeteredAsync",
    "StepContext",
    "Usage",
    "build_steps",
    "load_step_class",
    "run_llm",
]
