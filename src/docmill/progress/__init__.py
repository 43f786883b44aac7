"""Progress reporters: what a person watching a run sees.

* ``RichReporter``: a live bar on a terminal (docs/s, MB/s, ETA, ok/failed, spend) and a summary table.
* ``LogReporter``: one plain line every ``every`` seconds (logs, CI, pipes) and a plain summary.
* ``NullReporter``: nothing (library use, tests).

``make_reporter("auto")`` picks Rich on a terminal and log lines otherwise. Rates and the ETA come from
``Tally``, which reads an injected clock, so they are tested without sleeping.
"""

from __future__ import annotations

import sys
from typing import Protocol, TextIO

from docmill.clock import SYSTEM_CLOCK, Clock
from docmill.metrics import RunStats
from docmill.outcome import Outcome
from docmill.progress.log import LogReporter
from docmill.progress.tally import Tally, format_seconds, summary_lines


class Reporter(Protocol):
    """Told about a run as it goes; must be cheap (called once per document, in the parent)."""

    def start(self, total: int | None) -> None: ...
    def set_total(self, total: int) -> None: ...
    def skipped(self, n: int) -> None: ...
    def update(self, outcome: Outcome) -> None: ...
    def message(self, text: str) -> None: ...
    def finish(self, stats: RunStats) -> None: ...


class NullReporter:
    """Reports nothing."""

    def start(self, total: int | None) -> None: ...
    def set_total(self, total: int) -> None: ...
    def skipped(self, n: int) -> None: ...
    def update(self, outcome: Outcome) -> None: ...
    def message(self, text: str) -> None: ...
    def finish(self, stats: RunStats) -> None: ...


def make_reporter(
    kind: str = "auto", *, stream: TextIO | None = None, clock: Clock = SYSTEM_CLOCK
) -> Reporter:
    """``auto``: Rich on a terminal, log lines otherwise; ``rich``, ``log`` or ``none`` to force one."""
    stream = stream or sys.stderr
    if kind == "auto":
        kind = "rich" if stream.isatty() else "log"
    if kind == "none":
        return NullReporter()
    if kind == "rich":
        from docmill.progress.terminal import RichReporter

        return RichReporter(stream=stream, clock=clock)
    return LogReporter(stream, clock=clock)


__all__ = [
    "LogReporter",
    "NullReporter",
    "Reporter",
    "Tally",
    "format_seconds",
    "make_reporter",
    "summary_lines",
]
