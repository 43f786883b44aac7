"""Retry policy as a small pure object: ``delay(attempt, error)`` decides, callers sleep.

``Job.run`` and ``Job.arun`` (and the LLM classifier) drive the same decision with ``clock.sleep`` or
``await clock.asleep``; nothing here touches the clock, so tests are one-liners. A processor that
retries on its own (the LLM classifier) marks the error it gives up on ``exhausted``, and ``Job``
then never retries it: each call has one retry owner.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from docmill.errors import RateLimitedError, RetryableError
from docmill.settings import check


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with full jitter for retryable errors.

    ====================  =======================================================
    ``max_attempts``      attempts in all, the first included (1 = never retry)
    ``initial``           base delay before the second attempt, seconds
    ``maximum``           cap on one delay (a provider's Retry-After may exceed it)
    ``multiplier``        growth per attempt
    ``jitter``            fraction of the delay drawn at random (1.0 = full jitter)
    ``retry_on``          exception classes worth another attempt
    ====================  =======================================================
    """

    max_attempts: int = 5
    initial: float = 1.0
    maximum: float = 60.0
    multiplier: float = 2.0
    jitter: float = 1.0
    retry_on: tuple[type[BaseException], ...] = (RetryableError,)

    def __post_init__(self) -> None:
        check(self.max_attempts >= 1, "max_attempts", self.max_attempts, "must be >= 1")
        check(self.initial >= 0, "initial", self.initial, "must be >= 0")
        check(self.maximum >= self.initial, "maximum", self.maximum, f"must be >= initial ({self.initial})")
        check(self.multiplier >= 1, "multiplier", self.multiplier, "must be >= 1")
        check(0 <= self.jitter <= 1, "jitter", self.jitter, "must be within [0, 1]")

    def retryable(self, error: BaseException) -> bool:
        """Whether ``error`` is worth another attempt at all.

        Not when a processor already spent its own budget on it (``exhausted``): one retry owner
        per call, so a document's attempts are never multiplied by nested policies.
        """
        return isinstance(error, self.retry_on) and not getattr(error, "exhausted", False)

    def delay(self, attempt: int, error: BaseException, *, rng: random.Random | None = None) -> float | None:
        """Seconds to wait after failed attempt number ``attempt`` (1-based), or None to give up.

        A ``RateLimitedError.retry_after`` is a floor: we never come back before the provider said.
        """
        if attempt >= self.max_attempts or not self.retryable(error):
            return None
        retry_after = getattr(error, "retry_after", None) if isinstance(error, RateLimitedError) else None
        return max(self.backoff(attempt, rng=rng), retry_after or 0.0)

    def backoff(self, attempt: int, *, rng: random.Random | None = None) -> float:
        """The jittered exponential wait after failed attempt ``attempt``, whatever the error."""
        backoff = min(self.maximum, self.initial * self.multiplier ** (attempt - 1))
        draw = (rng or _RNG).random()
        return backoff * (1.0 - self.jitter) + backoff * self.jitter * draw


NO_RETRY = RetryPolicy(max_attempts=1)
_RNG = random.Random()
