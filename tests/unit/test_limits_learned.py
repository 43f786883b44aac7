"""Limits learned from the provider: headers read, buckets that learn, limits inferred from 429s,
the probe and slow start in the client, and waits that end when the run stops."""

from __future__ import annotations

import asyncio
import email.utils
import threading
import time
from pathlib import Path

import httpx
import pytest

from docmill.errors import RateLimitedError, RunStoppedError
from docmill.limits import interrupt
from docmill.limits.headers import Budget, format_duration, parse_duration, read_headers
from docmill.limits.provider import ProviderLimits, token_budget
from docmill.limits.shared import SharedTokenBucket
from docmill.limits.token_bucket import TokenBucket
from docmill.llm.client import LLMClient
from docmill.testing import FakeClock

MESSAGES = [{"role": "system", "content": "classify"}, {"role": "user", "content": "some text"}]
NOW = 1_700_000_000.0


def _reply(headers: dict[str, str] | None = None) -> httpx.Response:
    payload = {
        "choices": [{"message": {"role": "assistant", "content": '{"label": "a"}'}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 20, "completion_tokens": 5, "total_tokens": 25},
    }
    return httpx.Response(200, json=payload, headers=headers)


# -- headers ----------------------------------------------------------------------------------------


def test_openai_headers_are_read_with_go_durations() -> None:
    headers = httpx.Headers(
        {
            "X-RateLimit-Limit-Requests": "300",
            "x-ratelimit-remaining-requests": "299",
            "x-ratelimit-reset-requests": "200ms",
            "x-ratelimit-limit-tokens": "150000",
            "x-ratelimit-remaining-tokens": "149984",
            "x-ratelimit-reset-tokens": "6m0s",
        }
    )
    told = read_headers(headers, now=NOW)
    assert told.told
    assert told.requests == Budget(300, 299, 0.2)
    assert told.tokens == Budget(150_000, 149_984, 360.0)


def test_anthropic_headers_are_read_with_rfc3339_resets() -> None:
    headers = {
        "anthropic-ratelimit-requests-limit": "50",
        "anthropic-ratelimit-requests-remaining": "49",
        "anthropic-ratelimit-requests-reset": "2023-11-14T22:13:21.5Z",  # NOW + 1.5 s
        "anthropic-ratelimit-input-tokens-limit": "40000",
        "anthropic-ratelimit-input-tokens-remaining": "39000",
        "anthropic-ratelimit-input-tokens-reset": "2023-11-14T23:13:20+01:00",  # NOW
    }
    told = read_headers(headers, now=NOW)
    assert (told.requests.limit, told.requests.remaining) == (50, 49)
    assert told.requests.reset == pytest.approx(1.5)
    assert told.tokens == Budget(40_000, 39_000, 0.0)  # no combined tokens limit: input tokens
    headers["anthropic-ratelimit-tokens-limit"] = "80000"
    assert read_headers(headers, now=NOW).tokens.limit == 80_000


def test_no_rate_limit_headers_tell_nothing() -> None:
    told = read_headers({"retry-after": "3", "content-type": "application/json"}, now=NOW)
    assert not told.told and told.requests == Budget()


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("6m0s", 360.0),
        ("1h2m3.5s", 3723.5),
        ("17.28s", 17.28),
        ("750us", 0.00075),
        ("1m", 60.0),
        ("x1s", None),
    ],
)
def test_go_durations(text: str, seconds: float | None) -> None:
    assert parse_duration(text) == (pytest.approx(seconds) if seconds is not None else None)


@pytest.mark.parametrize("seconds", [0.0, 0.25, 1.0, 59.731, 60.0, 61.5, 3600.0, 3723.5])
def test_format_duration_round_trips(seconds: float) -> None:
    assert parse_duration(format_duration(seconds)) == pytest.approx(seconds)
    assert format_duration(360.0) == "6m0s" and format_duration(0.25) == "250ms"


# -- buckets that learn -------------------------------------------------------------------------------


def _times(bucket: TokenBucket | SharedTokenBucket, clock: FakeClock, n: int) -> list[float]:
    times = []
    for _ in range(n):
        bucket.acquire()
        times.append(clock.monotonic())
    return times


def test_an_unlimited_bucket_admits_at_once_then_paces_by_what_it_learns() -> None:
    clock = FakeClock()
    bucket = TokenBucket.unlimited(1.0, clock=clock)
    assert not bucket.known()
    assert _times(bucket, clock, 50) == [1000.0] * 50  # nothing known: no pacing
    bucket.learn(60)  # 60 per second: burst 1, then 58 a second
    assert bucket.known()
    times = _times(bucket, clock, 59)
    assert times[-1] - times[0] == pytest.approx(58 / 58)
    assert max(sum(1 for t in times if s <= t < s + 1.0) for s in times) <= 59


