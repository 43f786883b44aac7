"""Singleflight: copies of one content in flight together make one LLM call, not one each.

The journal notices a duplicate only when its result is recorded, and the response cache only once
an answer is stored; two byte-identical documents classified at the same time would both be paid
for. Here the first caller for a key (the response cache key: content sha256, prompt, model,
labels) asks the model; the others wait for its answer and take it, at no cost.

Two levels, because the callers live in threads, event loops and worker processes:

* **in one process** a dict key → ``concurrent.futures.Future`` (``Flights``). A Future is safe to
  resolve from any thread and can be awaited from any event loop (``asyncio.wrap_future``), so the
  threads strategy, the asyncio strategies and staged's parent loop share one mechanism.
* **across processes** the leader of each process *claims* the key in the response cache, the
  SQLite file every process of the run shares (``ResponseCache.claim``). Whoever holds the claim
  calls; the others poll the cache with a capped backoff until the answer appears. A claim expires
  after ``patience`` seconds, and one whose owner process is gone (same host, pid dead) is taken
  over at once, so a killed worker never leaves its copies waiting. Polling a local file costs
  microseconds; a message channel between workers would have to exist in every strategy first.

When the leader fails (an error, a timeout, a cancellation), it releases the key without an
answer and the waiters do not inherit its failure: one of them becomes the next leader and tries
itself, still one call at a time. A failure is often the leader's own (its deadline, its retry
budget spent during a 429 storm); and a shared failure would carry the leader's bill to every copy.
A content that always fails therefore costs one retry budget per copy, as without coalescing.

Without a response cache (``cache: none``, or a journal that is not a SQLite file) only copies
inside one process coalesce.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import threading
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from docmill.clock import SYSTEM_CLOCK, Clock
from docmill.document import Document
from docmill.llm.cache import Claim

T = TypeVar("T")
FIRST_POLL = 0.01  # seconds before a waiting process looks at the cache again; doubles...
LAST_POLL = 0.2  # ...up to this
PATIENCE = 300.0  # a claim older than this is taken over even if its owner seems alive


@dataclass(frozen=True, slots=True)
class Borrowed:
    """An answer paid for by another document (``source``, its ref id), or found in the cache (None)."""

    answer: Mapping[str, Any]
    source: str | None


@dataclass(frozen=True, slots=True)
class Waiting:
    """Another process holds the key (``holder``; None: it was taken from under us): look again."""

    holder: Claim | None


class Claims(Protocol):
    """What the response cache offers (``ResponseCache``, ``NullCache``)."""

    def get(self, key: str) -> dict[str, Any] | None: ...
    def claim(self, key: str, claim: Claim, *, replacing: Claim | None = None) -> bool: ...
    def holder(self, key: str) -> Claim | None: ...
    def release(self, key: str, claim: Claim) -> None: ...


class Flights:
    """This process's calls in flight: key → Future of what the waiters take (None: try yourself)."""

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self._lock, self._calls, self._pid = threading.Lock(), dict[str, Future[Any]](), os.getpid()

    def join(self, key: str) -> tuple[Future[Any], bool]:
        """The key's Future, and whether the caller is its leader (the first to ask)."""
        if self._pid != os.getpid():  # forked: the parent's calls are not ours to wait for
            self._reset()
        with self._lock:
            if (future := self._calls.get(key)) is not None:
                return future, False
            future = self._calls[key] = Future()
            return future, True

    def finish(self, key: str, future: Future[Any], shared: Borrowed | None) -> None:
        with self._lock:
            if self._calls.get(key) is future:
                del self._calls[key]
        future.set_result(shared)

    def __len__(self) -> int:
        return len(self._calls)


FLIGHTS = Flights()


def answer_of(doc: Document) -> dict[str, Any]:
    """What a copy takes from the classified document that paid: its answer, as the cache keeps it."""
    return {"label": doc.metadata["label"], "score": doc.metadata.get("score")}


_OWNER: dict[int, str] = {}


def owner() -> str:
    """This process's name on its claims: ``host:pid:token`` (the token tells a reused pid apart)."""
    pid = os.getpid()
    if pid not in _OWNER:
        _OWNER[pid] = f"{socket.gethostname()}:{pid}:{secrets.token_hex(4)}"
    return _OWNER[pid]


def alive(name: str) -> bool:
    """False only when ``name``'s process is known to be gone (same host, no such pid, or a zombie)."""
    host, pid, _ = name.rsplit(":", 2)
    if host != socket.gethostname():
        return True  # cannot tell: its claim's expiry decides
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, ValueError):
        return True
    return not _zombie(int(pid))


