"""CpuThrottle: how many of a hybrid worker's thread lanes may run, from CPU use and throughput."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from docmill.executors.pool.throttle import CpuThrottle


class World:
    """A fake worker process: ``model(lanes)`` gives (CPU seconds per wall second, docs per second)."""

    def __init__(self, model: Callable[[int], tuple[float, float]]) -> None:
        self.model = model
        self.wall = self.cpu = 0.0

    def run(self, throttle: CpuThrottle, seconds: float = 0.25) -> None:
        """Advance ``seconds``, ticking once per finished document, at the current limit's pace."""
        end = self.wall + seconds
        while self.wall < end:
            used, rate = self.model(throttle.limit)
            self.wall += 1 / rate
            self.cpu += used / rate
            throttle.tick()


def _throttle(world: World, width: int) -> CpuThrottle:
    return CpuThrottle(width, clock=lambda: world.wall, cpu=lambda: world.cpu)


def cpu_bound(lanes: int) -> tuple[float, float]:
    return 0.85, 170.0  # a core's worth however many threads: 5 ms documents


def waiting(share: float, latency: float) -> Callable[[int], tuple[float, float]]:
    """Documents that use ``share`` of a core alone and last ``latency`` seconds alone."""

    def model(lanes: int) -> tuple[float, float]:
        used = min(1.0, lanes * share)
        return used, used / share / latency

    return model


def test_cpu_bound_work_ends_on_one_lane() -> None:
    world = World(cpu_bound)
    throttle = _throttle(world, 8)
    for _ in range(20):
        world.run(throttle)
    assert throttle.limit == 1


def test_waiting_work_keeps_every_lane() -> None:
    world = World(waiting(share=0.01, latency=0.05))
    throttle = _throttle(world, 64)
    for _ in range(40):
        world.run(throttle)
    assert throttle.limit == 64


def test_a_cut_that_costs_throughput_is_undone() -> None:
    world = World(waiting(share=0.1, latency=0.05))  # 8 lanes: 80 % busy, and every lane counts
    throttle = _throttle(world, 8)
    limits = []
    for _ in range(40):
        world.run(throttle)
        limits.append(throttle.limit)
    assert limits[-1] == 8
    assert limits.count(8) >= 0.75 * len(limits)  # experiments are rare: held after a revert


def test_grows_back_when_the_work_starts_waiting() -> None:
    phase = {"cpu": True}
    world = World(lambda n: cpu_bound(n) if phase["cpu"] else waiting(0.02, 0.05)(n))
    throttle = _throttle(world, 32)
    for _ in range(20):
        world.run(throttle)
    assert throttle.limit == 1
    phase["cpu"] = False
    for _ in range(40):
        world.run(throttle)
    assert throttle.limit >= 16


def test_changes_nothing_within_a_window() -> None:
    world = World(cpu_bound)
    throttle = _throttle(world, 8)
    world.run(throttle, seconds=0.01)
    assert throttle.limit == 8


@pytest.mark.parametrize("width", [0, -3])
def test_rejects_a_width_below_one(width: int) -> None:
    with pytest.raises(ValueError):
        CpuThrottle(width)
