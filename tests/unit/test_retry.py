from __future__ import annotations

import random

import pytest

from docmill.errors import ConfigError, CorruptDocument, RateLimitedError, UpstreamError
from docmill.retry import NO_RETRY, RetryPolicy


def test_gives_up_on_permanent_errors() -> None:
    assert RetryPolicy().delay(1, CorruptDocument("bad")) is None


def test_gives_up_after_max_attempts() -> None:
    policy = RetryPolicy(max_attempts=3)
    assert policy.delay(2, UpstreamError("x")) is not None
    assert policy.delay(3, UpstreamError("x")) is None


def test_no_retry_never_retries() -> None:
    assert NO_RETRY.delay(1, UpstreamError("x")) is None


def test_backoff_without_jitter_is_exponential_and_capped() -> None:
    policy = RetryPolicy(max_attempts=10, initial=1, maximum=5, multiplier=2, jitter=0)
    assert [policy.delay(n, UpstreamError("x")) for n in range(1, 6)] == [1, 2, 4, 5, 5]


def test_full_jitter_stays_within_the_backoff() -> None:
    policy = RetryPolicy(max_attempts=10, initial=1, multiplier=2, jitter=1.0)
    rng = random.Random(7)
    draws = [policy.delay(3, UpstreamError("x"), rng=rng) for _ in range(200)]
    assert all(d is not None and 0 <= d <= 4 for d in draws)
    assert max(d for d in draws if d is not None) > 3  # spread over the interval


def test_retry_after_is_a_floor_even_past_the_cap() -> None:
    policy = RetryPolicy(max_attempts=5, initial=1, maximum=60, jitter=0)
    assert policy.delay(1, RateLimitedError("slow down", retry_after=90)) == 90


@pytest.mark.parametrize(
    "kwargs",
    [{"max_attempts": 0}, {"initial": -1}, {"initial": 10, "maximum": 1}, {"multiplier": 0.5}, {"jitter": 2}],
)
def test_invalid_policies_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ConfigError):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]
