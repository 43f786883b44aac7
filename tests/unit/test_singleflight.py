"""SingleFlight: one call per key across threads, event loops and processes (real SQLite claims)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from docmill.errors import ProcessingError
from docmill.llm.cache import Claim, ResponseCache
from docmill.llm.singleflight import Borrowed, Flights, SingleFlight, owner
from docmill.testing import FakeClock

KEY = "k" * 64


def _answer(value: str) -> dict[str, Any]:
    return {"label": value, "score": None}


class Model:
    """A stand-in for the provider: counts calls, takes a little real time, stores its answer."""

    def __init__(self, cache: ResponseCache, *, fail_first: bool = False, seconds: float = 0.1) -> None:
        self.cache, self.fail_first, self.seconds = cache, fail_first, seconds
        self.calls = 0
        self._lock = threading.Lock()

    def _count(self) -> int:
        with self._lock:
            self.calls += 1
            return self.calls

    def call(self) -> str:
        n = self._count()
        time.sleep(self.seconds)
        if self.fail_first and n == 1:
            raise ProcessingError("the first call fails")
        self.cache.put(KEY, _answer("paid"))
        return "paid"

    async def acall(self) -> str:
        n = self._count()
        await asyncio.sleep(self.seconds)
        if self.fail_first and n == 1:
            raise ProcessingError("the first call fails")
        self.cache.put(KEY, _answer("paid"))
        return "paid"


def _flight(cache: ResponseCache, clock: Any = None, **kwargs: Any) -> SingleFlight[str]:
    extra = {"clock": clock} if clock is not None else {}
    return SingleFlight(cache, lambda value: _answer(value), flights=Flights(), **extra, **kwargs)


def _in_loop(flight: SingleFlight[str], model: Model, refs: list[str]) -> list[Any]:
    async def each(ref: str) -> Any:
        try:
            return await flight.arun(KEY, ref, model.acall)
        except ProcessingError as exc:
            return exc

    async def every() -> list[Any]:
        return list(await asyncio.gather(*(each(ref) for ref in refs)))

    return asyncio.run(every())


def _in_thread(flight: SingleFlight[str], model: Model, ref: str) -> Any:
    try:
        return flight.run(KEY, ref, model.call)
    except ProcessingError as exc:
        return exc


def _together(flight: SingleFlight[str], model: Model) -> list[Any]:
    """Six threads and two event loops of three tasks each ask for the same key at once."""
    with ThreadPoolExecutor(8) as pool:
        threads = [pool.submit(_in_thread, flight, model, f"t{i}") for i in range(6)]
        loops = [pool.submit(_in_loop, flight, model, [f"l{j}-{i}" for i in range(3)]) for j in range(2)]
        return [f.result() for f in threads] + [r for f in loops for r in f.result()]


def test_threads_and_event_loops_share_one_call(tmp_path: Path) -> None:
    cache = ResponseCache(tmp_path / "cache.db")
    model = Model(cache)
    results = _together(_flight(cache), model)
    assert model.calls == 1 and len(results) == 12
    leaders = [r for r in results if r == "paid"]
    borrowed = [r for r in results if isinstance(r, Borrowed)]
    assert len(leaders) == 1 and len(borrowed) == 11
    assert {b.answer["label"] for b in borrowed} == {"paid"}
    assert len({b.source for b in borrowed}) == 1 and None not in {b.source for b in borrowed}
    assert cache.holder(KEY) is None  # the claim was released


def test_a_failed_leader_hands_the_key_on_and_its_waiters_try_themselves(tmp_path: Path) -> None:
    cache = ResponseCache(tmp_path / "cache.db")
    model = Model(cache, fail_first=True)
    results = _together(_flight(cache), model)
    failures = [r for r in results if isinstance(r, ProcessingError)]
    assert len(failures) == 1  # only the leader fails: its failure is its own
    assert model.calls == 2  # one waiter became the next leader; the rest took its answer
    assert sum(r == "paid" for r in results) == 1
    assert sum(isinstance(r, Borrowed) for r in results) == 10


def test_a_claim_whose_owner_process_died_is_taken_over_at_once(tmp_path: Path) -> None:
    path = tmp_path / "cache.db"
    holder = subprocess.Popen(
        [sys.executable, "-c", _CLAIMER, str(path), KEY], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "claimed"
        cache = ResponseCache(path)
        model = Model(cache, seconds=0.0)
        with ThreadPoolExecutor(1) as pool:
            waiting = pool.submit(_flight(cache).run, KEY, "mine", model.call)
            time.sleep(0.4)
            assert not waiting.done() and model.calls == 0  # its owner lives: wait
            holder.kill()
            holder.wait()
            started = time.monotonic()
            assert waiting.result(timeout=5) == "paid"
        assert model.calls == 1 and time.monotonic() - started < 2.0  # not the 300 s of patience
    finally:
        holder.kill()
        holder.wait()


_CLAIMER = """
import os, socket, sys, time
from docmill.llm.cache import Claim, ResponseCache
cache = ResponseCache(sys.argv[1])
assert cache.claim(sys.argv[2], Claim(f"{socket.gethostname()}:{os.getpid()}:t", "theirs", time.time() + 300))
print("claimed", flush=True)
time.sleep(60)
"""


def test_a_claim_left_by_this_process_is_stale_and_taken_over(tmp_path: Path) -> None:
    cache, clock = ResponseCache(tmp_path / "cache.db"), FakeClock()
    assert cache.claim(KEY, Claim(owner(), "cut-short", clock.wall() + 300.0))
    model = Model(cache, seconds=0.0)
    assert _flight(cache, clock).run(KEY, "mine", model.call) == "paid"
    assert model.calls == 1 and clock.sleeps == []


def test_a_claim_from_another_host_is_waited_for_until_it_expires(tmp_path: Path) -> None:
    cache, clock = ResponseCache(tmp_path / "cache.db"), FakeClock()
    assert cache.claim(KEY, Claim("elsewhere:1:t", "theirs", clock.wall() + 5.0))
    model = Model(cache, seconds=0.0)
    assert _flight(cache, clock).run(KEY, "mine", model.call) == "paid"
    assert model.calls == 1 and 5.0 <= sum(clock.sleeps) < 6.0


class _AnswersLater(FakeClock):
    """The other process answers while we wait: on the third poll, its answer lands in the cache."""

    def __init__(self, cache: ResponseCache, claim: Claim) -> None:
        super().__init__()
        self.cache, self.claim = cache, claim

    def sleep(self, seconds: float) -> None:
        super().sleep(seconds)
        if len(self.sleeps) == 3:
            self.cache.put(KEY, _answer("theirs"))
            self.cache.release(KEY, self.claim)


@pytest.mark.parametrize("awaiting", [False, True])
def test_an_answer_paid_by_another_process_is_taken_with_its_source(tmp_path: Path, awaiting: bool) -> None:
    cache = ResponseCache(tmp_path / "cache.db")
    claim = Claim("elsewhere:1:t", "their-doc", FakeClock().wall() + 60.0)
    assert cache.claim(KEY, claim)
    model, flight = Model(cache, seconds=0.0), _flight(cache, _AnswersLater(cache, claim))
    if awaiting:
        shared = asyncio.run(flight.arun(KEY, "mine", model.acall))
    else:
        shared = flight.run(KEY, "mine", model.call)
    assert shared == Borrowed(_answer("theirs"), "their-doc") and model.calls == 0
