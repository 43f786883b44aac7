"""``docmill bench --resume``: a stopped bench finishes with every case of its matrix measured once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from typer.testing import CliRunner

from docmill.bench.harness import BenchCase, BenchRow, MatrixSpec, _row
from docmill.bench.measured import MeasuredCases, case_key
from docmill.bench.report import read_raw
from docmill.bench.sampler import EMPTY_USAGE
from docmill.bench.session import load_run, quick_spec, run_bench
from docmill.bench.tiny import NAIVE_PEER
from docmill.cli.main import app
from docmill.errors import ConfigError


def _spec() -> MatrixSpec:
    return quick_spec(["sequential", NAIVE_PEER], workloads=("tiny",), docs=40, repeat=2, workers=(1,))


def _every_case(spec: MatrixSpec) -> Counter[tuple[object, ...]]:
    return Counter(case_key(c) for cell in spec.cells() for c in spec.cases(cell, 1))


class _Stop:
    """A progress hook that interrupts the bench after ``n`` cases, as Ctrl-C would."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __call__(self, case: BenchCase, row: BenchRow) -> None:
        self.n -= 1
        if self.n == 0:
            raise KeyboardInterrupt


def test_the_baseline_measured_once_still_runs_its_second_time() -> None:
    spec = _spec()
    cases = spec.cases(next(spec.cells()), 40)  # sequential, naive, sequential per repetition
    first = BenchCase("sequential", 1, "tiny", 1, "medium", 40, 0)
    left = MeasuredCases([_row(first, [], (0, 0), EMPTY_USAGE, "")]).remaining(cases)
    assert [case_key(c) for c in left] == [case_key(c) for c in cases[1:]]


def test_an_interrupted_bench_resumed_reports_every_case_once(tmp_path: Path) -> None:
    spec = _spec()
    with pytest.raises(KeyboardInterrupt):
        run_bench(spec, tmp_path, on_row=_Stop(2))
    (folder,) = tmp_path.iterdir()
    assert len(read_raw(folder / "raw.csv")) == 2
    result = CliRunner().invoke(app, ["bench", "--resume", str(folder)])
    assert result.exit_code == 0, result.output
    total = spec.n_cases()
    assert result.output.startswith(f"bench: {total} cases (2 measured before), expected about ")
    lines = [line.split()[0] for line in result.output.splitlines() if line.startswith("[")]
    assert lines == [f"[{i}/{total}]" for i in range(3, total + 1)]
    rows = read_raw(folder / "raw.csv")
    assert Counter(case_key(r) for r in rows) == _every_case(spec)
    assert {r.n_docs for r in rows} == {40} and all(r.ok == 40 and not r.error for r in rows)
    assert "peer:naive" in (folder / "report.md").read_text()


def test_a_finished_bench_resumed_measures_nothing_more(tmp_path: Path) -> None:
    run_bench(quick_spec(["sequential"], workloads=("tiny",), docs=20, repeat=1), tmp_path)
    (folder,) = tmp_path.iterdir()
    before = (folder / "raw.csv").read_text()
    result = CliRunner().invoke(app, ["bench", "--resume", str(folder)])
    assert result.exit_code == 0, result.output
    assert "[" not in result.output and (folder / "raw.csv").read_text() == before


@pytest.mark.slow
def test_a_bench_stopped_by_sigterm_is_finished_by_resume(tmp_path: Path) -> None:
    args = ["--workloads", "tiny", "--docs", "2000", "--strategies", f"sequential,{NAIVE_PEER}"]
    command = [sys.executable, "-m", "docmill", "bench", "--quick", "--out", str(tmp_path), *args]
    bench = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    assert bench.stdout is not None
    for line in bench.stdout:  # the first case measured: stop the bench during the next ones
        if line.startswith("[1/"):
            os.kill(bench.pid, signal.SIGTERM)
            break
    assert bench.wait(timeout=60) == 130
    (folder,) = tmp_path.iterdir()
    spec, _, stopped = load_run(folder)
    assert 1 <= len(stopped) < spec.n_cases()
    resumed = subprocess.run([*command[:3], "bench", "--resume", str(folder)], capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    rows = read_raw(folder / "raw.csv")
    assert Counter(case_key(r) for r in rows) == _every_case(spec)
    assert all(r.ok == 2000 and not r.error for r in rows)


@pytest.mark.parametrize(
    "extra,message",
    [
        (["--strategies", "threads"], "give no matrix options"),
        ([], "is not a bench run"),
    ],
)
def test_resume_refuses_what_it_cannot_finish(extra: list[str], message: str, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["bench", "--resume", str(tmp_path), *extra])
    assert isinstance(result.exception, ConfigError), result.output
    assert message in str(result.exception) and "\n" not in str(result.exception)
