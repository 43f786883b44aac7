"""Synthetic documents and workloads: reproducible, exact sizes, deterministic latencies."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from docmill.bench.emulated import Emulators
from docmill.bench.workloads import (
    LLM_WORKLOADS,
    FolderSource,
    SimulatedCall,
    TokenCount,
    build_job,
    build_pipeline,
    latency_for,
    write_corpus,
)
from docmill.errors import ConfigError
from docmill.outcome import Status
from docmill.testing import FakeClock


def test_corpus_is_reproducible_and_exactly_sized(tmp_path: Path) -> None:
    write_corpus(tmp_path / "a", size_kb=10, n_docs=3, seed=7)
    write_corpus(tmp_path / "b", size_kb=10, n_docs=3, seed=7)
    write_corpus(tmp_path / "c", size_kb=10, n_docs=3, seed=8)
    files = sorted((tmp_path / "a").iterdir())
    assert [p.stat().st_size for p in files] == [10 * 1024] * 3
    assert [p.read_bytes() for p in files] == [p.read_bytes() for p in sorted((tmp_path / "b").iterdir())]
    assert files[0].read_bytes() != (tmp_path / "c" / files[0].name).read_bytes()
    assert files[0].read_bytes() != files[1].read_bytes()


def test_corpus_grows_without_rewriting(tmp_path: Path) -> None:
    write_corpus(tmp_path, size_kb=1, n_docs=2)
    first = (tmp_path / "doc-00000.txt").stat().st_mtime_ns
    write_corpus(tmp_path, size_kb=1, n_docs=5)
    assert len(list(tmp_path.iterdir())) == 5
    assert (tmp_path / "doc-00000.txt").stat().st_mtime_ns == first
    fresh = tmp_path / "fresh"
    write_corpus(fresh, size_kb=1, n_docs=5)
    assert (fresh / "doc-00004.txt").read_bytes() == (tmp_path / "doc-00004.txt").read_bytes()


def test_latency_is_fixed_per_document_and_lognormal_around_the_median() -> None:
    assert latency_for("abc", 0.02, 0.5) == latency_for("abc", 0.02, 0.5)
    draws = sorted(latency_for(str(i), 0.02, 0.5) for i in range(2001))
    assert 0.018 < draws[1000] < 0.022
    assert all(d > 0 for d in draws)


def test_simulated_call_waits_on_the_injected_clock() -> None:
    clock = FakeClock()
    step = SimulatedCall(0.05, clock=clock)
    job = build_job(Path("."), "cpu", "light")  # only for a Document factory below
    del job
    from docmill.document import Document, DocumentRef

    doc = Document(DocumentRef("x", "x"), sha256="ab" * 32, content=b"hello")
    before = clock.monotonic()
    out = step.process(doc)
    assert clock.monotonic() - before == pytest.approx(out.metadata["latency"])
    out_async = asyncio.run(step.aprocess(doc))
    assert out_async.metadata["latency"] == out.metadata["latency"]


def test_token_count_does_the_passes_and_sets_text(tmp_path: Path) -> None:
    write_corpus(tmp_path, size_kb=4, n_docs=1)
    source = FolderSource(tmp_path)
    doc = source.load(next(iter(source)))
    out = TokenCount(3).process(doc)
    assert out.text is not None and len(out.text) == 4096
    assert out.metadata["words"] > 300


@pytest.mark.parametrize("workload", ["cpu", "io", "io-sim", "mixed"])
def test_every_workload_runs_as_a_job(tmp_path: Path, workload: str) -> None:
    write_corpus(tmp_path / "docs", size_kb=2, n_docs=3)
    with Emulators(tmp_path) as emulators:
        settings = emulators.settings("light") if workload in LLM_WORKLOADS else None
        job = build_job(tmp_path / "docs", workload, "light", settings=settings)
        job.setup()
        outcomes = [job.run(ref) for ref in job.source]
        job.teardown()
    assert [o.status for o in outcomes] == [Status.OK] * 3, [o.error for o in outcomes]
    if workload in LLM_WORKLOADS:  # a real classification over HTTP, with the labels we wrote
        assert all(
            o.label in {"alpha", "beta", "gamma"} and o.result and o.result["requests"] == 1 for o in outcomes
        )


def test_unknown_names_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="unknown workload"):
        build_pipeline("gpu", "light")
    with pytest.raises(ConfigError, match="unknown complexity"):
        build_pipeline("cpu", "extreme")
