"""The classifier registry: ``--classifier SPEC`` → a Processor.

A spec is ``NAME`` or ``NAME:ARG`` (``keywords``, ``model:man.model``, ``llm``). Entries are lazy
``"module:factory"`` strings; a factory is called as ``factory(arg, settings)`` where ``arg`` is the
part after the colon (or None) and ``settings`` the merged ``classifier:`` section of the config
and the CLI flags (``labels``, ``base_url``, ``model``, ``provider``, prices, limits …). Each
factory validates what it needs and raises ConfigError with a one-line message otherwise.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

from docmill.errors import ConfigError
from docmill.processors.base import Processor

ClassifierFactory = Callable[[str | None, Mapping[str, Any]], Processor]

CLASSIFIERS: dict[str, str | ClassifierFactory] = {
    "keywords": "docmill.processors.classify_keywords:from_spec",
    "model": "docmill.processors.classify_model:from_spec",
    "llm": "docmill.processors.classify_llm:from_spec",
    "none": "docmill.processors.registry:_no_classifier",
}


def build_classifier(spec: str, settings: Mapping[str, Any]) -> Processor:
    """The classifier named by ``spec``, configured from ``settings``."""
    name, _, arg = spec.partition(":")
    entry = CLASSIFIERS.get(name)
    if entry is None:
        raise ConfigError(f"unknown classifier {spec!r}; choose one of: {', '.join(sorted(CLASSIFIERS))}")
    if isinstance(entry, str):
        module, _, attr = entry.partition(":")
        entry = getattr(importlib.import_module(module), attr)
        CLASSIFIERS[name] = entry
    return entry(arg or None, settings)


class _Identity(Processor):
    """Extraction only: documents end ``ok`` with no label."""

    name = "no-classifier"

    def process(self, doc: Any) -> Any:
        return doc


def _no_classifier(arg: str | None, settings: Mapping[str, Any]) -> Processor:
    return _Identity()
