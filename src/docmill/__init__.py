"""docmill: extract, de-duplicate and classify very large document collections in parallel.

The public API is re-exported here; heavy names load lazily on first use.
"""

from __future__ import annotations

from docmill.document import Document, DocumentRef
from docmill.errors import DocmillError
from docmill.job import Job
from docmill.outcome import ErrorInfo, Outcome, Status, Timings
from docmill.pipeline import Pipeline
from docmill.processors.base import AsyncProcessor, Processor
from docmill.retry import RetryPolicy

__version__ = "0.1.0"

__all__ = [
    "AsyncProcessor",
    "DocmillError",
    "Document",
    "DocumentRef",
    "ErrorInfo",
    "Job",
    "Outcome",
    "Pipeline",
    "Processor",
    "RetryPolicy",
    "Status",
    "Timings",
    "__version__",
]
