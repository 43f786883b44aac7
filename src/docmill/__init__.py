"""docmill: extract, de-duplicate and classify very large document collections in parallel.

The public API is re-exported here; heavy names load lazily on first use.
"""

from __future__ import annotations

import importlib as _importlib
import typing as _typing

from docmill.document import Document, DocumentRef
from docmill.errors import DocmillError
from docmill.job import Job
from docmill.outcome import ErrorInfo, Outcome, Status, Timings
from docmill.pipeline import Pipeline
from docmill.processors.base import AsyncProcessor, Processor
from docmill.retry import RetryPolicy

if _typing.TYPE_CHECKING:
    from docmill.api import JournalReader, RunResult, open_journal, run
    from docmill.config import RunConfig

__version__ = "0.1.0"

# name -> module: loaded on first use, so ``import docmill`` does not import the runner and strategies
_LAZY = {
    "JournalReader": "docmill.reader",
    "RunConfig": "docmill.config",
    "RunResult": "docmill.runner",
    "open_journal": "docmill.reader",
    "run": "docmill.api",
}


def __getattr__(name: str) -> _typing.Any:
    """Load ``run``, ``open_journal``, ``RunResult``, … on first use."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'docmill' has no attribute {name!r}")
    value = getattr(_importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


__all__ = [
    "AsyncProcessor",
    "DocmillError",
    "Document",
    "DocumentRef",
    "ErrorInfo",
    "Job",
    "JournalReader",
    "Outcome",
    "Pipeline",
    "Processor",
    "RetryPolicy",
    "RunConfig",
    "RunResult",
    "Status",
    "Timings",
    "__version__",
    "open_journal",
    "run",
]
