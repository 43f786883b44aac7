"""Sequential, threads and processes give the same results on the man pages: the multiset of
(path, label) and of (path, status). Each run is a real `docmill run` in its own process, so a
strategy that crashes its interpreter fails its own case without taking the test session down."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from test_run_manpages import write_labels

from docmill.journal.base import Query
from docmill.journal.sqlite import SqliteJournal

STRATEGIES = ["sequential", "threads", "processes"]
MORE = ["asyncio", "batches", "queue", "hybrid", "staged", "auto"]  # in the slow run


def run_strategy(manpages: Path, folder: Path, strategy: str) -> Counter[tuple[str, str | None, str]]:
    db = folder / f"{strategy}.db"
    cmd = [
        sys.executable, "-m", "docmill", "run", str(manpages), "--strategy", strategy, "--workers", "2",
        "--db", str(db), "--labels", str(write_labels(folder)), "--progress", "log",
    ]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{strategy} exited {done.returncode}: {done.stderr[-1500:]}"
    with SqliteJournal(db) as journal:
        return Counter((r.path, r.label, r.status) for r in journal.iter_documents(Query()))


@pytest.fixture(scope="module")
def oracle(manpages: Path, tmp_path_factory: pytest.TempPathFactory) -> Counter[tuple[str, str | None, str]]:
    return run_strategy(manpages, tmp_path_factory.mktemp("sequential"), "sequential")


@pytest.mark.parametrize(
    "strategy",
    [*STRATEGIES[1:], *(pytest.param(s, marks=pytest.mark.slow) for s in MORE)],
)
def test_strategy_matches_sequential(
    manpages: Path, tmp_path: Path, oracle: Counter[tuple[str, str | None, str]], strategy: str
) -> None:
    got = run_strategy(manpages, tmp_path, strategy)
    assert sum(got.values()) == sum(oracle.values()) == 1200
    assert Counter((p, label) for p, label, _ in got.elements()) == Counter(
        (p, label) for p, label, _ in oracle.elements()
    )
    assert got == oracle, "same labels but different statuses (duplicate/ok) between strategies"
