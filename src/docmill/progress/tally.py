"""``Tally`` (counts, rates, ETA from an injected clock) and the plain summary every reporter prints."""

from __future__ import annotations

from docmill.clock import SYSTEM_CLOCK, Clock
from docmill.metrics import RunStats
from docmill.outcome import Outcome


class Tally:
    """Running counts, rates and ETA of the documents processed in this run."""

    def __init__(self, clock: Clock = SYSTEM_CLOCK) -> None:
        self.clock = clock
        self.started = clock.monotonic()
        self.total: int | None = None
        self.done = self.ok = self.failed = self.skip = self.bytes = self.pages = 0
        self.cost = 0.0

    def add(self, outcome: Outcome) -> None:
        self.done += 1
        self.bytes += outcome.ref.size or 0
        if outcome.status.is_success:
            self.ok += 1
        else:
            self.failed += 1
        result = outcome.result or {}
        self.cost += float(result.get("cost") or 0.0)
        pages = result.get("pages")
        self.pages += pages if isinstance(pages, int) else 0  # OCR work is counted in pages

    @property
    def elapsed(self) -> float:
        return max(0.0, self.clock.monotonic() - self.started)

    @property
    def docs_per_second(self) -> float:
        return self.done / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def mb_per_second(self) -> float:
        return self.bytes / 1e6 / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def pages_per_second(self) -> float:
        return self.pages / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def remaining(self) -> int | None:
        return None if self.total is None else max(0, self.total - self.skip - self.done)

    @property
    def eta(self) -> float | None:
        """Seconds left at the rate so far; None until the total and a rate are known."""
        rate, left = self.docs_per_second, self.remaining
        if left is None or rate <= 0:
            return None
        return left / rate

    def line(self) -> str:
        """``340/1200 (28%) · 41.2 docs/s · 0.8 MB/s · ok 330 · failed 10 · ETA 21s``."""
        position = self.done + self.skip
        total = f"/{self.total} ({100 * position / self.total:.0f}%)" if self.total else ""
        parts = [f"{position}{total}", f"{self.docs_per_second:.1f} docs/s", f"{self.mb_per_second:.2f} MB/s"]
        if self.pages:
            parts.insert(2, f"{self.pages_per_second:.1f} pages/s")
        parts += [f"ok {self.ok}", f"failed {self.failed}"]
        if self.skip:
            parts.append(f"already done {self.skip}")
        if self.cost:
            parts.append(f"spent ${self.cost:.4f}")
        eta = self.eta
        if eta is not None:
            parts.append(f"ETA {format_seconds(eta)}")
        return " · ".join(parts)


def format_seconds(seconds: float) -> str:
    """``42s``, ``3m05s``, ``2h03m``."""
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def pages_rate(stats: RunStats) -> str:
    """``"12,345 pages, 3.21 pages/s, "`` once documents with pages were processed, else nothing."""
    return f"{stats.pages:,} pages, {stats.pages_per_second:.2f} pages/s, " if stats.pages else ""


def summary_lines(stats: RunStats) -> list[str]:
    """The end-of-run summary as plain lines."""
    statuses = ", ".join(f"{s} {n}" for s, n in sorted(stats.by_status.items())) or "nothing to do"
    lines = [
        f"processed {stats.done} documents in {format_seconds(stats.wall_seconds)} "
        f"({stats.docs_per_second:.1f} docs/s, {pages_rate(stats)}{stats.bytes_per_second / 1e6:.2f} MB/s); "
        f"{statuses}",
    ]
    if stats.skipped:
        lines.append(f"{stats.skipped} already done by an earlier run (not processed again)")
    if stats.by_label:
        lines.append("labels: " + ", ".join(f"{k} {v}" for k, v in sorted(stats.by_label.items())))
    if stats.cost or stats.llm:
        usage = ", ".join(f"{k} {v}" for k, v in sorted(stats.llm.items()))
        lines.append(f"spent ${stats.cost:.4f}" + (f" ({usage})" if usage else ""))
    return lines
