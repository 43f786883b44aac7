"""AIMD concurrency: how many requests to keep in flight, learned from the provider's answers.

The decision core, :class:`AIMD`, is a pure function of what happened (latency, throttled or
not) and the clock, shaped like TCP's congestion window:

* **slow start**: below ``ssthresh`` the limit grows by one per success, doubling per round trip;
  ``probe()`` starts it at one request (nothing is known about the provider yet);
* **congestion avoidance**: above it, by one per window of successes (additive increase);
* **a 429** sets ``ssthresh`` to ``backoff`` × the limit (halves it) and the limit to
  ``minimum``: after any 429 the pool re-enters with ONE request, never all at once. Only a 429
  for a request sent after the last cut counts (the ones already on the wire answer the same
  decision), and at most one cut per ``cooldown`` seconds;
* **rising latency** (the provider is queueing us) cuts gently, by ``latency_backoff``, while the
  provider's limits are unknown; once the rate limiter paces the calls, slower replies need *more*
  calls in flight for the same rate (Little's law), and a cut would only slow the run down;
* **informed**: once the provider's limits are known (configured, or learned from its headers)
  the rate limiter paces the calls, so a success jumps straight to ``ssthresh`` instead of
  doubling towards it.

:class:`ConcurrencyGate` enforces the limit for threads (``hold()``) and coroutines (``ahold()``),
twice: on entry, and again when the caller is about to send (``Slot.send()``/``asend()``) after its
wait in the rate limiter, so that callers already inside when a 429 cut the limit go one at a
time. Every wait ends early, with RunStoppedError, when the run stops (``limits.interrupt``).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

from docmill.clock import SYSTEM_CLOCK, Clock
from docmill.errors import ConfigError
from docmill.limits import interrupt

_POLL = 0.1  # seconds between two looks at a thread gate (interrupts are checked at each)


@dataclass(slots=True)
class AIMD:
    """Slow start, additive increase, multiplicative decrease of a concurrency limit."""

    limit: float = 8.0
    minimum: int = 1
    maximum: int = 256
    backoff: float = 0.5  # factor applied to ssthresh on a 429
    latency_backoff: float = 0.9  # gentler factor applied when latency rises
    latency_tolerance: float = 2.0  # "rising" = smoothed latency above this multiple of the best
    cooldown: float = 1.0  # seconds between two cuts
    drift: float = 0.001  # per result, how fast the latency floor forgets
    ssthresh: float = 0.0  # slow start below this limit (0: none, additive increase from the start)
    _best: float = float("inf")
    _smoothed: float = 0.0
    _last_cut: float = float("-inf")

    def __post_init__(self) -> None:
        if not 1 <= self.minimum <= self.limit <= self.maximum:
            raise ConfigError(
                f"need 1 <= minimum <= limit <= maximum, got {self.minimum}, {self.limit}, {self.maximum}"
            )
        if not 0 < self.backoff < 1 or not 0 < self.latency_backoff <= 1:
            raise ConfigError("backoff factors must be within (0, 1)")

    @property
    def current(self) -> int:
        return int(self.limit)

    def probe(self) -> None:
        """Nothing is known about the provider: one request first, then slow start to the limit."""
        self.ssthresh = max(self.ssthresh, self.limit)
        self.limit = float(self.minimum)

    def on_result(self, latency: float, *, throttled: bool, now: float, informed: bool = False) -> int:
        """Update from one finished request (sent ``latency`` seconds ago); return the new limit."""
        if throttled:
            return self._throttled(now - latency, now)
        self._smoothed = latency if self._smoothed == 0 else 0.8 * self._smoothed + 0.2 * latency
        # The floor is the best *smoothed* latency (one lucky sample is no baseline); it drifts up
        # slowly so that a provider that became slower for everyone stops looking like queueing.
        self._best = min(self._best * (1 + self.drift), self._smoothed)
        if not informed and self._smoothed > self._best * self.latency_tolerance:
            return self._cut(self.latency_backoff, now)
        if self.limit < self.ssthresh:
            self.limit = min(self.ssthresh, self.limit + 1.0, float(self.maximum))
            if informed:
                self.limit = min(self.ssthresh, float(self.maximum))
        else:
            self.limit = min(float(self.maximum), self.limit + 1.0 / max(1.0, self.limit))
        return self.current

    def _throttled(self, sent: float, now: float) -> int:
        """A 429: halve the threshold, re-enter with one request (once per decision, see above)."""
        if sent < self._last_cut or now - self._last_cut < self.cooldown:
            return self.current
        self.ssthresh = max(float(self.minimum), self.limit * self.backoff)
        self.limit = float(self.minimum)
        self._last_cut = now
        self._smoothed = 0.0
        return self.current

    def _cut(self, factor: float, now: float) -> int:
        if now - self._last_cut >= self.cooldown:
            self.limit = max(float(self.minimum), self.limit * factor)
            self.ssthresh = min(self.ssthresh, self.limit)
            self._last_cut = now
            self._smoothed = 0.0  # judge the new level by its own latencies
        return self.current


@dataclass(eq=False, slots=True)
class Slot:
    """One caller's place in the gate: ``limit`` is the limit in force when it entered."""

    gate: ConcurrencyGate
    limit: int
    sending: bool = False

    def send(self) -> bool:
        """Block until this call may go on the wire (the limit may have dropped since entry).

        Returns whether it had to wait: then a 429 came meanwhile, and the caller should check
        the rate limiter's pause again (``ProviderLimits.confirm``).
        """
        with self.gate._cond:
            if self._send_ready():
                return False
        self.gate._wait(self._send_ready)
        return True

    async def asend(self) -> bool:
        with self.gate._cond:
            if self._send_ready():
                return False
        await self.gate._await(self._send_ready)
        return True

    def _send_ready(self) -> bool:
        gate = self.gate
        if self.sending:
            return True
        if gate.sending >= gate.controller.current:
            return False
        gate.sending += 1
        self.sending = True
        return True


