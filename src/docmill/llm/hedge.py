"""Hedged calls at the tail of a run: a call outstanding too long gets a twin; the first answer wins.

While the rate limit binds, every request the limits admit is one a waiting document could have
used, and a slow or hung call costs no wall time: other documents fill the pace. At the end of a
run it is the other way round: the queue is drained, the limits have requests to spare, and one
hung call holds up the whole run until its timeout. As in "The Tail at Scale" (Dean & Barroso),
a call still outstanding ``quantile`` of the recent latencies after it was sent (p95 by default,
``LatencyTracker``) is sent a second time, but only when the limits have a request to spare at
that moment (nobody waits for it: the rate no longer binds). The first reply wins and the other
call is cancelled. One twin is out at a time, two at most (the second when the first failed
while the call was still out). A retry (the document's call failed before) is due for its twin at
once (``pair_retries``), still only when the limits have room.

Both requests are counted (``Tally``): the winner's real usage; the loser, cut off, one request
and its prompt's tokens (a provider may bill work it started); a twin that failed while the other
was still out, as the failure it was. When both fail, the last error goes to the retry owner
(``docmill.llm.attempts``), so hedging adds no retries of its own. Time is injected (``clock``):
the decision (``next_look``) is pure and the race is driven by ``clock.asleep``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from docmill.clock import SYSTEM_CLOCK, Clock
from docmill.errors import RetryableError
from docmill.limits.provider import ProviderLimits
from docmill.llm.latency import LatencyTracker

DEFAULT_QUANTILE = 0.95
MAX_TWINS = 2  # per call: a second one only if the first twin failed while the call was still out
FLOOR = 1.0  # seconds a call is out at least before its twin is due (hedging fast calls buys nothing)
POLL = 0.25  # seconds between looks while a call is due for a twin but the limits have none to spare

Sent = Callable[[float], None]  # told the clock.monotonic() time a call went on the wire


R = TypeVar("R")


class Ledger(Protocol):
    """Where the attempts of one document are counted (``docmill.llm.attempts.Tally``)."""

    failures: int  # attempts of this document that failed so far

    def add(self, reply: Any) -> None: ...
    def failed(self, error: BaseException) -> None: ...
    def cancelled(self) -> None: ...


def next_look(sent: float | None, now: float, after: float | None, room: bool, poll: float = POLL) -> float:
    """Seconds until a call should be looked at again; 0: send its twin now.

    ``sent``: when the call went out (None: still waiting for the limits); ``after``: how long it
    may be out before a twin is due (None: too few replies to tell); ``room``: the limits have a
    request to spare now.
    """
    if sent is None or after is None:
        return poll
    due = sent + after - now
    if due > 0:
        return due
    return 0.0 if room else poll


@dataclass(slots=True)
class Hedger:
    """Races a call against its twin; one per client. ``quantile`` 0 never hedges."""

    latency: LatencyTracker
    limits: ProviderLimits
    quantile: float = DEFAULT_QUANTILE
    poll: float = POLL
    clock: Clock = SYSTEM_CLOCK
    pair_retries: bool = True  # a retry goes out with its twin at once when the limits have room
    floor: float = FLOOR  # never twin a call out for less: a stalled 20 ms call is not worth a request
    sent: int = field(default=0, init=False)  # twins sent
    won: int = field(default=0, init=False)  # twins that answered first

    def after(self, ledger: Ledger | None = None) -> float | None:
        """How long a call may be out before its twin is due (None: never, or not known yet).

        A retry (``ledger`` counts a failure) is due at once with ``pair_retries``: at the tail
        each of its failures costs a whole latency plus a backoff, and two tries fail together
        far less often (1.4 % instead of 12 % at 12 % faults).
        """
        if self.quantile <= 0:
            return None
        if self.pair_retries and ledger is not None and ledger.failures:
            return 0.0
        slow = self.latency.percentile(self.quantile)
        return None if slow is None else max(slow, self.floor)

    def room(self) -> bool:
        """The limits have a whole burst of requests unused (and tokens to spare): nobody has been
        waiting for them for a while, so the rate no longer binds and a twin delays no one."""
        stats = self.limits.statistics()
        requests = stats.requests
        return requests.level >= max(1.0, requests.capacity) and stats.tokens.level > 0

    async def first_reply(self, call: Callable[..., Awaitable[R]], ledger: Ledger) -> R:
        """``call(sent=...)`` once, and a twin if it stays out too long; the first reply."""
        if self.quantile <= 0:
            return await call(sent=None)
        race: _Race[R] = _Race(self, ledger)
        try:
            return await race.run(call)
        finally:
            await race.cancel_all()


@dataclass(slots=True)
class _Race(Generic[R]):
    hedger: Hedger
    ledger: Ledger
    calls: dict[asyncio.Future[R], list[float]] = field(default_factory=dict)  # call → [sent at]
    first: asyncio.Future[R] | None = None
    twins: int = 0

    async def run(self, call: Callable[..., Awaitable[R]]) -> R:
        self.first = self._start(call)
        while True:
            done = await self._wait(self._look())
            if not done and self._look() == 0:
                self._start(call)
                self.twins += 1
                self.hedger.sent += 1
            for task in done:
                reply = self._settle(task)
                if reply is not None:
                    return reply

    def _start(self, call: Callable[..., Awaitable[R]]) -> asyncio.Future[R]:
        sent: list[float] = []
        task = asyncio.ensure_future(call(sent=sent.append))
        self.calls[task] = sent
        return task

    def _look(self) -> float | None:
        """Seconds to the next look; None while two calls are out (then only replies matter)."""
        if len(self.calls) != 1 or self.twins >= MAX_TWINS:
            return None
        h = self.hedger
        sent = next(iter(self.calls.values()))
        room = bool(sent) and h.room()
        after = h.after(self.ledger)
        return next_look(sent[0] if sent else None, h.clock.monotonic(), after, room, h.poll)

    async def _wait(self, look: float | None) -> list[asyncio.Future[R]]:
        """The calls that ended, or none when ``look`` seconds passed first."""
        timer = asyncio.ensure_future(self.hedger.clock.asleep(look)) if look is not None else None
        waiting: set[asyncio.Future[Any]] = {*self.calls, *([timer] if timer else [])}
        try:
            done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if timer is not None:
                timer.cancel()
        return [task for task in self.calls if task in done]

    def _settle(self, task: asyncio.Future[R]) -> R | None:
        """A call ended: its reply wins; a retryable error is counted while the other call is still
        out, and raised when it was the last; any other (the run stops, the key is refused) at once.
        """
        del self.calls[task]
        error = task.exception()
        if error is None:
            self.hedger.won += task is not self.first
            return task.result()
        if not self.calls or not isinstance(error, RetryableError):
            raise error
        self.ledger.failed(error)
        return None

    async def cancel_all(self) -> None:
        """Cut off the calls still out (the losers): those that reached the provider are counted,
        and one that ended beside the winner counts as what it was."""
        for task, sent in self.calls.items():
            if task.done() and not task.cancelled():
                error = task.exception()
                self.ledger.failed(error) if error is not None else self.ledger.add(task.result())
            elif task.cancel() and sent:
                self.ledger.cancelled()
        await asyncio.gather(*self.calls, return_exceptions=True)
        self.calls.clear()
