"""Summaries: speedup against sequential, efficiency, spread, Amdahl fit, winners."""

from __future__ import annotations

import dataclasses
import math

import pytest

from docmill.bench.harness import BenchCase, BenchRow, MatrixSpec
from docmill.bench.report import recommended_workers, render, winners
from docmill.bench.summary import amdahl, cv, fit_serial_fraction, summarise
from docmill.errors import ConfigError


def row(strategy: str, workers: int, rate: float, *, repeat: int = 0, workload: str = "cpu") -> BenchRow:
    n = 100
    return BenchRow(
        strategy,
        workers,
        workload,
        10,
        "light",
        n,
        repeat,
        n / rate,
        n,
        0,
        rate,
        rate / 100,
        1.0,
        1.0,
        1.0,
        "50 50",
        40.0 + workers,
        2 + workers,
        1 + workers,
        10,
        5,
    )


@pytest.mark.parametrize("serial", [0.0, 0.05, 0.3, 1.0])
def test_fit_recovers_the_serial_fraction(serial: float) -> None:
    points = [(float(n), amdahl(n, serial)) for n in (1, 2, 4, 8)]
    assert fit_serial_fraction(points) == pytest.approx(serial, abs=0.002)


def test_fit_needs_a_point_beyond_one_worker() -> None:
    assert fit_serial_fraction([(1.0, 1.0)]) is None


def test_speedup_and_efficiency_are_against_sequential() -> None:
    rows = [
        row("sequential", 1, 10.0),
        row("sequential", 1, 12.0, repeat=1),
        row("processes", 2, 19.8),
        row("processes", 2, 22.0, repeat=1),
        row("processes", 4, 22.0),
    ]
    by_case = {(s.strategy, s.workers): s for s in summarise(rows, cores=2)}
    assert by_case[("sequential", 1)].speedup == 1.0
    assert by_case[("processes", 2)].speedup == pytest.approx(20.9 / 11.0, rel=1e-3)
    assert by_case[("processes", 4)].efficiency == pytest.approx(2.0 / 4, rel=1e-3)
    assert by_case[("sequential", 1)].docs_per_s_cv == pytest.approx(cv([10.0, 12.0]), abs=1e-4)
    assert by_case[("processes", 2)].runs == 2


def test_failed_strategy_rows_are_left_out() -> None:
    broken = dataclasses.replace(
        row("processes", 2, 1.0), error="WorkerCrashedError: killed", docs_per_s=math.nan
    )
    assert [s.strategy for s in summarise([row("sequential", 1, 10.0), broken], cores=2)] == ["sequential"]


def test_winners_ignore_peers_and_recommendations_take_the_fewest_workers() -> None:
    rows = [
        row("sequential", 1, 10.0),
        row("peer:pool", 2, 30.0),
        row("queue", 2, 19.0),
        row("queue", 4, 19.5),
        row("threads", 2, 9.0),
    ]
    summaries = summarise(rows, cores=2)
    assert winners(summaries)[("cpu", 10, "light")].strategy == "queue"
    assert recommended_workers(summaries)[("queue", "cpu")] == 2


def test_matrix_brackets_every_repetition_with_the_sequential_baseline() -> None:
    spec = MatrixSpec(
        strategies=("threads",),
        workers=(1, 2),
        sizes_kb=(10,),
        complexities=("light",),
        workloads=("io",),
        repeat=2,
    )
    cases = spec.cases(("io", 10, "light"), 20)
    assert [(c.strategy, c.workers, c.repeat) for c in cases] == [
        ("sequential", 1, 0),
        ("threads", 1, 0),
        ("threads", 2, 0),
        ("sequential", 1, 0),
        ("sequential", 1, 1),
        ("threads", 1, 1),
        ("threads", 2, 1),
        ("sequential", 1, 1),
    ]
    assert spec.n_cases() == 8
    alone = MatrixSpec(strategies=("sequential",), workers=(1, 2), sizes_kb=(10,), complexities=("light",))
    assert len(alone.cases(("cpu", 10, "light"), 5)) == 3  # once per repetition


@pytest.mark.parametrize(
    "kwargs",
    [
        {"strategies": ()},
        {"strategies": ("x",), "repeat": 0},
        {"strategies": ("x",), "workloads": ("gpu",)},
        {"strategies": ("x",), "complexities": ("extreme",)},
        {"strategies": ("x",), "workers": (0,)},
    ],
)
def test_matrix_validation_fails_on_bad_input(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        MatrixSpec(**kwargs)  # type: ignore[arg-type]


def test_case_validation_fails_on_bad_input() -> None:
    with pytest.raises(ConfigError):
        BenchCase("threads", 0, "cpu", 10, "light", 10)


def test_report_states_oversubscription_noise_and_winners() -> None:
    rows = [row("sequential", 1, 10.0), row("queue", 2, 19.0), row("queue", 4, 18.0), row("staged", 2, 25.0)]
    rows += [
        row("sequential", 1, 11.0, repeat=1),
        row("queue", 2, 19.5, repeat=1),
        row("staged", 2, 24.0, repeat=1),
    ]
    spec = MatrixSpec(
        strategies=("queue", "staged"),
        workers=(1, 2, 4, 8),
        sizes_kb=(10,),
        complexities=("light",),
        workloads=("cpu",),
        repeat=2,
    )
    facts = {"cores": 2, "memory_gb": 8.0, "python": "3.11", "load_average": [0.1, 0.1, 0.1]}
    text = render(summarise(rows, cores=2), facts, spec, {"celery": "not importable"})
    assert "4, 8 workers oversubscribe the 2 cores" in text
    assert "| cpu | 10 KB | light | staged | 2 |" in text
    assert "queue ×2: +27%" in text  # 24.5 vs 19.25 docs/s
    assert "staged overlap I/O beyond their worker count" in text
    assert "Skipped: celery (not importable)" in text
