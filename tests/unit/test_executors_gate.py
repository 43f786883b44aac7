"""Gate (the O(1) asyncio semaphore of asyncio/hybrid) and the scoped GC thresholds."""

from __future__ import annotations

import asyncio
import gc

from docmill.executors._gate import Gate
from docmill.executors._gc import YOUNG, fewer_collections


async def _holders(gate: Gate, n: int, hold: float) -> tuple[int, list[int]]:
    """Run ``n`` holders; (most at once, order in which they entered)."""
    inside, most, order = 0, 0, []

    async def one(i: int) -> None:
        nonlocal inside, most
        async with gate:
            order.append(i)
            inside += 1
            most = max(most, inside)
            await asyncio.sleep(hold)
            inside -= 1

    await asyncio.gather(*(one(i) for i in range(n)))
    return most, order


def test_gate_bounds_holders_and_serves_in_arrival_order() -> None:
    most, order = asyncio.run(_holders(Gate(3), 20, 0.001))
    assert most == 3
    assert order == list(range(20))


def test_gate_skips_a_cancelled_waiter() -> None:
    async def scenario() -> list[str]:
        gate, seen = Gate(1), []
        await gate.acquire()

        async def waiter(name: str) -> None:
            async with gate:
                seen.append(name)

        first = asyncio.create_task(waiter("cancelled"))
        second = asyncio.create_task(waiter("served"))
        await asyncio.sleep(0)
        first.cancel()
        await asyncio.sleep(0)
        gate.release()
        await asyncio.wait_for(second, 1)
        assert gate.waiting == 0
        return seen

    assert asyncio.run(scenario()) == ["served"]


def test_gate_passes_on_a_slot_handed_to_a_waiter_cancelled_before_it_ran() -> None:
    async def scenario() -> bool:
        gate = Gate(1)
        await gate.acquire()
        first = asyncio.create_task(gate.acquire())
        second = asyncio.create_task(gate.acquire())
        await asyncio.sleep(0)
        gate.release()  # hands the slot to ``first`` ...
        first.cancel()  # ... which is cancelled before it resumes
        await asyncio.wait_for(second, 1)  # so the slot must reach ``second``
        return first.cancelled()

    assert asyncio.run(scenario())


def test_many_waiters_all_get_through() -> None:
    most, order = asyncio.run(_holders(Gate(64), 5000, 0))
    assert most == 64
    assert sorted(order) == list(range(5000))


def test_fewer_collections_is_scoped() -> None:
    before = gc.get_threshold()
    with fewer_collections():
        assert gc.get_threshold()[0] == max(before[0], YOUNG)
        assert gc.get_threshold()[1:] == before[1:]
    assert gc.get_threshold() == before


def test_loop_thread_keeps_no_more_tasks_than_its_concurrency() -> None:
    """Refs wait in a backlog, not as tasks parked on a semaphore (the collector rescans tasks)."""
    from docmill.executors.aio import LoopThread

    most = 0

    async def work(item: int) -> int:
        nonlocal most
        most = max(most, len(asyncio.all_tasks()))
        await asyncio.sleep(0.002)
        return item

    loop: LoopThread[int, int] = LoopThread(work, 10)
    try:
        loop.submit(list(range(200)))
        results: list[int] = []
        while len(results) < 200:
            results.extend(loop.take())
    finally:
        loop.stop()
    assert sorted(results) == list(range(200))
    assert most <= 10
