"""Outcomes an executor makes itself, for documents whose worker never returned one."""

from __future__ import annotations

import signal

from docmill.document import DocumentRef
from docmill.errors import ProcessingTimeout, WorkerCrashedError
from docmill.outcome import ErrorInfo, Outcome, Status, Timings


def timed_out(ref: DocumentRef, seconds: float, *, started: float, now: float, worker: str) -> Outcome:
    """FAILED with ProcessingTimeout: the document ran past the per-document limit."""
    error = ErrorInfo.from_exception(ProcessingTimeout(f"no result within {seconds:g} s; worker stopped"))
    return Outcome(ref, Status.FAILED, error=error, timings=Timings(started, now, worker))


def exit_reason(exitcode: int | None) -> str:
    """``worker killed by SIGSEGV`` or ``worker exited with code 7``."""
    if exitcode is not None and exitcode < 0:
        try:
            return f"worker killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"worker killed by signal {-exitcode}"
    return f"worker exited with code {exitcode}"


def crashed(ref: DocumentRef, exitcode: int | None, *, started: float, now: float, worker: str) -> Outcome:
    """CRASHED: the worker process died while it held this document."""
    error = ErrorInfo.from_exception(WorkerCrashedError(exit_reason(exitcode), exitcode=exitcode))
    return Outcome(ref, Status.CRASHED, error=error, timings=Timings(started, now, worker))


def failed(ref: DocumentRef, exc: BaseException, *, worker: str = "") -> Outcome:
    """FAILED for an error the executor met around the document (e.g. its result would not pickle)."""
    return Outcome(ref, Status.FAILED, error=ErrorInfo.from_exception(exc), timings=Timings(worker=worker))
