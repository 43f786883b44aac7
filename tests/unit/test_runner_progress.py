"""Progress and metrics: rates and ETA from an injected clock, log lines, the Rich bar, RunStats merge."""

from __future__ import annotations

import io

from docmill.document import DocumentRef
from docmill.metrics import Histogram, RunStats
from docmill.outcome import ErrorInfo, Outcome, Status, Timings
from docmill.progress import LogReporter, NullReporter, Tally, format_seconds, make_reporter
from docmill.progress.terminal import RichReporter
from docmill.testing import FakeClock


def outcome(i: int, status: Status = Status.OK, cost: float = 0.0) -> Outcome:
    result = {"label": "x", "cost": cost, "tokens_in": 5} if status is Status.OK else None
    error = None if status is Status.OK else ErrorInfo("E", "m")
    return Outcome(
        DocumentRef(f"d{i}", "u", size=1_000_000), status, "s", result, error, timings=Timings(0, 0.2)
    )


def test_rates_and_eta_follow_the_clock() -> None:
    clock = FakeClock()
    tally = Tally(clock)
    tally.total = 300
    tally.skip = 50
    for i in range(100):
        tally.add(outcome(i))
    clock.advance(10.0)
    assert tally.docs_per_second == 10.0 and tally.mb_per_second == 10.0
    assert tally.remaining == 150 and tally.eta == 15.0
    assert "150/300 (50%)" in tally.line() and "ETA 15s" in tally.line()


def test_no_eta_without_a_total_or_a_rate() -> None:
    clock = FakeClock()
    tally = Tally(clock)
    assert tally.eta is None
    tally.total = 10
    assert tally.eta is None  # nothing done yet


def test_log_reporter_prints_every_period() -> None:
    clock, out = FakeClock(), io.StringIO()
    reporter = LogReporter(out, every=5.0, clock=clock)
    reporter.start(20)
    for i in range(20):
        clock.advance(1.0)
        reporter.update(outcome(i, Status.FAILED if i % 10 == 0 else Status.OK, cost=0.5))
    lines = out.getvalue().splitlines()
    assert len(lines) == 4 and all(line.startswith("docmill: ") for line in lines)
    assert "failed 2" in lines[-1] and "spent $" in lines[-1]
    stats = RunStats()
    for i in range(3):
        stats.add(outcome(i))
    reporter.finish(stats)
    assert "processed 3 documents" in out.getvalue()


def test_rich_reporter_draws_and_summarises() -> None:
    clock, out = FakeClock(), io.StringIO()
    reporter = RichReporter(stream=out, clock=clock)
    reporter.start(None)
    reporter.set_total(3)
    reporter.skipped(1)
    stats = RunStats()
    for i in range(2):
        clock.advance(1.0)
        reporter.update(outcome(i))
        stats.add(outcome(i))
    reporter.message("hello")
    reporter.finish(stats)
    text = out.getvalue()
    assert "hello" in text and "docmill run" in text and "label: x" in text


def test_make_reporter_picks_log_lines_off_a_terminal() -> None:
    assert isinstance(make_reporter("auto", stream=io.StringIO()), LogReporter)
    assert isinstance(make_reporter("none"), NullReporter)


def test_format_seconds() -> None:
    assert [format_seconds(s) for s in (4.2, 185, 7380)] == ["4s", "3m05s", "2h03m"]


def test_run_stats_count_spend_and_merge() -> None:
    a, b = RunStats(), RunStats()
    a.add(outcome(1, cost=0.25))
    a.add(outcome(2, Status.FAILED))
    b.add(outcome(3, cost=0.5))
    b.add(Outcome(DocumentRef("d4", "u"), Status.DUPLICATE, "s", {"label": "x", "cost": 0.125}))
    merged = a + b
    assert merged.by_status == {"ok": 2, "failed": 1, "duplicate": 1}
    assert merged.ok == 3 and merged.failed == 1 and merged.done == 4
    assert merged.cost == 0.875  # a duplicate carries what it itself spent (a copy paid in flight)
    assert merged.llm == {"tokens_in": 10} and merged.by_label == {"x": 3}
    assert a.done == 2  # operands untouched


def test_histogram_quantiles_within_a_factor_two() -> None:
    h = Histogram()
    for seconds in [0.01] * 90 + [1.0] * 10:
        h.add(seconds)
    p50, p95 = h.quantile(0.5), h.quantile(0.95)
    assert p50 is not None and 0.01 <= p50 < 0.02
    assert p95 is not None and 1.0 <= p95 < 2.1
    assert Histogram().quantile(0.5) is None


def test_llm_concurrency_is_the_latest_and_the_most_seen_never_summed() -> None:
    a, b = RunStats(), RunStats()
    for n, level in enumerate((4, 12, 6)):
        a.add(Outcome(DocumentRef(f"a{n}", "u"), Status.OK, "s", {"label": "x", "concurrency": level}))
    a.add(Outcome(DocumentRef("cached", "u"), Status.OK, "s", {"label": "x", "concurrency": 0}))
    assert (a.llm["concurrency"], a.llm["max_concurrency"]) == (6, 12)
    assert a.as_dict()["llm"]["max_concurrency"] == 12
    b.add(Outcome(DocumentRef("b", "u"), Status.OK, "s", {"label": "x", "concurrency": 3}))
    merged = a + b
    assert (merged.llm["concurrency"], merged.llm["max_concurrency"]) == (3, 12)
    assert "concurrency" not in RunStats().as_dict()["llm"]
