"""Progress, ETA, stalled runs, JSON hygiene and Prometheus escaping, as pure functions."""

from __future__ import annotations

import json
import math
from typing import Any

from docmill.journal.base import RunRecord, Summary
from docmill.serve import prometheus, views

NOW = 1_700_000_100.0


def _run(
    state: str = "running", *, heartbeat: float | None = NOW - 1, total: int | None = 1000, **stats: Any
) -> RunRecord:
    finished = NOW if state != "running" else None
    return RunRecord(1, "/src", "fp", "threads", 2, total, state, NOW - 100, finished, heartbeat, {}, stats)


def _summary(total: int) -> Summary:
    return Summary(total, {"ok": total}, {}, NOW - 100, NOW)


def test_eta_is_remaining_over_the_runs_rate() -> None:
    progress = views.progress(
        _run(done=200, docs_per_second=4.0), _summary(200), {"done": 200, "docs_per_second": 4.0}, now=NOW
    )
    assert progress["fraction"] == 0.2
    assert progress["eta_seconds"] == 800 / 4.0
    assert progress["elapsed_seconds"] == 100


def test_a_fresher_heartbeat_beats_a_memoised_summary() -> None:
    stats = {"done": 250, "skipped": 50}
    assert views.progress(_run(), _summary(200), stats, now=NOW)["done"] == 300
    assert views.progress(_run(), _summary(400), stats, now=NOW)["done"] == 400


def test_a_silent_running_run_is_stalled() -> None:
    assert views.run_json(_run(heartbeat=NOW - 60), None, now=NOW)["state"] == "stalled"
    assert views.run_json(_run(heartbeat=NOW - 2), None, now=NOW)["state"] == "running"


def test_finished_runs_have_no_eta_and_unknown_totals_no_fraction() -> None:
    done = views.progress(_run("done"), _summary(1000), {"done": 1000}, now=NOW)
    assert (done["fraction"], done["eta_seconds"]) == (1.0, None)
    unknown = views.progress(_run(total=None), _summary(10), {"done": 10}, now=NOW)
    assert (unknown["total"], unknown["fraction"], unknown["eta_seconds"]) == (None, None, None)


def test_stats_total_is_used_when_the_run_has_none() -> None:
    assert views.progress(_run(total=None), None, {"done": 5, "total": 50}, now=NOW)["total"] == 50


def test_garbage_in_stats_does_not_break_progress() -> None:
    stats = {"done": "many", "docs_per_second": math.nan, "total": -3}
    progress = views.progress(_run(total=None), None, stats, now=NOW)
    assert progress["total"] is None and progress["docs_per_second"] == 0.0


def test_clean_json_drops_non_finite_numbers() -> None:
    cleaned = views.clean_json({"a": [math.inf, 1.5, {"b": math.nan}]})
    assert json.dumps(cleaned, allow_nan=False) == '{"a": [null, 1.5, {"b": null}]}'


def test_prometheus_escapes_label_values() -> None:
    run = RunRecord(7, "/s", "fp", 'we"ird\\name\n', 1, 10, "done", NOW - 10, NOW, NOW, {}, {"done": 10})
    text = prometheus.render([(run, _summary(10))], NOW)
    assert 'strategy="we\\"ird\\\\name\\n"' in text
    assert 'docmill_run_documents{run="7",status="ok"} 10.0' in text
    families = [line.split()[2] for line in text.splitlines() if line.startswith("# TYPE")]
    assert len(families) == len(set(families))


def test_pages_and_pages_per_second_once_the_run_has_met_pages() -> None:
    stats = {"done": 10, "pages": 40, "pages_per_second": 0.4}
    progress = views.progress(_run(), _summary(10), stats, now=NOW)
    assert (progress["pages"], progress["pages_per_second"]) == (40, 0.4)
    assert views.progress(_run(), _summary(10), {"done": 10, "pages": 50}, now=NOW)["pages_per_second"] == 0.5
    none = views.progress(_run(), _summary(10), {"done": 10, "pages": 0}, now=NOW)
    assert (none["pages"], none["pages_per_second"]) == (None, None)
    summary = views.summary_json(Summary(10, {"ok": 10}, {}, NOW - 100, NOW, pages=25))
    assert (summary["pages"], summary["pages_per_second"]) == (25, 0.25)
    text = prometheus.render([(_run(done=10, pages=40), _summary(10))], NOW)
    assert 'docmill_run_pages_per_second{run="1"} 0.4' in text
