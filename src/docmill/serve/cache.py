"""Memoised journal reads, so that polling pages cannot keep a busy machine's CPU on aggregate queries.

A summary of a million-row journal is a full scan (about 2.3 ms per 1,000 rows on the 2-core
machine, ``benchmarks/bench_serve.py``). Every open page asks for it each second, and so does a
Prometheus scrape. ``Throttle`` returns the previous answer while the journal has not changed, and
while it is changing recomputes at most every ``max(min_age, factor × the last computation's
duration)``, so the dashboard spends at most about ``1 / factor`` of one core on those reads.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any, TypeVar

from docmill.clock import SYSTEM_CLOCK, Clock

T = TypeVar("T")


@dataclass(slots=True)
class _Entry:
    value: Any
    version: Hashable
    computed: float  # monotonic seconds when the value was computed
    cost: float  # seconds the computation took


class Throttle:
    """A memo keyed by ``key``, refreshed when ``version`` changes, but not too often. Not thread-safe:
    the dashboard calls it only from the journal's thread."""

    def __init__(
        self,
        *,
        min_age: float = 1.0,
        factor: float = 4.0,
        max_entries: int = 128,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.min_age = min_age
        self.factor = factor
        self.max_entries = max_entries  # keys include filters typed into the page: keep the recent ones
        self.clock = clock
        self._entries: OrderedDict[Hashable, _Entry] = OrderedDict()

    def get(self, key: Hashable, version: Hashable, compute: Callable[[], T]) -> T:
        """The memoised ``compute()``; recomputed once ``version`` changed and the entry is old enough."""
        now = self.clock.monotonic()
        entry = self._entries.get(key)
        if entry is not None and (entry.version == version or now - entry.computed < self._age(entry)):
            self._entries.move_to_end(key)
            value: T = entry.value
            return value
        value = compute()
        done = self.clock.monotonic()
        self._entries[key] = _Entry(value, version, done, done - now)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
        return value

    def _age(self, entry: _Entry) -> float:
        return max(self.min_age, self.factor * entry.cost)
