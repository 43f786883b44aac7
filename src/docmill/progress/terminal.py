"""``RichReporter``: the live progress bar and summary table on a terminal (rich is imported lazily)."""

from __future__ import annotations

from typing import TextIO

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn
from rich.table import Table

from docmill.clock import SYSTEM_CLOCK, Clock
from docmill.metrics import RunStats
from docmill.outcome import Outcome
from docmill.progress.tally import Tally, format_seconds, pages_rate

_REFRESH = 0.25  # seconds between redraws: smooth enough, and cheap at 10,000 docs/s


class RichReporter:
    """A bar with position, docs/s, MB/s, ok/failed, spend and ETA; a table when the run ends."""

    def __init__(self, *, stream: TextIO | None = None, clock: Clock = SYSTEM_CLOCK) -> None:
        self.console = Console(file=stream, stderr=stream is None)
        self.clock = clock
        self.tally = Tally(clock)
        self._progress = Progress(
            TextColumn("[bold]docmill[/]"),
            BarColumn(),
            TextColumn("{task.fields[line]}"),
            console=self.console,
            get_time=clock.monotonic,
            refresh_per_second=1 / _REFRESH,
            transient=False,
        )
        self._task: TaskID | None = None
        self._drawn = 0.0

    def start(self, total: int | None) -> None:
        self.tally = Tally(self.clock)
        self.tally.total = total
        self._task = self._progress.add_task("run", total=total, line="starting…")
        self._progress.start()

    def set_total(self, total: int) -> None:
        self.tally.total = total
        if self._task is not None:
            self._progress.update(self._task, total=total)

    def skipped(self, n: int) -> None:
        self.tally.skip += n
        self._draw(force=True)

    def update(self, outcome: Outcome) -> None:
        self.tally.add(outcome)
        self._draw()

    def _draw(self, *, force: bool = False) -> None:
        now = self.clock.monotonic()
        if self._task is None or (not force and now - self._drawn < _REFRESH):
            return
        self._drawn = now
        position = self.tally.done + self.tally.skip
        self._progress.update(self._task, completed=position, line=self.tally.line())

    def message(self, text: str) -> None:
        self._progress.console.print(f"docmill: {text}")

    def finish(self, stats: RunStats) -> None:
        self._draw(force=True)
        self._progress.stop()
        self.console.print(summary_table(stats))

    def __del__(self) -> None:
        self._progress.stop()


def summary_table(stats: RunStats) -> Table:
    """Counts by status and label, rates and spend, as a table."""
    table = Table(title="docmill run", show_header=True, header_style="bold")
    table.add_column("")
    table.add_column("documents", justify="right")
    for status, n in sorted(stats.by_status.items()):
        table.add_row(status, str(n))
    if stats.skipped:
        table.add_row("already done", str(stats.skipped))
    for label, n in sorted(stats.by_label.items()):
        table.add_row(f"label: {label}", str(n))
    rate = f"{stats.docs_per_second:.1f} docs/s, {pages_rate(stats)}{stats.bytes_per_second / 1e6:.2f} MB/s"
    table.add_row("time", f"{format_seconds(stats.wall_seconds)} ({rate})")
    if stats.cost or stats.llm:
        table.add_row("spend", f"${stats.cost:.4f}")
        for key, n in sorted(stats.llm.items()):
            table.add_row(f"llm {key}", str(n))
    return table
