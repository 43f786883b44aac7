"""Projections: positive, monotone, and honest about which limit binds."""

from __future__ import annotations

import pytest

from docmill.bench.plan import (
    PlanInputs,
    Profile,
    Scaling,
    affordable_docs,
    hosts_for_deadline,
    parse_duration,
    plan_report,
    project,
)
from docmill.errors import ConfigError

PROCESSES = Scaling("processes", serial_fraction=0.05, startup_s=0.1, rss_per_worker_mb=60.0)
ASYNC = Scaling("asyncio", serial_fraction=0.9, startup_s=0.0, rss_per_worker_mb=0.0)


def profile(**changes: object) -> Profile:
    base: dict[str, object] = {
        "origin": "test",
        "sample_docs": 100,
        "seconds_per_doc": 0.01,
        "cpu_s_per_doc": 0.01,
        "bytes_per_doc": 20_000,
        "chars_per_doc": 8_000,
        "parent_rss_mb": 80.0,
        "scaling": {"processes": PROCESSES, "asyncio": ASYNC},
        "cores": 2,
        "memory_gb": 16.0,
    }
    return Profile(**{**base, **changes})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "text,seconds", [("7d", 604800), ("12h", 43200), ("90m", 5400), ("45s", 45), ("10", 10)]
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


def test_bad_duration_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="cannot read duration"):
        parse_duration("soon")


def test_more_documents_take_more_time() -> None:
    walls = [
        project(profile(), PROCESSES, PlanInputs(docs=n, llm=False)).wall_s for n in (10, 1_000, 100_000)
    ]
    assert 0 < walls[0] < walls[1] < walls[2]


def test_more_hosts_help_until_the_rate_limit_binds() -> None:
    inputs = PlanInputs(docs=500_000, rpm=600, tpm=10_000_000)
    runs = [project(profile(), PROCESSES, inputs, hosts=h) for h in (1, 2, 4, 64, 128)]
    walls = [r.wall_s for r in runs]
    assert walls[0] > walls[1] > walls[2] >= walls[3] == walls[4]
    assert runs[0].binding == "llm concurrency"  # two blocking workers, 1 s per call
    assert runs[-1].binding == "rate limit (rpm)"
    assert runs[-1].docs_per_s == pytest.approx(10.0)


def test_without_llm_cores_bind_and_amdahl_caps_the_speedup() -> None:
    inputs = PlanInputs(docs=1_000, llm=False, cores=64)
    run = project(profile(), PROCESSES, inputs)
    assert run.binding == "cores"
    assert run.workers_per_host == 64
    assert run.docs_per_s < 64 / 0.01 and run.docs_per_s == pytest.approx(1 / (0.05 + 0.95 / 64) / 0.01)


def test_memory_caps_workers_per_host() -> None:
    inputs = PlanInputs(docs=1_000, llm=False, cores=64, memory_gb=1.0)
    run = project(profile(), PROCESSES, inputs)
    assert run.binding == "memory"
    assert run.workers_per_host == int((1024 * 0.8 - 80) // 60)


def test_async_strategies_overlap_llm_calls() -> None:
    inputs = PlanInputs(docs=10_000)
    blocking, overlapping = project(profile(), PROCESSES, inputs), project(profile(), ASYNC, inputs)
    assert overlapping.docs_per_s > 10 * blocking.docs_per_s
    assert overlapping.in_flight == pytest.approx(overlapping.docs_per_s * 1.0)


def test_budget_limits_the_documents() -> None:
    inputs = PlanInputs(docs=1_000_000, price_in=1.0, price_out=1.0, budget=10.0)
    per_doc = (2_000 + 250 + 30) / 1e6  # text tokens (capped at 2,000) + prompt + answer, at $1 per 1M
    assert affordable_docs(profile(), inputs) == int(10.0 / per_doc)
    assert "budget binds" in plan_report(profile(), inputs)


def test_hosts_for_deadline_is_the_fewest_that_meet_it() -> None:
    inputs = PlanInputs(docs=1_000_000, llm=False, deadline_s=3600)
    needed = hosts_for_deadline(profile(), PROCESSES, inputs)
    assert needed is not None and needed.wall_s <= 3600
    assert project(profile(), PROCESSES, inputs, hosts=needed.hosts - 1).wall_s > 3600


def test_a_deadline_behind_the_rate_limit_is_impossible() -> None:
    inputs = PlanInputs(docs=1_000_000, rpm=60, deadline_s=3600)
    assert hosts_for_deadline(profile(), ASYNC, inputs) is None
    assert "impossible" in plan_report(profile(), inputs)


@pytest.mark.parametrize("field", ["rpm", "tpm", "budget", "deadline_s", "cores"])
def test_inputs_reject_non_positive_limits(field: str) -> None:
    with pytest.raises(ConfigError):
        PlanInputs(docs=10, **{field: 0})  # type: ignore[arg-type]


def test_repeated_refs_keep_ids_distinct() -> None:
    from docmill.bench.profile import repeated
    from docmill.testing import make_refs

    refs = make_refs(3)
    assert repeated(refs, 1) == refs
    twice = repeated(refs, 2)
    assert len(twice) == 6 and len({r.id for r in twice}) == 6
    assert [r.uri for r in twice] == [r.uri for r in refs] * 2
