"""The pure decision parts of an LLM call: tail-aware timeout, circuit breaker, one retry owner."""

from __future__ import annotations

import pytest

from docmill.errors import (
    AuthRefusedError,
    InvalidModelOutput,
    RateLimitedError,
    RunStoppedError,
    UnreachableError,
    UpstreamError,
)
from docmill.llm.attempts import Tally, after_failure
from docmill.llm.breaker import Breaker, outage_kind
from docmill.llm.latency import LatencyTracker
from docmill.retry import RetryPolicy
from docmill.testing import FakeClock

POLICY = RetryPolicy(max_attempts=4, initial=1.0, jitter=0.0)


def _tracker() -> LatencyTracker:
    return LatencyTracker(ceiling=60.0, floor=2.0, multiplier=3.0, min_samples=10, clock=FakeClock())


def test_the_ceiling_holds_until_enough_replies_are_in() -> None:
    tracker = _tracker()
    for _ in range(9):
        tracker.observe(1.0)
    assert tracker.timeout() == 60.0
    assert tracker.observe(1.0) and tracker.timeout() == 3.0  # p99 1 s x 3


def test_the_timeout_is_p99_times_the_multiplier_within_floor_and_ceiling() -> None:
    tracker = _tracker()
    for latency in [1.0] * 98 + [4.0, 30.0]:
        tracker.observe(latency)
    assert tracker.p99() == 4.0 and tracker.timeout() == 12.0
    fast = _tracker()
    for _ in range(20):
        fast.observe(0.01)
    assert fast.timeout() == 2.0  # the floor
    slow = _tracker()
    for _ in range(20):
        slow.observe(50.0)
    assert slow.timeout() == 60.0  # the ceiling


def test_abandoned_calls_double_the_timeout_until_a_reply_comes_back() -> None:
    tracker = _tracker()
    for _ in range(10):
        tracker.observe(1.0)
    tracker.abandoned()
    tracker.abandoned()
    assert tracker.timeout() == 12.0
    tracker.observe(1.0)
    assert tracker.timeout() == 3.0


def test_remaining_counts_from_the_start_of_the_call() -> None:
    clock = FakeClock()
    tracker = LatencyTracker(ceiling=10.0, clock=clock)
    started = clock.monotonic()
    clock.advance(4.0)
    assert tracker.remaining(started) == 6.0


def test_the_breaker_opens_after_the_same_outage_lasts_the_window() -> None:
    clock = FakeClock()
    breaker = Breaker(window=10.0, min_failures=3, clock=clock)
    for _ in range(3):
        breaker.failed("unreachable", "refused")
        clock.advance(4.0)
    assert breaker.open() is None  # 8 s so far
    breaker.failed("unreachable", "refused")
    assert breaker.open() is not None and "unreachable for 12 s (4 calls)" in str(breaker.open())


def test_an_answer_or_another_kind_of_failure_restarts_the_streak() -> None:
    clock = FakeClock()
    breaker = Breaker(window=10.0, min_failures=1, clock=clock)
    breaker.failed("unreachable", "x")
    clock.advance(6.0)
    breaker.answered()
    breaker.failed("unreachable", "x")
    clock.advance(6.0)
    breaker.failed("key refused", "y")
    clock.advance(6.0)
    breaker.failed("key refused", "y")
    assert breaker.open() is None


def test_outages_are_typed() -> None:
    assert outage_kind(UnreachableError("x")) and outage_kind(AuthRefusedError("x"))
    assert outage_kind(UpstreamError("503", status=503)) is None


def test_every_failed_attempt_is_counted_and_tokens_only_when_work_was_done() -> None:
    tally, breaker = Tally(prompt_tokens=100), Breaker()
    for error in (UpstreamError("503", status=503), RateLimitedError("429"), UpstreamError("timeout")):
        after_failure(tally, error, policy=POLICY, invalid_retries=2, breaker=breaker)
    assert (tally.requests, tally.tokens_in, tally.failures) == (3, 200, 3)


def test_the_error_given_up_on_is_exhausted_so_no_one_retries_it_again() -> None:
    tally, error = Tally(), UpstreamError("503", status=503)
    for _ in range(3):
        after_failure(tally, error, policy=POLICY, invalid_retries=2, breaker=Breaker())
    with pytest.raises(UpstreamError) as info:
        after_failure(tally, error, policy=POLICY, invalid_retries=2, breaker=Breaker())
    assert info.value.exhausted and tally.requests == 4
    assert RetryPolicy(max_attempts=3).delay(1, info.value) is None  # Job's policy leaves it be
    assert RetryPolicy(max_attempts=3).delay(1, UpstreamError("fresh")) is not None


def test_invalid_answers_have_their_own_budget() -> None:
    tally = Tally()
    for _ in range(2):
        assert (
            after_failure(tally, InvalidModelOutput("x"), policy=POLICY, invalid_retries=2, breaker=Breaker())
            == 0
        )
    with pytest.raises(InvalidModelOutput):
        after_failure(tally, InvalidModelOutput("x"), policy=POLICY, invalid_retries=2, breaker=Breaker())


def test_an_outage_stops_the_run_instead_of_failing_the_document() -> None:
    clock = FakeClock()
    breaker = Breaker(window=5.0, min_failures=2, clock=clock)
    tally = Tally(prompt_tokens=100)
    assert (
        after_failure(tally, AuthRefusedError("401"), policy=POLICY, invalid_retries=2, breaker=breaker)
        == 1.0
    )
    clock.advance(6.0)
    with pytest.raises(RunStoppedError, match="refuses the key"):
        after_failure(tally, AuthRefusedError("401"), policy=POLICY, invalid_retries=2, breaker=breaker)
    assert tally.tokens_in == 0 and tally.requests == 2


def test_an_outage_that_outlasts_the_documents_budget_stops_the_run_too() -> None:
    tally, breaker = Tally(), Breaker(window=3600.0)
    for _ in range(3):
        after_failure(tally, UnreachableError("refused"), policy=POLICY, invalid_retries=2, breaker=breaker)
    with pytest.raises(RunStoppedError, match="unreachable"):
        after_failure(tally, UnreachableError("refused"), policy=POLICY, invalid_retries=2, breaker=breaker)
