"""``LogReporter``: one plain progress line every few seconds, for pipes, logs and CI."""

from __future__ import annotations

import sys
from typing import TextIO

from docmill.clock import SYSTEM_CLOCK, Clock
from docmill.metrics import RunStats
from docmill.outcome import Outcome
from docmill.progress.tally import Tally, summary_lines


class LogReporter:
    """A plain progress line every ``every`` seconds, then a summary; for pipes and logs."""

    def __init__(
        self, stream: TextIO | None = None, *, every: float = 10.0, clock: Clock = SYSTEM_CLOCK
    ) -> None:
        self.stream = stream or sys.stderr
        self.every = every
        self.clock = clock
        self.tally = Tally(clock)
        self._last = clock.monotonic()

    def start(self, total: int | None) -> None:
        self.tally = Tally(self.clock)
        self.tally.total = total
        self._last = self.clock.monotonic()

    def set_total(self, total: int) -> None:
        self.tally.total = total

    def skipped(self, n: int) -> None:
        self.tally.skip += n

    def update(self, outcome: Outcome) -> None:
        self.tally.add(outcome)
        now = self.clock.monotonic()
        if now - self._last >= self.every:
            self._last = now
            self._print(f"docmill: {self.tally.line()}")

    def message(self, text: str) -> None:
        self._print(f"docmill: {text}")

    def finish(self, stats: RunStats) -> None:
        for line in summary_lines(stats):
            self._print(f"docmill: {line}")

    def _print(self, text: str) -> None:
        print(text, file=self.stream, flush=True)
