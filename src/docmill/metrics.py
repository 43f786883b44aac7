"""``RunStats``: what a run did, mergeable with ``+``; ``Histogram`` of per-document seconds.

The runner folds every recorded ``Outcome`` into one ``RunStats`` (``add``); the heartbeat written to
the journal and the final summary are ``as_dict()`` snapshots of it.
"""

from __future__ import annotations

import bisect
import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from docmill.outcome import Outcome, Status

# Upper bounds (seconds) of the latency buckets: 1 ms … ~17 min, doubling.
_BOUNDS = tuple(0.001 * 2**i for i in range(21))
_LLM_KEYS = ("tokens_in", "tokens_out", "requests")  # counts, summed; concurrency is a level


@dataclass(slots=True)
class Histogram:
    """Counts of values in doubling buckets; quantiles are bucket upper bounds (within 2x)."""

    counts: list[int] = field(default_factory=lambda: [0] * (len(_BOUNDS) + 1))

    def add(self, seconds: float) -> None:
        self.counts[bisect.bisect_left(_BOUNDS, seconds)] += 1

    def quantile(self, q: float) -> float | None:
        """Upper bound of the bucket holding the ``q`` quantile, or None when empty."""
        total = sum(self.counts)
        if not total:
            return None
        rank, seen = q * total, 0
        for i, n in enumerate(self.counts):
            seen += n
            if seen >= rank and n:
                return _BOUNDS[i] if i < len(_BOUNDS) else float("inf")
        return None  # pragma: no cover - unreachable: seen reaches total

    def __add__(self, other: Histogram) -> Histogram:
        return Histogram([a + b for a, b in zip(self.counts, other.counts, strict=True)])


@dataclass(slots=True)
class RunStats:
    """Counts by status, bytes read, time, and LLM usage of a run (or part of one)."""

    by_status: dict[str, int] = field(default_factory=dict)
    by_label: dict[str, int] = field(default_factory=dict)
    skipped: int = 0  # already recorded by an earlier run: not processed again
    bytes: int = 0
    wall_seconds: float = 0.0
    cost: float = 0.0
    llm: dict[str, int] = field(default_factory=dict)
    latency: Histogram = field(default_factory=Histogram)
    pages: int = 0  # PDF pages and image frames (OCR work is counted in pages)

    def add(self, outcome: Outcome) -> None:
        """Fold one recorded outcome in."""
        status = outcome.status.value
        self.by_status[status] = self.by_status.get(status, 0) + 1
        self.bytes += outcome.ref.size or 0
        self.latency.add(outcome.timings.seconds)
        result = outcome.result or {}
        pages = result.get("pages")
        self.pages += pages if isinstance(pages, int) and not isinstance(pages, bool) else 0
        if outcome.label is not None and outcome.status.is_success:
            self.by_label[str(outcome.label)] = self.by_label.get(str(outcome.label), 0) + 1
        self._add_spend(result)  # a duplicate carries its own spend, not its original's
        self._note_concurrency(result.get("concurrency"))

    def _note_concurrency(self, value: Any) -> None:
        """The LLM concurrency limit in force when this document was classified: latest and most seen
        (a cached answer, which made no call, reports 0 and is left out)."""
        if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
            self.llm["concurrency"] = int(value)
            self.llm["max_concurrency"] = max(self.llm.get("max_concurrency", 0), int(value))

    def demote(self) -> None:
        """An ``ok`` document already folded in was re-recorded as a duplicate (its spend stays)."""
        self.by_status[Status.OK.value] -= 1
        self.by_status[Status.DUPLICATE.value] = self.by_status.get(Status.DUPLICATE.value, 0) + 1

    def _add_spend(self, result: Mapping[str, Any]) -> None:
        self.cost += _number(result.get("cost"))
        for key in _LLM_KEYS:
            if key in result:
                self.llm[key] = self.llm.get(key, 0) + int(_number(result[key]))
        if result.get("cached"):
            self.llm["cached"] = self.llm.get("cached", 0) + 1

    @property
    def done(self) -> int:
        """Documents recorded in this run."""
        return sum(self.by_status.values())

    @property
    def ok(self) -> int:
        return sum(n for s, n in self.by_status.items() if Status(s).is_success)

    @property
    def failed(self) -> int:
        return self.done - self.ok

    @property
    def docs_per_second(self) -> float:
        return self.done / self.wall_seconds if self.wall_seconds > 0 else 0.0

    @property
    def bytes_per_second(self) -> float:
        return self.bytes / self.wall_seconds if self.wall_seconds > 0 else 0.0

    @property
    def pages_per_second(self) -> float:
        return self.pages / self.wall_seconds if self.wall_seconds > 0 else 0.0

    def __add__(self, other: RunStats) -> RunStats:
        merged = dataclasses.replace(self, latency=self.latency + other.latency)
        merged.by_status = _merge(self.by_status, other.by_status)
        merged.by_label = _merge(self.by_label, other.by_label)
        merged.llm = _merge(self.llm, other.llm)
        for key, pick in (("concurrency", _latest), ("max_concurrency", max)):
            if key in self.llm or key in other.llm:  # levels, not counts: never summed
                merged.llm[key] = pick(self.llm.get(key, 0), other.llm.get(key, 0))
        merged.skipped += other.skipped
        merged.bytes += other.bytes
        merged.pages += other.pages
        merged.wall_seconds = max(self.wall_seconds, other.wall_seconds)
        merged.cost += other.cost
        return merged

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready snapshot (the journal heartbeat and ``status --json`` carry it)."""
        return {
            "done": self.done,
            "ok": self.ok,
            "failed": self.failed,
            "skipped": self.skipped,
            "by_status": dict(self.by_status),
            "by_label": dict(self.by_label),
            "bytes": self.bytes,
            "wall_seconds": round(self.wall_seconds, 3),
            "docs_per_second": round(self.docs_per_second, 3),
            "bytes_per_second": round(self.bytes_per_second, 1),
            "pages": self.pages,
            "pages_per_second": round(self.pages_per_second, 3),
            "cost": round(self.cost, 6),
            "llm": dict(self.llm),
            "p50_seconds": self.latency.quantile(0.5),
            "p95_seconds": self.latency.quantile(0.95),
        }


def _merge(a: Mapping[str, int], b: Mapping[str, int]) -> dict[str, int]:
    merged = dict(a)
    for key, n in b.items():
        merged[key] = merged.get(key, 0) + n
    return merged


def _latest(mine: int, theirs: int) -> int:
    return theirs or mine


def _number(value: Any) -> float:
    try:
        return float(value or 0)
    except (TypeError, ValueError):
        return 0.0
