"""``docmill plan``'s online-vs-batch comparison: half the cost, the provider's turnaround instead of
the rate limit, waves past the queue limit, nothing without an LLM stage."""

from __future__ import annotations

import pytest

from docmill.bench.plan import PlanInputs, Profile, Scaling, cost_per_doc, tokens_per_doc
from docmill.bench.plan_batch import compare, comparison_lines

PROCESSES = Scaling("processes", serial_fraction=0.05, startup_s=0.1, rss_per_worker_mb=60.0)
ASYNC = Scaling("asyncio", serial_fraction=0.9, startup_s=0.0, rss_per_worker_mb=0.0)


def profile() -> Profile:
    return Profile(
        origin="test", sample_docs=100, seconds_per_doc=0.01, cpu_s_per_doc=0.01, bytes_per_doc=20_000,
        chars_per_doc=8_000, parent_rss_mb=80.0, scaling={"processes": PROCESSES, "asyncio": ASYNC},
        cores=2, memory_gb=16.0,
    )  # fmt: skip


def test_500k_documents_at_500_rpm_take_17_hours_online_and_a_day_at_half_the_price_in_batches() -> None:
    inputs = PlanInputs(docs=500_000, rpm=500, price_in=0.15, price_out=0.6)
    found = compare(profile(), inputs)
    assert found is not None
    assert found.online_s == pytest.approx(500_000 / (500 / 60), rel=1e-3)  # ~16.7 h, the RPM binds
    assert found.online_binding == "rate limit (rpm)"
    assert found.online_cost == pytest.approx(500_000 * cost_per_doc(profile(), inputs))
    assert found.batch_cost == pytest.approx(found.online_cost / 2)
    extraction = 500_000 * 0.01 / 2 * 1.05  # two cores, Amdahl
    assert 24 * 3600 < found.batch_s < 24 * 3600 + extraction * 1.2
    assert (found.batches, found.waves) == (10, 1)
    text = "\n".join(comparison_lines(found))
    assert (
        "| online | 16.7 h |" in text
        and "| batch | at most 1.0 d |" in text
        and "online finishes first" in text
    )


def test_a_queue_limit_sends_batches_in_waves() -> None:
    tokens_in, _ = tokens_per_doc(profile())
    inputs = PlanInputs(docs=100_000, rpm=100, price_in=1.0)
    found = compare(profile(), inputs, queue_tokens=tokens_in * 30_000, turnaround_s=3600)
    assert found is not None and found.waves == 4 and found.batch_s > 4 * 3600
    assert "4 waves" in "\n".join(comparison_lines(found))


def test_no_llm_stage_no_comparison() -> None:
    assert compare(profile(), PlanInputs(docs=10, llm=False)) is None
    assert comparison_lines(None) == []
