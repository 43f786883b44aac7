"""Strategy options are each strategy's typed ``Options``; capabilities are class attributes;
worker counts are bounded by the machine and by the documents to run."""

from __future__ import annotations

import dataclasses
import logging

import pytest

from docmill._build import build_executor
from docmill.config import Parallelization, RunConfig
from docmill.errors import ConfigError
from docmill.executors import EXECUTORS, executor_class, get_executor, sizing
from docmill.executors.processes import ProcessExecutor
from docmill.job import Job
from docmill.settings import SettingError
from docmill.testing import MemorySource, NoopProcessor, PulledCounter, iter_refs, make_refs

pytestmark = pytest.mark.timeout(60)

REFUSED = [
    ("asyncio", {"start_method": "fork"}, "start_method: unknown setting"),
    ("processes", {"start_method": "bogus"}, "start_method: invalid value 'bogus' (one of "),
    ("asyncio", {"sync_threads": 0}, "sync_threads: invalid value 0 (must be >= 1)"),
    ("threads", {"bogus": 1}, "bogus: unknown setting"),
    ("queue", {"max_in_flight": 0}, "max_in_flight: invalid value 0 (must be >= 1)"),
    ("processes", {"timeout_grace": -1}, "timeout_grace: invalid value -1.0 (must be >= 0)"),
    ("processes", {"chunksize": 0}, "chunksize: invalid value 0 (must be >= 1)"),
    ("processes", {"chunksze": 2}, "chunksze: unknown setting; did you mean chunksize?"),
    (
        "batches",
        {"partition": "random"},
        "partition: invalid value 'random' (one of stride, size)",
    ),
    (
        "hybrid",
        {"inner": "fibers"},
        "inner: invalid value 'fibers' (one of auto, threads, asyncio)",
    ),
    (
        "queue",
        {"max_tasks_per_child": 0},
        "max_tasks_per_child: invalid value 0 (must be >= 1)",
    ),
    ("queue", {"max_memory_mb": -5}, "max_memory_mb: invalid value -5.0 (must be > 0)"),
    ("auto", {"chunksize": 4}, "chunksize: unknown setting"),
    ("sequential", {"workers": 2}, "workers: unknown setting"),
    (
        "threads",
        {"max_in_flight": "many"},
        "max_in_flight: invalid value 'many' (must be an integer)",
    ),
    ("threads", 5, ": expected a mapping of settings, got 5"),
]


@pytest.mark.parametrize(("strategy", "options", "message"), REFUSED)
def test_the_config_refuses_options_the_strategy_does_not_take(
    strategy: str, options: object, message: str
) -> None:
    with pytest.raises(SettingError) as info:
        RunConfig(strategy=strategy, strategy_options=options)  # type: ignore[arg-type]
    assert str(info.value).startswith("strategy_options" + ("" if message[0] == ":" else ".") + message)
    assert info.value.exit_code == 2 and "\n" not in str(info.value)


def test_loading_a_file_refuses_them_before_any_work(tmp_path: object) -> None:
    from pathlib import Path

    config = Path(str(tmp_path)) / "docmill.yaml"
    config.write_text("strategy: processes\nstrategy_options: {start_method: bogus}\n")
    with pytest.raises(SettingError, match="strategy_options.start_method"):
        RunConfig.load(config)
    with pytest.raises(SettingError, match="strategy_options.start_method: unknown setting"):
        RunConfig.load(config, strategy="asyncio")


def test_the_built_strategy_gets_its_typed_options() -> None:
    config = RunConfig(strategy="processes", workers=2, strategy_options={"chunksize": 4, "timeout_grace": 2})
    with build_executor(config) as executor:
        assert isinstance(executor, ProcessExecutor)
        assert executor.options == ProcessExecutor.Options(chunksize=4, timeout_grace=2.0)
        assert (executor.chunksize, executor.timeout_grace, executor.workers) == (4, 2.0, 2)


def test_nested_strategies_are_sized_by_parallelization_unless_their_options_say() -> None:
    shape = Parallelization(max_processes=2, max_threads_per_process=3)
    sized = RunConfig(strategy="hybrid", parallelization=shape)
    with build_executor(sized) as executor:
        assert (executor.workers, executor.width) == (2, 3)  # type: ignore[attr-defined]
    own = sized.replace(strategy_options={"max_threads_per_process": 5})
    with build_executor(own) as executor:
        assert executor.width == 5  # type: ignore[attr-defined]


def test_the_python_api_takes_the_same_options_as_keywords() -> None:
    with get_executor("threads", workers=2, max_in_flight=4) as threads:
        assert (threads.workers, threads.max_in_flight) == (2, 4)
    with pytest.raises(SettingError, match="^chunksize: invalid value 0"):
        get_executor("processes", chunksize=0)
    with pytest.raises(SettingError, match="^sync_threads: unknown setting"):
        get_executor("threads", sync_threads=2)
    with pytest.raises(ConfigError, match="not both"):
        ProcessExecutor(2, options=ProcessExecutor.Options(), chunksize=3)