class ConcurrencyGate:
    """Admits at most ``controller.current`` holders at a time; the limit moves as results arrive."""

    def __init__(self, controller: AIMD | None = None, *, clock: Clock = SYSTEM_CLOCK) -> None:
        self.controller = controller or AIMD()
        self.clock = clock
        self.in_flight = 0  # holders
        self.sending = 0  # holders past their wait in the rate limiter, on the wire
        self.peak = 0
        self._cond = threading.Condition()

    def _enter(self) -> bool:
        """Take a place if the limit allows (caller holds the condition)."""
        if self.in_flight >= self.controller.current:
            return False
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        return True

    def _leave(self, slot: Slot) -> None:
        with self._cond:
            self.in_flight -= 1
            if slot.sending:
                self.sending -= 1
            self._cond.notify_all()

    def _wait(self, ready: object) -> None:
        """Block until ``ready()`` (called under the condition) is true; interruptible."""
        with self._cond:
            while not ready():  # type: ignore[operator]
                interrupt.check()
                self._cond.wait(_POLL)
            interrupt.check()

    async def _await(self, ready: object) -> None:
        """Await ``ready()`` (polling lightly: the gate is shared with threads); interruptible."""
        delay = 0.005
        while True:
            with self._cond:
                if ready():  # type: ignore[operator]
                    return
            await interrupt.asleep(self.clock, delay)
            delay = min(_POLL, delay * 2)

    @contextlib.contextmanager
    def hold(self) -> Iterator[Slot]:
        """Block until a place is free; yield the caller's Slot (``slot.send()`` before sending)."""
        self._wait(self._enter)
        slot = Slot(self, self.controller.current)
        try:
            yield slot
        finally:
            self._leave(slot)

    @contextlib.asynccontextmanager
    async def ahold(self) -> AsyncIterator[Slot]:
        """Await a free place; yield the caller's Slot (``await slot.asend()`` before sending)."""
        await self._await(self._enter)
        slot = Slot(self, self.controller.current)
        try:
            yield slot
        finally:
            self._leave(slot)

    def probe(self) -> None:
        """Start with one request in flight (nothing is known about the provider yet)."""
        with self._cond:
            self.controller.probe()

    def record(self, latency: float, *, throttled: bool, informed: bool = False) -> int:
        """Feed one result to the controller and wake waiters if the limit grew."""
        with self._cond:
            limit = self.controller.on_result(
                latency, throttled=throttled, now=self.clock.monotonic(), informed=informed
            )
            self._cond.notify_all()
            return limit

    def __getstate__(self) -> dict[str, object]:
        state = {name: getattr(self, name) for name in ("controller", "clock")}
        state.update(_cond=None, in_flight=0, sending=0, peak=0)
        return state

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__dict__.update(state)
        self._cond = threading.Condition()
