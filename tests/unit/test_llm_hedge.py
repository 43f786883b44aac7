"""Hedging decisions and the race of a call against its twin, on a FakeClock."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, cast

import pytest

from docmill.errors import ConfigError, RunStoppedError, UpstreamError
from docmill.limits.base import LimiterStats
from docmill.limits.provider import ProviderLimits, ProviderLimitStats
from docmill.llm.attempts import Tally
from docmill.llm.hedge import FLOOR, Hedger, Sent, next_look
from docmill.llm.latency import LatencyTracker
from docmill.llm.settings import LLMOptions
from docmill.model.labels import LabelSet
from docmill.processors.classify_llm import LLMClassifier, connection
from docmill.settings import from_mapping
from docmill.testing import FakeClock

LABELS = LabelSet(names=("a", "b"), descriptions={"a": "A.", "b": "B."})


def test_a_twin_is_due_once_the_call_is_out_past_the_quantile_and_the_limits_have_room() -> None:
    assert next_look(sent=100.0, now=100.5, after=2.0, room=True) == 1.5  # not yet: look again then
    assert next_look(sent=100.0, now=102.0, after=2.0, room=True) == 0.0  # due, room: send it
    assert next_look(sent=100.0, now=103.0, after=2.0, room=False, poll=0.25) == 0.25  # wait for room
    assert next_look(sent=None, now=103.0, after=2.0, room=True, poll=0.25) == 0.25  # not sent yet
    assert next_look(sent=100.0, now=103.0, after=None, room=True, poll=0.25) == 0.25  # too few replies


@dataclass
class _Level:
    """ProviderLimits as the hedger sees them: a request level that tests set."""

    level: float = 6.0  # a full burst: room to spare

    def statistics(self) -> ProviderLimitStats:
        stats = LimiterStats(rate=10.0, capacity=6.0, level=self.level)
        return ProviderLimitStats(stats, stats)


@dataclass
class _Calls:
    """Scripted calls: ``(when, result)`` each; ``when`` is ``"never"``, ``"now"``, ``"after twin"``
    (once the next call ended) or fake seconds after it was sent; ``result`` a reply or an error."""

    clock: FakeClock
    script: list[tuple[str | float, Any]]
    started: list[int] = field(default_factory=list)
    cancelled: list[int] = field(default_factory=list)
    ended: int = 0

    async def __call__(self, *, sent: Sent | None) -> str:
        index = len(self.started)
        self.started.append(index)
        if sent is not None:
            sent(self.clock.monotonic())
        when, result = self.script[index]
        try:
            await self._until(when, self.clock.monotonic(), index)
        except asyncio.CancelledError:
            self.cancelled.append(index)
            raise
        self.ended = index + 1
        if isinstance(result, Exception):
            raise result
        return str(result)

    async def _until(self, when: str | float, started: float, index: int) -> None:
        if when == "never":
            await asyncio.Event().wait()
        # the fake clock moves only when the race looks: spin until it has
        while (when == "after twin" and self.ended <= index) or (  # noqa: ASYNC110
            isinstance(when, float) and self.clock.monotonic() < started + when
        ):
            await asyncio.sleep(0)
        await asyncio.sleep(0)


def _hedger(clock: FakeClock, level: float = 6.0, samples: int = 20) -> Hedger:
    latency = LatencyTracker(ceiling=60.0, clock=clock)
    for _ in range(samples):
        latency.observe(1.0)  # p95 = 1 s: a call out longer gets a twin
    return Hedger(latency, cast(ProviderLimits, _Level(level)), clock=clock)


def _race(hedger: Hedger, calls: _Calls, tally: Tally) -> str:
    return asyncio.run(hedger.first_reply(calls, tally))


def test_a_call_that_hangs_with_room_to_spare_is_hedged_and_the_loser_is_counted() -> None:
    clock = FakeClock()
    hedger, tally = _hedger(clock), Tally(prompt_tokens=50)
    calls = _Calls(clock, [("never", None), ("now", "twin")])
    assert _race(hedger, calls, tally) == "twin"
    assert calls.cancelled == [0] and (hedger.sent, hedger.won) == (1, 1)
    assert (tally.requests, tally.tokens_in, tally.failures) == (
        1,
        50,
        0,
    )  # the loser; the caller adds the winner


def test_a_reply_within_the_quantile_sends_no_twin() -> None:
    clock = FakeClock()
    hedger, tally = _hedger(clock), Tally()
    calls = _Calls(clock, [("now", "first"), ("now", "twin")])
    assert _race(hedger, calls, tally) == "first"
    assert calls.started == [0] and hedger.sent == 0 and tally.requests == 0


def test_no_twin_while_the_limits_have_no_request_to_spare() -> None:
    clock = FakeClock()
    hedger, tally = _hedger(clock, level=0.5), Tally()
    calls = _Calls(clock, [(3.0, UpstreamError("provider error 503")), ("now", "twin")])
    with pytest.raises(UpstreamError):  # the caller's retry policy takes it from here
        _race(hedger, calls, tally)
    assert calls.started == [0] and hedger.sent == 0 and tally.requests == 0
    assert clock.monotonic() >= 1_003.0  # it was looked at past its due time, with no room


def test_no_twin_before_the_tracker_has_enough_replies() -> None:
    clock = FakeClock()
    hedger = _hedger(clock, samples=3)
    calls = _Calls(clock, [(3.0, UpstreamError("dropped")), ("now", "twin")])
    with pytest.raises(UpstreamError):
        _race(hedger, calls, Tally())
    assert calls.started == [0]


def test_a_twin_that_fails_is_counted_and_the_first_call_still_wins() -> None:
    clock = FakeClock()
    hedger, tally = _hedger(clock), Tally(prompt_tokens=50)
    calls = _Calls(clock, [("after twin", "first"), ("now", UpstreamError("provider error 500"))])
    assert _race(hedger, calls, tally) == "first"
    assert (hedger.sent, hedger.won) == (1, 0)
    assert (tally.requests, tally.failures, tally.tokens_in) == (1, 1, 50)  # the twin's failure


def test_when_both_fail_the_last_error_goes_to_the_retry_owner_and_the_first_is_counted() -> None:
    clock = FakeClock()
    hedger, tally = _hedger(clock), Tally(prompt_tokens=50)
    script: list[tuple[str | float, Any]] = [("after twin", UpstreamError("provider error 503"))]
    calls = _Calls(clock, [*script, ("now", UpstreamError("provider error 500"))])
    with pytest.raises(UpstreamError):  # one of the two; the other is counted
        _race(hedger, calls, tally)
    assert hedger.sent == 1 and (tally.requests, tally.failures) == (1, 1)


def test_a_zero_quantile_never_hedges() -> None:
    clock = FakeClock()
    hedger = _hedger(clock)
    hedger.quantile = 0.0
    calls = _Calls(clock, [("never", None), ("now", "twin")])
    calls.script[0] = ("now", "only")
    assert _race(hedger, calls, Tally()) == "only" and calls.started == [0]


def test_a_twin_that_fails_while_the_call_hangs_is_followed_by_a_second_and_last() -> None:
    clock = FakeClock()
    hedger, tally = _hedger(clock), Tally(prompt_tokens=50)
    failed = ("now", UpstreamError("provider error 503"))
    calls = _Calls(clock, [("never", None), failed, ("now", "second twin")])
    assert _race(hedger, calls, tally) == "second twin"
    assert (hedger.sent, hedger.won) == (2, 1) and calls.cancelled == [0]
    assert (tally.requests, tally.failures) == (2, 1)  # the failed twin and the cut-off call


def test_a_retry_goes_out_with_its_twin_at_once_when_the_limits_have_room() -> None:
    clock = FakeClock()
    hedger, tally = _hedger(clock), Tally(failures=1)
    calls = _Calls(clock, [("never", None), ("now", "twin")])
    assert _race(hedger, calls, tally) == "twin"
    assert clock.monotonic() - 1_000.0 < 1.0  # long before p95 (1 s)
    hedger.pair_retries = False
    calls = _Calls(clock, [("never", None), ("now", "twin")])
    started = clock.monotonic()
    assert _race(hedger, calls, tally) == "twin" and clock.monotonic() - started >= 1.0


def test_the_hedge_setting_reaches_the_client_and_a_bad_one_is_refused_naming_it() -> None:
    options = LLMOptions(base_url="http://127.0.0.1:9/v1", model="m", hedge=0.9)
    clf = LLMClassifier(LABELS, connection(options))
    clf.setup()
    assert clf._client is not None and clf._client.hedger.quantile == 0.9
    clf.teardown()
    with pytest.raises(ConfigError, match=r"^llm\.hedge: .*0 never hedges"):
        from_mapping(LLMOptions, {"hedge": 1.5}, "llm")


def test_a_stop_ends_the_race_at_once_and_cuts_off_the_call_still_out() -> None:
    clock = FakeClock()
    hedger, tally = _hedger(clock), Tally(prompt_tokens=50)
    calls = _Calls(clock, [("never", None), ("now", RunStoppedError("stopping"))])
    with pytest.raises(RunStoppedError):
        _race(hedger, calls, tally)
    assert calls.cancelled == [0] and tally.failures == 0


def test_fast_calls_are_twinned_only_past_the_floor() -> None:
    # p95 of 20 ms: a call stalled for 30 ms is past it, but a twin would save at most that much
    # and cost a request; it is due only once the call has been out for the floor (1 s).
    clock = FakeClock()
    latency = LatencyTracker(ceiling=60.0, clock=clock)
    for _ in range(20):
        latency.observe(0.02)
    hedger = Hedger(latency, cast(ProviderLimits, _Level(6.0)), clock=clock)
    assert hedger.after() == FLOOR
    calls = _Calls(clock, [(0.5, "first"), ("now", "twin")])
    assert _race(hedger, calls, Tally()) == "first"
    assert calls.started == [0] and hedger.sent == 0
