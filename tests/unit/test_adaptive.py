"""AIMD decisions as pure functions, and the gate that enforces them."""

from __future__ import annotations

import asyncio
import threading

import pytest

from docmill.errors import ConfigError
from docmill.limits.adaptive import AIMD, ConcurrencyGate
from docmill.testing import FakeClock


def test_grows_by_about_one_per_window_of_successes() -> None:
    aimd = AIMD(limit=4)
    for _ in range(4):
        aimd.on_result(1.0, throttled=False, now=0.0)
    assert aimd.current == 4
    aimd.on_result(1.0, throttled=False, now=0.0)
    assert aimd.current == 5


def test_halves_on_429_once_per_cooldown() -> None:
    aimd = AIMD(limit=16, cooldown=1.0)
    assert aimd.on_result(1.0, throttled=True, now=10.0) == 8
    assert aimd.on_result(1.0, throttled=True, now=10.5) == 8  # same burst of 429s: one decision
    assert aimd.on_result(1.0, throttled=True, now=11.0) == 4


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
    assert gate.record(1.0, throttled=True) == 4
