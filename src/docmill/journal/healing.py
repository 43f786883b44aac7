"""Journal connections that heal: retry a lost connection (or a locked file) for a bounded time.

A journal operation is a whole transaction, and every write is an upsert keyed by (source, path,
fingerprint), so replaying one after a failure cannot add a row. When the PostgreSQL connection is
cut (a failover, a restarted pgbouncer, ``pg_terminate_backend``) or SQLite answers ``database is
locked`` for longer than its busy timeout, the journal asks its ``Healer`` to wait, mend (reconnect,
or roll back) and replay, with capped exponential backoff, for at most ``Backoff.budget`` seconds;
only then does the run stop, with one line that says what was tried for how long.

The policy (``Backoff``) is pure; the ``Healer`` takes its time from an injected ``Clock``, so both
are tested without sleeping (``docmill.testing.FakeClock``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from docmill.clock import SYSTEM_CLOCK, Clock
from docmill.errors import JournalError
from docmill.settings import check

T = TypeVar("T")
log = logging.getLogger("docmill.journal")


@dataclass(frozen=True, slots=True)
class Backoff:
    """Capped exponential backoff inside a total time budget (seconds).

    No jitter: a journal has one writer, so there is no crowd of clients to spread out.
    """

    budget: float = 120.0  # time from the failed operation's start until we give up
    initial: float = 0.25  # first wait
    maximum: float = 8.0  # cap on one wait
    multiplier: float = 2.0

    def __post_init__(self) -> None:
        check(self.budget >= 0, "reconnect_seconds", self.budget, "must be >= 0")
        check(0 < self.initial <= self.maximum, "initial", self.initial, "must be > 0 and <= maximum")
        check(self.multiplier >= 1, "multiplier", self.multiplier, "must be >= 1")

    def delay(self, failures: int, elapsed: float) -> float | None:
        """Seconds to wait after ``failures`` failed attempts, ``elapsed`` s in; None: give up."""
        left = self.budget - elapsed
        if left <= 0:
            return None
        return min(self.maximum, self.initial * self.multiplier ** (failures - 1), left)


@dataclass(slots=True)
class _Trouble:
    """One stretch of failures of one operation."""

    began: float
    failures: int = 0


class Healer:
    """Runs journal operations, replaying those that fail with a ``lost`` error after ``mend()``.

    ``lost(error)`` says whether an error is the connection's (worth a reconnect) rather than the
    statement's; ``mend()`` makes the connection usable again (it may fail with a lost error too,
    which counts as one more failed attempt). Other errors pass through untouched. Once it has
    given up, the next operations get one attempt each (no second wait of the whole budget while
    the run ends), until one succeeds.
    """

    def __init__(
        self,
        lost: Callable[[BaseException], bool],
        mend: Callable[[], None],
        *,
        what: str,
        policy: Backoff | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.lost, self.mend, self.what = lost, mend, what
        self.policy = policy or Backoff()
        self.clock = clock
        self.healed = 0  # stretches of failures survived, for tests and stats
        self.verdict: str | None = None  # "gave up after …": set when the budget ran out

    @property
    def gave_up(self) -> bool:
        """Whether the last stretch of failures outlasted the budget (and none succeeded since)."""
        return self.verdict is not None

    def call(self, op: Callable[[], T], action: str) -> T:
        """``op()``, replayed across lost connections; ``JournalError`` once the budget is spent."""
        trouble = _Trouble(self.clock.monotonic())
        while True:
            try:
                if trouble.failures or self.gave_up:
                    self.mend()
                result = op()
            except Exception as exc:
                if not self.lost(exc):
                    raise
                self._wait(trouble, exc, action)
                continue
            if trouble.failures:
                self._back(trouble)
            self.verdict = None
            return result

    def _wait(self, trouble: _Trouble, exc: BaseException, action: str) -> None:
        trouble.failures += 1
        elapsed = self.clock.monotonic() - trouble.began
        wait = None if self.verdict else self.policy.delay(trouble.failures, elapsed)
        if wait is None:
            self.verdict = (
                self.verdict or f"gave up after {duration(elapsed)} of retrying ({_attempts(trouble)})"
            )
            raise JournalError(f"{action}: {self.what}: {first_line(exc)}; {self.verdict}") from exc
        if trouble.failures == 1:
            budget = duration(self.policy.budget)
            log.warning("%s: %s; retrying for up to %s", self.what, first_line(exc), budget)
        self.clock.sleep(wait)

    def _back(self, trouble: _Trouble) -> None:
        self.healed += 1
        seconds = self.clock.monotonic() - trouble.began
        log.warning(
            "%s: working again after %s (%s failed)", self.what, duration(seconds), _attempts(trouble)
        )


def _attempts(trouble: _Trouble) -> str:
    return "1 attempt" if trouble.failures == 1 else f"{trouble.failures} attempts"


def duration(seconds: float) -> str:
    """``2 min``, ``1 min 30 s``, ``4.5 s``: how a log line says a span."""
    if seconds < 60:
        return f"{seconds:.1f} s" if seconds < 10 else f"{seconds:.0f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min" if not rest else f"{minutes} min {rest} s"


def first_line(exc: BaseException) -> str:
    """An error's first line (driver messages span several), or its type when it has no text."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
