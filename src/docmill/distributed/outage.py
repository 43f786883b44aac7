"""Riding out a broker or result store that stops answering for a while.

A Redis that is restarted, failed over or frozen (a long fork for a snapshot, ``DEBUG SLEEP``)
answers again within seconds; a week-long run should wait for it rather than stop for a human to
restart it. The parent wraps every call it makes to Redis or the broker in ``Outages.ride``:
transient connection errors are retried with backoff, and only a store that stays away longer
than ``limit`` seconds stops the run, with one error naming it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

from kombu.exceptions import InconsistencyError, OperationalError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from docmill.clock import Clock
from docmill.errors import BrokenExecutorError

log = logging.getLogger(__name__)

T = TypeVar("T")

# what a store that is away for a while raises; InconsistencyError: a restarted Redis broker has
# lost its queue bindings until a worker reconnects and declares them again
TRANSIENT: tuple[type[BaseException], ...] = (
    RedisConnectionError,
    RedisTimeoutError,
    OperationalError,
    InconsistencyError,
    ConnectionError,
    TimeoutError,
)
MAX_PAUSE = 5.0  # seconds between attempts, at most: a store back is noticed within that


class Outages:
    """Retries calls across outages of ``where`` up to ``limit`` seconds each; keeps the books."""

    def __init__(self, where: str, *, limit: float, clock: Clock) -> None:
        self.where = where
        self.limit = limit
        self.clock = clock
        self.count = 0  # outages ridden out (or not)
        self.seconds = 0.0  # their total length
        self.longest = 0.0

    def ride(self, call: Callable[[], T], what: str) -> T:
        """``call()``, retried while the store is away; BrokenExecutorError after ``limit`` seconds."""
        started: float | None = None
        pause = 0.1
        while True:
            try:
                result = call()
            except TRANSIENT as exc:
                started = self._waiting(started, what, exc)
                self.clock.sleep(pause)
                pause = min(2 * pause, MAX_PAUSE)
                continue
            if started is not None:
                self._back(self.clock.monotonic() - started)
            return result

    def _waiting(self, started: float | None, what: str, exc: BaseException) -> float:
        now = self.clock.monotonic()
        if started is None:
            self.count += 1
            log.warning("%s does not answer (%s: %s); the run waits for it", self.where, what, exc)
            return now
        if now - started > self.limit:
            raise BrokenExecutorError(
                f"{self.where} did not answer for {self.limit:g} s ({what}: {exc}); "
                "start the run again once it is back: recorded documents are skipped",
                cause=exc,
            ) from exc
        return started

    def _back(self, seconds: float) -> None:
        self.seconds += seconds
        self.longest = max(self.longest, seconds)
        log.warning("%s answers again after %.1f s; the run goes on", self.where, seconds)
