"""Distributed faults in one run (benchmarks/chaos_acceptance.py): a Celery run of 1,800 man pages,
SIGKILLed and resumed, whose resumed run rides out a broker freeze (8 s, 30 s) and a cut of every
journal connection: 0 lost, 0 duplicate rows, the sequential run's labels. Prints its figures."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path
from types import ModuleType

import pytest
from distributed_helpers import PG_URL

pytestmark = [pytest.mark.chaos, pytest.mark.celery, pytest.mark.postgres, pytest.mark.timeout(3600)]

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "chaos_acceptance.py"


def script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("chaos_acceptance", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up while being made
    spec.loader.exec_module(module)
    return module


def needs_services() -> None:
    """Skip in one line without redis-server or PostgreSQL."""
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    psycopg = pytest.importorskip("psycopg")
    try:
        psycopg.connect(PG_URL, connect_timeout=3).close()
    except psycopg.Error as exc:
        pytest.skip(f"PostgreSQL not reachable at {PG_URL}: {str(exc).splitlines()[0]}")


@pytest.mark.parametrize("freeze", [8, 30])
def test_a_killed_resumed_run_rides_out_a_broker_freeze_and_a_journal_cut(
    manpages: Path, tmp_path: Path, freeze: int
) -> None:
    needs_services()
    figures = script().acceptance(manpages, tmp_path, freeze=freeze, kill_at=500)
    print(figures.summary())
    assert figures.documents == 1800
    assert figures.killed_at_rows > 0, "the runner finished before it could be killed"
    assert figures.freeze_ridden_seconds is not None and figures.cut_sessions > 0, figures.summary()
    assert figures.cut_ridden_seconds is not None, figures.summary()
    assert (figures.lost, figures.duplicate_rows, figures.label_differences) == (0, 0, 0)
    assert figures.rows == figures.distinct_rows == 1800
