"""The classifier registry: ``--classifier SPEC`` → a Processor.

A spec is ``NAME`` or ``NAME:ARG`` (``keywords``, ``model:man.model``, ``llm``). Entries are lazy
``"module:factory"`` strings; a factory is called as ``factory(arg, settings)`` where ``arg`` is the
part after the colon (or None) and ``settings`` the classifier's options as plain data plus the
context every factory may read (``labels``: a path, ``journal``: where the run records). Each
factory validates what it needs and raises ConfigError with a one-line message otherwise.

``OPTIONS`` names each classifier's settings dataclass (lazily too): ``options_for(spec, data)``
checks a ``classifier: {spec: …, KEY: VALUE}`` section against it before any work starts, so
``classifier.threshhold: unknown setting; did you mean threshold?``.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from docmill.errors import ConfigError
from docmill.processors.base import Processor
from docmill.settings import from_mapping

ClassifierFactory = Callable[[str | None, Mapping[str, Any]], Processor]

CLASSIFIERS: dict[str, str | ClassifierFactory] = {
    "keywords": "docmill.processors.classify_keywords:from_spec",
    "model": "docmill.processors.classify_model:from_spec",
    "llm": "docmill.processors.classify_llm:from_spec",
    "none": "docmill.processors.registry:_no_classifier",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class NoOptions:
    """A classifier that takes no options (``none``)."""


OPTIONS: dict[str, str | type[Any]] = {
    "keywords": "docmill.processors.classify_keywords:KeywordOptions",
    "model": "docmill.processors.classify_model:ModelOptions",
    "llm": "docmill.llm.settings:LLMOptions",
    "none": NoOptions,
}


def build_classifier(spec: str, settings: Mapping[str, Any]) -> Processor:
    """The classifier named by ``spec``, configured from ``settings``; for a labels file declaring
    tasks, the steps answering them, as one ``Pipeline`` (``docmill.processors.tasks``)."""
    factory: ClassifierFactory = _load(CLASSIFIERS, _known(spec))
    from docmill.model.tasks import is_tasks_file

    if _known(spec) != "none" and is_tasks_file(settings.get("labels")):
        from docmill.processors.tasks import tasks_pipeline

        return tasks_pipeline(spec, settings)
    return factory(spec.partition(":")[2] or None, settings)


def options_class(spec: str) -> type[Any]:
    """The settings dataclass of the classifier named by ``spec`` (``model:F`` → ``ModelOptions``)."""
    kind: type[Any] = _load(OPTIONS, _known(spec))
    return kind


def options_for(spec: str, data: Any, path: str = "classifier") -> Any:
    """``data`` (a mapping or the options themselves) as the options of ``spec``'s classifier.

    A classifier registered without an ``OPTIONS`` entry gets ``data`` as a plain dict: its
    factory checks it.
    """
    if _known(spec) not in OPTIONS:
        return dict(data)
    return from_mapping(options_class(spec), data, path)


def options_data(options: Any) -> dict[str, Any]:
    """Typed options back to the plain ``settings`` a factory takes."""
    if isinstance(options, Mapping):
        return dict(options)
    return {f.name: getattr(options, f.name) for f in dataclasses.fields(options)}


def _known(spec: str) -> str:
    name = spec.partition(":")[0]
    if name not in CLASSIFIERS:
        raise ConfigError(f"unknown classifier {spec!r}; choose one of: {', '.join(sorted(CLASSIFIERS))}")
    return name


def _load(table: dict[str, Any], name: str) -> Any:
    """``table[name]``, imported on first use when it is a ``"module:attribute"`` string."""
    entry = table[name]
    if isinstance(entry, str):
        module, _, attr = entry.partition(":")
        entry = table[name] = getattr(importlib.import_module(module), attr)
    return entry


class _Identity(Processor):
    """Extraction only: documents end ``ok`` with no label."""

    name = "no-classifier"

    def process(self, doc: Any) -> Any:
        return doc


def _no_classifier(arg: str | None, settings: Mapping[str, Any]) -> Processor:
    return _Identity()