def test_a_configured_limit_stays_a_ceiling_and_a_lower_one_is_learned() -> None:
    clock = FakeClock()
    bucket = TokenBucket.within(30, 1.0, clock=clock)
    bucket.learn(120)  # the provider allows more: the configured 30 stays
    assert bucket.statistics().rate == pytest.approx(28)
    bucket.learn(12)  # the provider allows less: learned
    assert bucket.statistics().rate == pytest.approx(10) and bucket.statistics().capacity == 1
    bucket.learn(300)  # and it changed again: back to the configured ceiling
    assert bucket.statistics().rate == pytest.approx(28)


def test_what_one_holder_learns_every_holder_of_a_shared_bucket_paces_by(tmp_path: Path) -> None:
    clock = FakeClock()
    one = SharedTokenBucket.unlimited(1.0, clock=clock, path=tmp_path / "bucket")
    other = SharedTokenBucket.unlimited(1.0, clock=clock, path=tmp_path / "bucket")
    one.learn(12)
    assert other.known() and other.statistics().rate == pytest.approx(10)
    times = _times(other, clock, 11)
    assert times[-1] - times[0] == pytest.approx(1.0)


def test_after_a_pause_waiters_go_one_at_a_time_at_the_rate() -> None:
    clock = FakeClock()
    bucket = TokenBucket(10, 1.0, burst=5, clock=clock)
    bucket.pause_for(2.0)
    times = _times(bucket, clock, 4)
    assert times == [pytest.approx(t) for t in (1002.0, 1002.1, 1002.2, 1002.3)]  # not 4 at 1002.0


def test_a_waiter_queued_before_a_pause_queues_again_behind_it() -> None:
    clock = FakeClock()
    bucket = TokenBucket(10, 1.0, burst=1, clock=clock)
    bucket.acquire()
    original = clock.sleep

    def sleep(seconds: float) -> None:
        original(seconds)
        if len(clock.sleeps) == 1:
            bucket.pause_for(1.0)  # a 429 came meanwhile
            bucket.acquire()  # another caller took the first place after the pause

    clock.sleep = sleep  # type: ignore[method-assign]
    start = clock.monotonic()
    bucket.acquire()  # reserved for +0.1 s; the pause forgave it, it queues after the other caller
    assert clock.monotonic() - start == pytest.approx(0.1 + 1.0 + 0.1)
    assert bucket.statistics().acquired == 3  # the re-queue is not counted twice


# -- ProviderLimits: learn, re-learn, infer -----------------------------------------------------------


def test_provider_limits_learn_both_budgets_and_re_learn_when_they_change() -> None:
    clock = FakeClock()
    limits = ProviderLimits(per=60.0, margin=0.0, clock=clock)
    assert not limits.known
    limits.observe(
        read_headers({"x-ratelimit-limit-requests": "600", "x-ratelimit-limit-tokens": "200000"}, now=NOW)
    )
    assert limits.known
    stats = limits.statistics()
    assert stats.requests.rate == pytest.approx((600 - 2) / 60)
    assert stats.tokens.rate == pytest.approx((token_budget(200_000) - 1 - 1990) / 60)
    limits.observe(read_headers({"x-ratelimit-limit-requests": "300"}, now=NOW))
    assert limits.statistics().requests.rate == pytest.approx((300 - 2) / 60)


def test_without_headers_a_429_teaches_what_the_window_accepted() -> None:
    limits = ProviderLimits(per=10.0, margin=0.0, clock=FakeClock())
    for i in range(40):  # 4 accepted a second for 10 s
        limits.answered(i / 4, throttled=False, now=i / 4 + 0.1)
    assert not limits.known
    limits.answered(9.8, throttled=True, now=9.9)  # then the provider said no
    assert limits.known and limits.statistics().requests.rate == pytest.approx((40 - 1 - 1) / 10)
    for i in range(41):  # a quiet window at that pace: the inferred limit grows, in case it was low
        limits.answered(10.1 + i / 3.8, throttled=False, now=10.2 + i / 3.8)
    assert limits.statistics().requests.rate == pytest.approx((44 - 1 - 1) / 10)


def test_nothing_is_inferred_once_a_reply_announced_the_limit() -> None:
    limits = ProviderLimits(per=10.0, margin=0.0, clock=FakeClock())
    limits.observe(read_headers({"x-ratelimit-limit-requests": "100"}, now=NOW))
    for i in range(5):
        limits.answered(float(i), throttled=False, now=i + 0.1)
    limits.answered(5.0, throttled=True, now=5.1)
    assert limits.statistics().requests.rate == pytest.approx((100 - 1 - 1) / 10)


def test_a_pause_lasts_at_least_a_second_of_the_minute_so_the_providers_window_drains() -> None:
    clock = FakeClock()
    limits = ProviderLimits(per=60.0, clock=clock)
    limits.pause_for(0.05)  # Retry-After: one request fits again in 50 ms...
    assert limits.statistics().requests.paused_for == pytest.approx(1.0)  # ...but rejections counted too
    limits.pause_for(2.5)
    assert limits.statistics().requests.paused_for == pytest.approx(2.5)


