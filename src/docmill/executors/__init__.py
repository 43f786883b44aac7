"""The strategy registry. The CLI's ``--strategy`` choices and the contract tests both read it.

Entries are ``"module:Class"`` strings imported on first use, so optional dependencies (Celery)
load only when their strategy is chosen. Adding a strategy is one line here. An entry is an
:class:`Executor` class, so what a strategy takes (``executor_class(name).Options``) and what it
is (``executor_class(name).overlaps_io``, ``.needs_processes``, …) are asked of the class.
"""

from __future__ import annotations

import importlib
from typing import Any

from docmill.errors import DocmillError, UnknownExecutorError
from docmill.executors.base import Executor, ExecutorStats

ExecutorFactory = type[Executor]

EXECUTORS: dict[str, str | ExecutorFactory] = {
    "sequential": "docmill.executors.sequential:SequentialExecutor",
    "threads": "docmill.executors.threads:ThreadExecutor",
    "processes": "docmill.executors.processes:ProcessExecutor",
    "asyncio": "docmill.executors.aio:AsyncioExecutor",
    "batches": "docmill.executors.batches:PartitionedExecutor",
    "queue": "docmill.executors.work_queue:QueueExecutor",
    "hybrid": "docmill.executors.hybrid:HybridExecutor",
    "staged": "docmill.executors.staged:StagedExecutor",
    "auto": "docmill.executors.auto:AutoExecutor",
    "celery": "docmill.executors.distributed:CeleryExecutor",
}

ALIASES = {"no-parallel": "sequential", "distributed": "celery"}


def register_executor(name: str, factory: str | ExecutorFactory, *, replace: bool = False) -> None:
    """Add a strategy under ``name`` (an Executor class, or a lazy ``"module:Class"`` string)."""
    if name in EXECUTORS and not replace:
        raise ValueError(f"strategy {name!r} is already registered; pass replace=True")
    EXECUTORS[name] = factory


def executor_class(name: str) -> ExecutorFactory:
    """The Executor class registered as ``name`` (or an alias), importing it on first use."""
    key = ALIASES.get(name, name)
    if key not in EXECUTORS:
        raise UnknownExecutorError(name, list(EXECUTORS))
    entry = EXECUTORS[key]
    if isinstance(entry, str):
        module, _, attr = entry.partition(":")
        entry = getattr(importlib.import_module(module), attr)
        EXECUTORS[key] = entry
    return entry


def capability(name: str, attr: str) -> Any:
    """The class attribute ``attr`` of strategy ``name`` (``overlaps_io``, ``needs_processes``, …);
    None for a name that is not a strategy or a strategy that does not import here."""
    try:
        return getattr(executor_class(name), attr)
    except (ImportError, DocmillError):
        return None


def get_executor(name: str, **options: Any) -> Executor:
    """Build the strategy called ``name``; raises UnknownExecutorError listing the known ones."""
    return executor_class(name)(**options)


__all__ = [
    "EXECUTORS",
    "Executor",
    "ExecutorStats",
    "capability",
    "executor_class",
    "get_executor",
    "register_executor",
]
