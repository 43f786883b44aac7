"""Page-split extraction (tests/contract/test_page_split.py) through Celery and real workers.

The parts of a long scan travel as JSON refs with their page range; their texts come back in the
results list; the parent joins them and records one row per document, as the unsplit run does.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from distributed_helpers import HERE, REDIS_URL, Workers, running_workers

CONTRACT = HERE.parent / "contract"
sys.path.insert(0, str(CONTRACT))

import test_page_split as split  # noqa: E402
from test_page_split import corpus, unsplit  # noqa: E402, F401  (fixtures)

from docmill.outcome import Status  # noqa: E402

pytestmark = [pytest.mark.celery, pytest.mark.redis, pytest.mark.timeout(120), split.pytestmark]


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


def test_split_runs_record_what_the_unsplit_run_does(
    corpus: Path,  # noqa: F811
    unsplit: list[tuple[object, ...]],  # noqa: F811
    tmp_path: Path,
) -> None:
    split.test_split_runs_record_what_the_unsplit_run_does("celery", corpus, unsplit, tmp_path)


def test_a_failing_part_fails_its_document_once(corpus: Path, tmp_path: Path) -> None:  # noqa: F811
    outcomes = split._outcomes(corpus, "celery", 2, tmp_path, extract=split.FailingPart)
    failed = [o for o in outcomes if o.status is Status.FAILED]
    assert len(outcomes) == 4 and [o.ref.id for o in failed] == ["a-long.pdf"]