def test_a_caller_that_waited_for_a_place_on_the_wire_still_waits_out_a_pause_begun_meanwhile() -> None:
    clock = FakeClock()
    limits = ProviderLimits(TokenBucket(100, 1.0, clock=clock), TokenBucket(10_000, 1.0, clock=clock))
    ticket = limits.acquire(10)
    limits.pause_for(3.0)  # a 429 came while it waited for a place on the wire
    start = clock.monotonic()
    limits.confirm(10, ticket)
    assert clock.monotonic() - start == pytest.approx(3.0, abs=0.01)
    ticket = limits.acquire(10)
    before = clock.monotonic()
    limits.confirm(10, ticket)  # no pause since: it goes at once
    assert clock.monotonic() == before


# -- the client: probe, then the pool --------------------------------------------------------------


def test_the_client_probes_with_one_request_then_opens_the_pool_to_what_it_learned() -> None:
    headers = {"x-ratelimit-limit-requests": "6000", "x-ratelimit-remaining-requests": "5999"}
    client = LLMClient("http://llm.test/v1", transport=httpx.MockTransport(lambda r: _reply(headers)))
    assert client.gate.controller.current == 1  # nothing known: one request first
    client.complete(MESSAGES, model="m")
    assert client.limits.known
    assert client.gate.controller.current == 8  # the limits are known: the pool opens at once
    assert client.limits.statistics().requests.rate == pytest.approx((6000 - 2) / 60.5)


def test_without_headers_the_pool_grows_by_slow_start_and_a_429_brings_it_back_to_one() -> None:
    replies = iter([_reply()] * 3 + [httpx.Response(429, headers={"retry-after-ms": "10"})])
    client = LLMClient("http://llm.test/v1", transport=httpx.MockTransport(lambda r: next(replies)))
    seen = []
    for _ in range(3):
        client.complete(MESSAGES, model="m")
        seen.append(client.gate.controller.current)
    assert seen == [2, 3, 4]  # one more per answer: doubling per round trip
    with pytest.raises(RateLimitedError):
        client.complete(MESSAGES, model="m")
    assert client.gate.controller.current == 1 and client.gate.controller.ssthresh == 2


def test_configured_limits_need_no_probe() -> None:
    limits = ProviderLimits.from_rates(600, None, shared=False)
    client = LLMClient("http://llm.test/v1", limits=limits, transport=httpx.MockTransport(lambda r: _reply()))
    assert client.gate.controller.current == 8


# -- stopping -----------------------------------------------------------------------------------------


def test_a_wait_in_a_pause_ends_at_once_when_the_run_stops() -> None:
    bucket = TokenBucket.unlimited(60.0)
    bucket.pause_for(56.0)  # a long Retry-After
    errors: list[BaseException] = []

    def wait() -> None:
        try:
            bucket.acquire()
        except RunStoppedError as exc:
            errors.append(exc)

    async def await_() -> None:
        await bucket.aacquire()

    thread = threading.Thread(target=wait)
    thread.start()
    threading.Timer(0.2, interrupt.interrupt).start()
    started = time.monotonic()
    try:
        with pytest.raises(RunStoppedError, match="redone next run"):
            asyncio.run(await_())
        thread.join(5)
    finally:
        interrupt.resume()
    assert len(errors) == 1 and time.monotonic() - started < 1.0
    assert not interrupt.interrupted()


def test_interrupted_sleeps_on_a_fake_clock_still_check() -> None:
    clock = FakeClock()
    interrupt.interrupt()
    try:
        with pytest.raises(RunStoppedError):
            interrupt.sleep(clock, 5.0)
    finally:
        interrupt.resume()
    interrupt.sleep(clock, 5.0)
    assert clock.sleeps == [5.0]


def test_retry_after_is_still_read_from_an_http_date() -> None:
    from docmill.llm.client import retry_after

    assert retry_after(
        {"retry-after": email.utils.formatdate(NOW + 30, usegmt=True)}, now=NOW
    ) == pytest.approx(30)


def test_what_one_host_learns_every_host_paces_by_through_redis() -> None:
    redis_bucket = pytest.importorskip("docmill.limits.redis_bucket")
    name = f"test-{time.monotonic_ns()}"
    url = "redis://127.0.0.1:6379/0"
    here = redis_bucket.redis_provider_limits(url, name, rpm=None, tpm=None, per=60.0, margin=0.0)
    there = redis_bucket.redis_provider_limits(url, name, rpm=None, tpm=None, per=60.0, margin=0.0)
    try:
        assert not there.known
    except Exception as exc:  # UpstreamError: no Redis here
        pytest.skip(f"Redis is not reachable: {exc}")
    try:
        here.observe(read_headers({"x-ratelimit-limit-requests": "600"}, now=NOW))
        assert there.known
        assert there.statistics().requests.rate == pytest.approx((600 - 2) / 60)
    finally:
        here.requests.reset()
        here.tokens.reset()