@pytest.mark.parametrize("name", sorted(set(EXECUTORS) - {"celery"}))
def test_every_options_is_a_frozen_keyword_only_value(name: str) -> None:
    kind = executor_class(name)
    options = kind.Options()
    assert all(f.kw_only for f in dataclasses.fields(options))
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.max_in_flight = 3  # type: ignore[misc]


CAPABILITIES = {  # name: (parallel, needs_processes, nested, distributed, overlaps_io, io_slots, delegates)
    "sequential": (False, False, False, False, False, "workers", False),
    "threads": (True, False, False, False, False, "threads", False),
    "processes": (True, True, False, False, False, "workers", False),
    "asyncio": (True, False, False, False, False, "in_flight", False),
    "batches": (True, True, False, False, False, "workers", False),
    "queue": (True, True, False, False, False, "workers", False),
    "hybrid": (True, True, True, False, True, "in_flight", False),
    "auto": (True, True, True, False, True, "in_flight", True),
}


@pytest.mark.parametrize("name", sorted(CAPABILITIES))
def test_capabilities_are_class_attributes(name: str) -> None:
    kind = executor_class(name)
    keys = ("parallel", "needs_processes", "nested", "distributed", "overlaps_io", "io_slots", "delegates")
    assert tuple(getattr(kind, key) for key in keys) == CAPABILITIES[name]


def test_celery_is_distributed() -> None:
    pytest.importorskip("celery")
    assert executor_class("celery").distributed is True


# ------------------------------------------------------------------------------------ bounded


@pytest.fixture
def two_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sizing, "usable_cores", lambda: 2)
    monkeypatch.setattr(sizing, "available_memory", lambda: 64 << 30)


def test_process_pools_are_capped_by_cores_with_a_warning(
    two_cores: None, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, "docmill.executors"):
        executor = get_executor("processes", workers=100_000)
    assert executor.workers == 2 * sizing.PROCESSES_PER_CORE
    assert [r.getMessage() for r in caplog.records] == [
        "workers 100000 capped at 8 worker processes (4 per core on 2 cores)"
    ]


def test_process_pools_are_capped_by_available_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sizing, "usable_cores", lambda: 64)
    monkeypatch.setattr(sizing, "available_memory", lambda: 3 * sizing.WORKER_MEMORY + 1)
    assert get_executor("queue", workers=64).workers == 3
    assert sizing.process_ceiling()[1].startswith("0.2 GiB of memory available")


def test_a_default_count_within_the_ceiling_says_nothing(
    two_cores: None, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, "docmill.executors"):
        assert get_executor("processes", workers=3).workers == 3
        assert get_executor("processes").workers == 2
    assert caplog.records == []


def test_threads_awaiting_and_in_flight_have_ceilings(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, "docmill.executors"):
        assert get_executor("threads", workers=100_000).workers == sizing.MAX_THREADS
        assert get_executor("asyncio", workers=10**7).workers == sizing.MAX_AWAITING
        assert get_executor("asyncio", sync_threads=10**5).sync_threads == sizing.MAX_THREADS  # type: ignore[attr-defined]
        assert get_executor("threads", max_in_flight=10**9).max_in_flight == sizing.MAX_IN_FLIGHT
    assert len(caplog.records) == 4


def test_no_more_workers_than_documents_and_the_refs_stay_lazy(caplog: pytest.LogCaptureFixture) -> None:
    executor = get_executor("threads", workers=6)
    with caplog.at_level(logging.WARNING, "docmill.executors"):
        assert list(executor.fit_to_pending(make_refs(3))) == make_refs(3)
    assert executor.workers == 3
    assert caplog.records[0].getMessage() == "workers 6 capped at 3: 3 documents to run"
    endless = PulledCounter(iter_refs(10**9))
    refs = executor.fit_to_pending(endless)
    assert (executor.workers, endless.pulled) == (6, 6)  # only as many as workers were pulled ahead
    assert next(iter(refs)).id == "doc-000000"


def test_a_process_pool_starts_no_more_workers_than_documents(two_cores: None) -> None:
    job = Job(MemorySource(), NoopProcessor())
    with get_executor("processes", workers=100_000) as executor:
        outcomes = list(executor.map_unordered(job, MemorySource(3)))
        assert len(outcomes) == 3
        assert executor.statistics().workers == 3


def test_the_strategy_options_table_of_the_docs_equals_the_classes() -> None:
    import dataclasses
    import re
    from pathlib import Path

    from docmill.executors import EXECUTORS, executor_class

    doc = (Path(__file__).resolve().parents[2] / "docs" / "run.md").read_text(encoding="utf-8")
    section = doc.split("## Strategy options", 1)[1].split("\n## ", 1)[0]
    rows = dict(re.findall(r"^\| `([a-z]+)` \| (.+) \|$", section, re.MULTILINE))
    assert sorted(rows) == sorted(EXECUTORS)
    for name, cell in rows.items():
        documented = re.findall(r"`(\w+)`", cell)
        assert documented == [f.name for f in dataclasses.fields(executor_class(name).Options)], name