def _other(name: str) -> bool:
    """Whether ``name`` is another live process. A claim of this process's own name is stale: this
    process's one caller per key is the one looking (a claim left by a call cut short)."""
    return name != owner() and alive(name)


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            return stat.read().rsplit(")", 1)[-1].split()[0] == "Z"
    except (OSError, IndexError):
        return False


class SingleFlight(Generic[T]):
    """One call per key at a time; ``run``/``arun`` return the call's result or a ``Borrowed``."""

    def __init__(
        self,
        claims: Claims,
        answer_of: Callable[[T], Mapping[str, Any]],
        *,
        clock: Clock = SYSTEM_CLOCK,
        patience: float = PATIENCE,
        flights: Flights = FLIGHTS,
    ) -> None:
        self.claims, self.answer_of, self.clock = claims, answer_of, clock
        self.patience, self.flights = patience, flights

    def run(self, key: str, ref: str, call: Callable[[], T]) -> T | Borrowed:
        """Blocking: lead (call) or wait for the leader of ``key`` in this process."""
        while True:
            future, leader = self.flights.join(key)
            if leader:
                return self._lead(key, ref, call, future)
            if (shared := future.result()) is not None:
                return shared  # type: ignore[no-any-return]

    async def arun(self, key: str, ref: str, call: Callable[[], Awaitable[T]]) -> T | Borrowed:
        """Awaiting: the same, from any event loop."""
        while True:
            future, leader = self.flights.join(key)
            if leader:
                return await self._alead(key, ref, call, future)
            if (shared := await asyncio.wrap_future(future)) is not None:
                return shared  # type: ignore[no-any-return]

    def _lead(self, key: str, ref: str, call: Callable[[], T], future: Future[Any]) -> T | Borrowed:
        result: T | Borrowed | None = None
        try:
            found, wait = self._look(key, ref, None), FIRST_POLL
            while isinstance(found, Waiting):
                self.clock.sleep(wait)
                found, wait = self._look(key, ref, found.holder), min(wait * 2, LAST_POLL)
            result = self._called(key, found, call) if isinstance(found, Claim) else found
            return result
        finally:
            self.flights.finish(key, future, self._shared(result, ref))

    async def _alead(
        self, key: str, ref: str, call: Callable[[], Awaitable[T]], future: Future[Any]
    ) -> T | Borrowed:
        result: T | Borrowed | None = None
        try:
            found, wait = self._look(key, ref, None), FIRST_POLL
            while isinstance(found, Waiting):
                await self.clock.asleep(wait)
                found, wait = self._look(key, ref, found.holder), min(wait * 2, LAST_POLL)
            result = await self._acalled(key, found, call) if isinstance(found, Claim) else found
            return result
        finally:
            self.flights.finish(key, future, self._shared(result, ref))

    def _called(self, key: str, claim: Claim, call: Callable[[], T]) -> T:
        try:
            return call()
        finally:
            self.claims.release(key, claim)

    async def _acalled(self, key: str, claim: Claim, call: Callable[[], Awaitable[T]]) -> T:
        try:
            return await call()
        finally:
            self.claims.release(key, claim)

    def _look(self, key: str, ref: str, seen: Claim | None) -> Claim | Borrowed | Waiting:
        """One look across processes: the answer, our new claim, or wait (another process asks).

        ``seen`` is the claim the previous look waited on: whose answer a found one is."""
        current = self.claims.holder(key)
        holder = current or seen
        if (answer := self.claims.get(key)) is not None:
            return Borrowed(answer, holder.ref if holder else None)
        now = self.clock.wall()
        if holder is not None and holder.expires > now and _other(holder.owner):
            return Waiting(holder)
        mine = Claim(owner(), ref, now + self.patience)
        if not self.claims.claim(key, mine, replacing=current):
            return Waiting(holder)  # another waiter took it first
        if (answer := self.claims.get(key)) is not None:  # answered between our two looks
            self.claims.release(key, mine)
            return Borrowed(answer, holder.ref if holder else None)
        return mine

    def _shared(self, result: T | Borrowed | None, ref: str) -> Borrowed | None:
        """What this process's waiters take: the leader's answer, or None (one of them tries next)."""
        if result is None or isinstance(result, Borrowed):
            return result
        return Borrowed(self.answer_of(result), ref)
