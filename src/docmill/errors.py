"""docmill's exception hierarchy.

Every error docmill raises on purpose is a :class:`DocmillError`. The CLI's only error handler is
``except DocmillError as e: e.show(); raise SystemExit(e.exit_code)``; a document's failure never
reaches it, because ``Job.run`` turns it into an ``Outcome``.

Our exception hierarchy::

    DocmillError                      (exit_code = 1)
    ├── ConfigError                   (exit_code = 2)  bad options, bad YAML, missing paths
    │   ├── UnknownExecutorError                       unknown strategy name; lists the known ones
    │   └── EndpointError                              the check before a run: nothing answers, key
    │                                                  refused, unknown model (LLM probe)
    ├── MissingDependencyError(ImportError)            carries the `pip install docmill[extra]` hint
    ├── SourceError                                    cannot list or load; carries uri, .retryable
    ├── ProcessingError                                raised inside processors; carries doc id
    │   ├── RetryableError                             worth another attempt
    │   │   ├── RateLimitedError                       .retry_after: float | None
    │   │   ├── UpstreamError                          5xx, connection reset; .status
    │   │   │   └── UnreachableError                   connection refused, DNS failure: nothing answered
    │   │   └── ProcessingTimeout                      the per-document time limit ran out
    │   └── PermanentError                             another attempt gives the same answer
    │       ├── UnsupportedDocument                    format we cannot read (binary, unknown type)
    │       ├── CorruptDocument                        the file is damaged or encrypted
    │       ├── ResourceLimitExceeded                  size / pages / inflated-size guard tripped
    │       ├── InvalidModelOutput                     the model's reply maps to no allowed label
    │       └── AuthRefusedError                       401/403: the provider refused the key
    ├── ExecutorError
    │   └── BrokenExecutorError                        pool unusable; .cause
    │       └── WorkerCrashedError                     .exitcode / .signal
    ├── BudgetExceededError                            --max-cost reached; the run stops cleanly
    ├── RunStoppedError                                a processor asks the run to stop (its endpoint is
    │                                                  gone); its document is not recorded
    ├── AllFailedError                                 a run in which every document failed
    └── JournalError                                   schema mismatch, locked, corrupt
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import ClassVar


class DocmillError(Exception):
    """Base of every error docmill raises on purpose."""

    exit_code: ClassVar[int] = 1

    def show(self) -> None:
        """Print the one-line message the CLI shows for this error."""
        print(f"docmill: error: {self}", file=sys.stderr)  # noqa: T201


class ConfigError(DocmillError):
    """The command line or configuration file is wrong."""

    exit_code: ClassVar[int] = 2


class UnknownExecutorError(ConfigError):
    """A strategy name that is not in the registry."""

    def __init__(self, name: str, known: list[str]) -> None:
        super().__init__(f"unknown strategy {name!r}; choose one of: {', '.join(sorted(known))}")
        self.name = name
        self.known = sorted(known)


class MissingDependencyError(DocmillError, ImportError):
    """An optional dependency is not installed."""

    exit_code: ClassVar[int] = 2

    def __init__(self, module: str, extra: str, *, message: str | None = None) -> None:
        super().__init__(message or f"{module!r} is not installed; run: pip install 'docmill[{extra}]'")
        self.module = module
        self.extra = extra


class SourceError(DocmillError):
    """A source cannot list or load a document.

    ``retryable``: the next run may succeed (an object gone between listing and fetch, a connection
    that failed after its retries), so the document is recorded ``failed`` and tried again rather
    than quarantined as a permanent error.
    """

    def __init__(self, message: str, *, uri: str | None = None, retryable: bool = False) -> None:
        super().__init__(message)
        self.uri = uri
        self.retryable = retryable


class ProcessingError(DocmillError):
    """Raised inside processors for one document.

    ``usage``: what the document was billed for before it failed (``cost``, ``tokens_in``,
    ``tokens_out``, ``requests``); ``Job`` records it as the failed outcome's result.
    ``exhausted``: the processor already spent its own retry budget on this error, so ``Job``
    must not retry it again (one retry owner); the error keeps its type and ``retryable``, so the
    journal still treats it as a failure a later run may redo.
    """

    retryable: ClassVar[bool] = False
    usage: Mapping[str, float] | None = None
    exhausted: bool = False


class RetryableError(ProcessingError):
    """Another attempt may succeed."""

    retryable: ClassVar[bool] = True


class RateLimitedError(RetryableError):
    """The provider said slow down (HTTP 429)."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class UpstreamError(RetryableError):
    """The provider failed (5xx, dropped connection, transport error)."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class UnreachableError(UpstreamError):
    """Nothing answered at the endpoint (connection refused, DNS failure): no request reached it."""


class ProcessingTimeout(RetryableError):
    """The per-document time limit ran out."""


class PermanentError(ProcessingError):
    """Another attempt would give the same answer."""


class UnsupportedDocument(PermanentError):
    """A format docmill cannot read."""


class CorruptDocument(PermanentError):
    """The file is damaged, truncated or encrypted."""


class ResourceLimitExceeded(PermanentError):
    """A size, page-count or decompression guard tripped."""


class InvalidModelOutput(PermanentError):
    """The model's reply could not be mapped to an allowed label."""


class AuthRefusedError(PermanentError):
    """The provider refused the credentials (401, 403): no document can succeed until they change."""


class EndpointError(ConfigError):
    """The endpoint a run needs failed its check before the first document (exit 2, nothing recorded)."""


class RunStoppedError(DocmillError):
    """A processor asks the run to stop: calls kept failing the same way (a circuit breaker opened).

    Raised inside a worker it reaches the parent as an outcome whose error type is this class's
    name; the runner then records nothing for that document (the next run redoes it) and stops
    cleanly, and the CLI exits 1 with the message.
    """


class AllFailedError(DocmillError):
    """Every document this run processed failed: the run did nothing useful (exit 1)."""


class ExecutorError(DocmillError):
    """The parallelization strategy itself failed."""


class BrokenExecutorError(ExecutorError):
    """The pool is unusable."""

    def __init__(self, message: str, *, cause: BaseException | None = None) -> None:
        super().__init__(message)
        self.cause = cause


class WorkerCrashedError(BrokenExecutorError):
    """A worker process died (signal or exit code) while it held a document."""

    def __init__(self, message: str, *, exitcode: int | None = None) -> None:
        super().__init__(message)
        self.exitcode = exitcode
        self.signal = -exitcode if exitcode is not None and exitcode < 0 else None


class BudgetExceededError(DocmillError):
    """The run's spending limit (--max-cost) was reached."""


class JournalError(DocmillError):
    """The journal cannot be opened, read or written."""
