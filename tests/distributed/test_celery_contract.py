"""The executor contract suite (tests/contract), run against the Celery strategy and real workers.

The contract's test functions are imported and collected here with ``executor_name`` = "celery",
and the crash matrix's rows run with the process strategies' expectations;
``get_executor("celery", workers=2)`` reaches the workers started below through
``DOCMILL_BROKER`` and ``DOCMILL_QUEUE``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator

import pytest
from distributed_helpers import HERE, REDIS_URL, Workers, running_workers

CONTRACT = HERE.parent / "contract"
sys.path.insert(0, str(CONTRACT))

import test_crash_matrix as matrix  # noqa: E402
import test_executor_contract as contract  # noqa: E402

pytestmark = [pytest.mark.celery, pytest.mark.redis, pytest.mark.timeout(60)]


@pytest.fixture(scope="module", autouse=True)
def celery_workers() -> Iterator[Workers]:
    with running_workers(2, pythonpath=[CONTRACT]) as pool:
        saved = {k: os.environ.get(k) for k in ("DOCMILL_BROKER", "DOCMILL_QUEUE")}
        os.environ.update(DOCMILL_BROKER=REDIS_URL, DOCMILL_QUEUE=pool.queue)
        try:
            yield pool
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


@pytest.fixture
def executor_name() -> str:
    return "celery"


test_outcomes_match_the_oracle = contract.test_outcomes_match_the_oracle
test_async_pipeline_matches_the_oracle = contract.test_async_pipeline_matches_the_oracle
test_map_keeps_input_order = contract.test_map_keeps_input_order
test_refs_are_pulled_lazily = contract.test_refs_are_pulled_lazily
test_setup_runs_at_most_once_per_worker = contract.test_setup_runs_at_most_once_per_worker
test_close_is_idempotent = contract.test_close_is_idempotent
test_a_stopped_source_drains_what_is_in_flight = contract.test_a_stopped_source_drains_what_is_in_flight
test_nothing_leaks_after_a_run = contract.test_nothing_leaks_after_a_run
test_nothing_leaks_when_the_consumer_stops_early = contract.test_nothing_leaks_when_the_consumer_stops_early
test_nothing_leaks_when_the_consumer_raises = contract.test_nothing_leaks_when_the_consumer_raises
test_an_empty_source_yields_nothing = contract.test_an_empty_source_yields_nothing


# JSON carries results, so an unpicklable result is stringified rather than failed: not a crash here.
# The default run keeps one row per kind of ending (failed, crashed, timed out); the rest are slow.
QUICK = {"raises", "SIGKILL", "hang"}
CRASH_ROWS = [
    pytest.param(row, id=row.name, marks=() if row.name in QUICK else pytest.mark.slow)
    for row in matrix.ROWS
    if row.name != "unpicklable"
]


@pytest.mark.parametrize("row", CRASH_ROWS)
def test_crash_matrix(row: matrix.Row) -> None:
    """Every crash ends its document with the process strategies' status and reason; the run goes on."""
    outcomes, _ = matrix._run("celery", row)
    matrix._check(outcomes, row.status, row.error)
