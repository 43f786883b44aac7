"""A test-only fault hook: kill this process right before or right after the k-th journal commit.

SQLite's own crash tests stop the process at the k-th I/O for k = 1, 2, … until a run gets through,
then check the database after each. ``DOCMILL_CRASH_AT=before-commit:3`` (or ``after-commit:3``)
does that for docmill: the journal opened by this process counts its write transactions (run
records, batches, heartbeats) and SIGKILLs the process at the k-th one, the way ``kill -9`` or the
OOM killer would, so nothing is flushed or cleaned up. Unset (always, outside tests), a commit
costs one attribute lookup.

A ``--batch`` run also names moments of its own (``reached``): ``before-submit:K`` (the K-th batch
is recorded, not yet created at the provider), ``after-submit:K`` (created, its id not yet
recorded) and ``all-submitted:1`` (every document is in a submitted batch, none collected yet).
"""

from __future__ import annotations

import os
import signal
from collections.abc import Mapping

from docmill.errors import ConfigError

ENV = "DOCMILL_CRASH_AT"
POINTS = ("before-commit", "after-commit", "before-submit", "after-submit", "all-submitted")


class CrashPoint:
    """Counts commits and kills the process at ``point`` of commit number ``k`` (1-based)."""

    def __init__(self, point: str, k: int) -> None:
        if point not in POINTS or k < 1:
            raise ConfigError(f"{ENV}: expected POINT:K, POINT one of {', '.join(POINTS)}, got {point}:{k}")
        self.point, self.k = point, k
        self.commits = 0
        self.seen = 0  # times the named point was reached

    def before(self) -> None:
        """Called right before a commit."""
        self.commits += 1
        self._maybe("before-commit")

    def after(self) -> None:
        """Called right after a commit succeeded."""
        self._maybe("after-commit")

    def reached(self, point: str) -> None:
        """A named moment of a run (``before-submit``, …) came: kill at its k-th time."""
        if point == self.point:
            self.seen += 1
            if self.seen == self.k:
                os.kill(os.getpid(), signal.SIGKILL)

    def _maybe(self, point: str) -> None:
        if point == self.point and self.commits == self.k:
            os.kill(os.getpid(), signal.SIGKILL)


class NoCrash:
    """What every journal uses outside tests."""

    def before(self) -> None:
        """Nothing to do."""

    def after(self) -> None:
        """Nothing to do."""

    def reached(self, point: str) -> None:
        """Nothing to do."""


def crash_point(environ: Mapping[str, str] = os.environ) -> CrashPoint | NoCrash:
    """The crash point ``DOCMILL_CRASH_AT`` asks for, or ``NoCrash``."""
    spec = environ.get(ENV, "")
    if not spec:
        return NoCrash()
    point, _, k = spec.partition(":")
    if not k.isdigit():
        raise ConfigError(f"{ENV}: expected before-commit:K or after-commit:K, got {spec!r}")
    return CrashPoint(point, int(k))
