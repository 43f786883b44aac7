"""The SQLite journal's behavioural tests (tests/unit/test_journal.py), run against PostgresJournal.

Every test there that needs only a ``journal`` is imported and collected here with a PostgreSQL
journal in its own schema: both backends must record, resume, settle duplicates and quarantine alike.
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Iterator

import pytest
from distributed_helpers import HERE

from docmill.journal.postgres import PostgresJournal

sys.path.insert(0, str(HERE.parent / "unit"))

import test_journal as sqlite_suite

pytestmark = pytest.mark.postgres


@pytest.fixture
def journal(pg_target: str) -> Iterator[PostgresJournal]:
    with PostgresJournal(pg_target, quarantine_after=3) as j:
        yield j


def _journal_only(name: str, test: object) -> bool:
    return name.startswith("test_") and list(inspect.signature(test).parameters) == ["journal"]  # type: ignore[arg-type]


SHARED = {
    name: test for name, test in vars(sqlite_suite).items() if callable(test) and _journal_only(name, test)
}
globals().update(SHARED)
