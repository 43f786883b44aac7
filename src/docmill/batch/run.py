"""``run_batch``: ``runner.run`` for ``llm.mode: batch`` (``docmill.batch.session``), and the launcher
``runner.run_config`` uses in its place."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

from docmill._signals import graceful_stop
from docmill.batch.backend import BATCH_PROVIDERS, BatchBackend, OpenAIBatches, backend_for
from docmill.batch.request import BatchRequest
from docmill.batch.session import BatchSession
from docmill.clock import SYSTEM_CLOCK, Clock
from docmill.config import RunConfig
from docmill.errors import ConfigError
from docmill.executors import get_executor
from docmill.executors.base import Executor
from docmill.job import Job
from docmill.journal.base import Journal
from docmill.llm.batch_api import BatchAPI
from docmill.llm.settings import LLMOptions
from docmill.pipeline import Pipeline
from docmill.processors.base import Processor
from docmill.processors.classify_llm import LLMClassifier, _api_key
from docmill.progress import NullReporter, Reporter
from docmill.retry import RetryPolicy
from docmill.runner import RunResult
from docmill.sources.base import Source


def run_batch(
    source: Source,
    pipeline: Processor,
    *,
    options: LLMOptions,
    executor: Executor | str = "sequential",
    workers: int | None = None,
    journal: Journal | None = None,
    reporter: Reporter | None = None,
    retry: RetryPolicy | None = None,
    timeout: float | None = None,
    commit_every: int = 2000,
    commit_seconds: float = 1.0,
    retry_failed: bool = False,
    fresh: bool = False,
    max_cost: float | None = None,
    settings: Mapping[str, Any] | None = None,
    clock: Clock = SYSTEM_CLOCK,
    api: BatchAPI | None = None,
    sleep: Callable[[float], None] | None = None,
    backend: BatchBackend | None = None,
) -> RunResult:
    """``runner.run`` for ``llm.mode: batch``: the same arguments, and the llm ``options``; the
    provider's Batch API is ``backend``, else OpenAI's through ``api``, else the one of the
    classifier's provider (``docmill.batch.backend.backend_for``)."""
    pipeline.check_requirements()
    steps = pipeline.steps if isinstance(pipeline, Pipeline) else (pipeline,)
    classifier = steps[-1]
    if not isinstance(classifier, LLMClassifier):
        raise ConfigError(
            "llm.mode: batch needs the llm classifier, asking once per document, as the run's last "
            "step (--classifier llm; not llm.tasks_per_request: one, no --step after it); the last "
            f"step here is {type(classifier).__name__}"
        )
    s = classifier.settings
    if backend is None and api is None and s.provider not in BATCH_PROVIDERS:
        raise ConfigError(
            f"llm.mode: batch needs a provider with a Batch API ({' or '.join(BATCH_PROVIDERS)}), "
            f"not {s.provider!r}"
        )
    pipeline.check()  # the endpoint answers, takes the key, knows the model: before any work
    if backend is None and api is not None:
        backend = OpenAIBatches(api)
    backend = backend or backend_for(s, api_key=_api_key(s), sleep=sleep or clock.sleep)
    job = Job(source, pipeline, retry=retry, timeout=timeout, clock=clock)
    prepare = Job(
        source, Pipeline(*steps[:-1], BatchRequest(classifier)), retry=retry, timeout=timeout, clock=clock
    )
    if journal is None:
        from docmill.journal.sqlite import SqliteJournal

        journal = SqliteJournal(":memory:")
    strategy = get_executor(executor, workers=workers) if isinstance(executor, str) else executor
    session = BatchSession(
        source, job, journal, reporter or NullReporter(), clock, commit_every, commit_seconds,
        prepare=prepare, options=options, backend=backend, sleep=sleep,
    )  # fmt: skip
    session.max_cost = max_cost
    try:
        with graceful_stop(session.stop, session.reporter.message), strategy:
            return session.run(strategy, fresh=fresh, retry_failed=retry_failed, settings=settings or {})
    finally:
        backend.close()


def launcher(config: RunConfig) -> Callable[..., RunResult]:
    """``run_batch`` for ``config`` (``runner.run_config`` calls it in ``run``'s place)."""
    if config.classifier.partition(":")[0] != "llm":
        raise ConfigError(f"llm.mode: batch needs --classifier llm, not {config.classifier!r}")
    return functools.partial(run_batch, options=config.llm)
