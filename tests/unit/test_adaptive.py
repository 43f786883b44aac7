"""AIMD decisions as pure functions, and the gate that enforces them."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time

import pytest

from docmill.errors import ConfigError, RunStoppedError
from docmill.limits import interrupt
from docmill.limits.adaptive import AIMD, ConcurrencyGate
from docmill.testing import FakeClock


def test_grows_by_about_one_per_window_of_successes() -> None:
    aimd = AIMD(limit=4)
    for _ in range(4):
        aimd.on_result(1.0, throttled=False, now=0.0)
    assert aimd.current == 4
    aimd.on_result(1.0, throttled=False, now=0.0)
    assert aimd.current == 5


def test_a_429_halves_the_threshold_and_re_enters_with_one_request() -> None:
    aimd = AIMD(limit=16, cooldown=1.0)
    assert aimd.on_result(1.0, throttled=True, now=10.0) == 1  # one request, never the whole pool
    assert aimd.ssthresh == 8
    assert aimd.on_result(1.0, throttled=True, now=10.5) == 1  # sent before the cut: same decision
    assert aimd.ssthresh == 8
    grown = [aimd.on_result(0.1, throttled=False, now=11.0 + i / 10) for i in range(9)]
    assert grown[:7] == [2, 3, 4, 5, 6, 7, 8]  # slow start: one more per success, up to the threshold
    assert grown[7:] == [8, 8]  # then additive increase: one per window of successes
    assert aimd.on_result(0.1, throttled=True, now=12.5) == 1
    assert aimd.ssthresh == pytest.approx(aimd.backoff * 8.25, rel=0.05)


def test_429s_sent_after_the_cut_count_once_per_cooldown() -> None:
    aimd = AIMD(limit=16, cooldown=1.0)
    aimd.on_result(0.1, throttled=True, now=10.0)
    aimd.on_result(0.1, throttled=False, now=10.2)
    assert aimd.on_result(0.1, throttled=True, now=10.5) == 2  # within the cooldown: no new cut
    assert aimd.ssthresh == 8


def test_probe_starts_with_one_request_and_slow_start_doubles_per_round_trip() -> None:
    aimd = AIMD(limit=8)
    aimd.probe()
    assert aimd.current == 1
    in_flight, rounds = 1, []
    while in_flight < 8:  # each round trip: every request in flight answers once
        for _ in range(in_flight):
            aimd.on_result(0.1, throttled=False, now=0.0)
        in_flight = aimd.current
        rounds.append(in_flight)
    assert rounds == [2, 4, 8]


def test_once_the_limits_are_known_a_success_jumps_to_the_threshold() -> None:
    aimd = AIMD(limit=16)
    aimd.probe()
    assert aimd.on_result(0.1, throttled=False, now=0.0, informed=True) == 16
    aimd.on_result(0.1, throttled=True, now=5.0)
    assert aimd.current == 1  # still one request after a 429...
    assert aimd.on_result(0.1, throttled=False, now=6.0, informed=True) == 8  # ...until it is answered


def test_never_below_minimum_nor_above_maximum() -> None:
    aimd = AIMD(limit=2, minimum=2, maximum=3)
    assert aimd.on_result(1.0, throttled=True, now=0.0) == 2
    for _ in range(100):
        aimd.on_result(1.0, throttled=False, now=0.0)
    assert aimd.current == 3


def test_rising_latency_shrinks_gently() -> None:
    aimd = AIMD(limit=20, latency_tolerance=2.0, latency_backoff=0.9)
    for _ in range(10):
        aimd.on_result(1.0, throttled=False, now=0.0)
    before = aimd.limit
    for i in range(10):
        aimd.on_result(5.0, throttled=False, now=10.0 + i)
    assert aimd.limit < before * 0.9**5  # a cut per cooldown while latency stays high


def test_steady_noisy_latency_does_not_shrink() -> None:
    import random

    rng = random.Random(1)
    aimd = AIMD(limit=8)
    for i in range(2000):
        aimd.on_result(rng.lognormvariate(0.0, 0.3), throttled=False, now=float(i))
    assert aimd.current > 8


@pytest.mark.parametrize("bad", [{"limit": 0.5}, {"minimum": 5, "limit": 4}, {"backoff": 1.0}])
def test_invalid_settings_are_rejected(bad: dict[str, float]) -> None:
    with pytest.raises(ConfigError):
        AIMD(**bad)  # type: ignore[arg-type]


def test_gate_admits_at_most_the_limit_across_threads() -> None:
    gate = ConcurrencyGate(AIMD(limit=3, maximum=3))
    release = threading.Event()

    def hold() -> None:
        with gate.hold():
            release.wait(5)

    threads = [threading.Thread(target=hold) for _ in range(8)]
    for thread in threads:
        thread.start()
    threading.Event().wait(0.2)
    assert gate.in_flight == 3
    release.set()
    for thread in threads:
        thread.join(5)
    assert gate.peak == 3 and gate.in_flight == 0


def test_async_gate_shares_the_limit() -> None:
    gate = ConcurrencyGate(AIMD(limit=2, maximum=2), clock=FakeClock())
    active: list[int] = []

    async def one() -> None:
        async with gate.ahold():
            active.append(gate.in_flight)
            await asyncio.sleep(0.01)

    async def main() -> None:
        await asyncio.gather(*(one() for _ in range(6)))

    asyncio.run(main())
    assert max(active) == 2 and gate.in_flight == 0


def test_record_feeds_the_controller() -> None:
    gate = ConcurrencyGate(AIMD(limit=8), clock=FakeClock())
    assert gate.record(1.0, throttled=True) == 1 and gate.controller.ssthresh == 4


def test_callers_inside_when_a_429_cuts_the_limit_send_one_at_a_time() -> None:
    gate = ConcurrencyGate(AIMD(limit=4), clock=FakeClock())
    with contextlib.ExitStack() as stack:
        slots = [stack.enter_context(gate.hold()) for _ in range(4)]  # all four wait in the limiter
        gate.record(0.1, throttled=True)  # meanwhile a 429: one request at a time now
        assert slots[0]._send_ready() and gate.sending == 1
        assert not any(slot._send_ready() for slot in slots[1:])
    assert gate.sending == 0 and gate.in_flight == 0  # leaving frees both places
    with gate.hold() as slot:
        slot.send()
        assert gate.sending == 1


def test_waits_in_the_gate_end_when_the_run_stops() -> None:
    gate = ConcurrencyGate(AIMD(limit=1, maximum=1))
    errors: list[BaseException] = []

    def wait_for_a_place() -> None:
        try:
            with gate.hold():
                pass
        except RunStoppedError as exc:
            errors.append(exc)

    async def await_a_place() -> None:
        async with gate.ahold():
            pass

    with gate.hold():
        thread = threading.Thread(target=wait_for_a_place)
        thread.start()
        threading.Timer(0.2, interrupt.interrupt).start()
        try:
            started = time.monotonic()
            with pytest.raises(RunStoppedError):
                asyncio.run(await_a_place())
            thread.join(5)
            assert time.monotonic() - started < 1.0
        finally:
            interrupt.resume()
    assert len(errors) == 1


def test_rising_latency_does_not_cut_calls_the_rate_limiter_already_paces() -> None:
    # Paced at a known rate, replies that get slower need more calls in flight, not fewer: the
    # cut used to take 17 in flight down to 8 and the run below its rate.
    paced, unknown = AIMD(limit=16.0), AIMD(limit=16.0)
    for step in range(40):
        latency = 0.5 if step < 20 else 2.0
        paced.on_result(latency, throttled=False, now=float(step), informed=True)
        unknown.on_result(latency, throttled=False, now=float(step))
    assert paced.current >= 16
    assert unknown.current < 16
