"""The ``tiny`` workload: whole runs (journal included) beside the naive loop, through ``docmill bench``."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from typer.testing import CliRunner

from docmill.bench.tiny import NAIVE_PEER, run_tiny, tiny_job, write_records
from docmill.cli.main import app


def test_records_are_written_once_with_some_duplicate_texts(tmp_path: Path) -> None:
    path = write_records(tmp_path, 100)
    texts = [json.loads(line)["text"] for line in path.read_text().splitlines()]
    assert len(texts) == 100 and len(set(texts)) == 98  # records 49 and 99 repeat earlier texts
    assert write_records(tmp_path, 100) == path


def test_a_run_and_the_naive_loop_account_for_every_record(tmp_path: Path) -> None:
    job = tiny_job(write_records(tmp_path, 120))
    refs = list(job.source)
    assert run_tiny(NAIVE_PEER, 1, job, refs) == (120, 120)
    assert run_tiny("sequential", 1, job, refs[:60]) == (60, 60)  # duplicates count as successes


def test_bench_tiny_has_the_naive_loop_as_a_row(tmp_path: Path) -> None:
    args = ["--workloads", "tiny", "--docs", "200", "--strategies", f"sequential,{NAIVE_PEER}"]
    result = CliRunner().invoke(app, ["bench", "--quick", "--out", str(tmp_path), *args])
    assert result.exit_code == 0, result.output
    (folder,) = tmp_path.iterdir()
    with (folder / "raw.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert {r["strategy"] for r in rows} == {"sequential", NAIVE_PEER}
    assert all(r["workload"] == "tiny" and r["ok"] == "200" and not r["error"] for r in rows)


def test_off_a_terminal_each_case_is_a_line_and_raw_csv_grows(tmp_path: Path) -> None:
    args = [
        "--workloads",
        "tiny",
        "--docs",
        "50",
        "--strategies",
        f"sequential,{NAIVE_PEER}",
        "--repeat",
        "1",
    ]
    result = CliRunner().invoke(app, ["bench", "--quick", "--out", str(tmp_path), *args])
    assert result.exit_code == 0, result.output
    head, *lines = result.output.splitlines()
    total = int(head.split()[1])
    assert head.startswith(f"bench: {total} cases, expected about ")
    cases = [line.split()[0] for line in lines if line.startswith("[")]
    assert cases == [f"[{i}/{total}]" for i in range(1, total + 1)]
    (folder,) = tmp_path.iterdir()
    assert (folder / "raw.csv").read_text().count("\n") == total + 1


def test_max_minutes_reports_the_cases_measured_before_it(tmp_path: Path) -> None:
    args = ["--workloads", "tiny", "--docs", "50", "--strategies", "sequential", "--max-minutes", "1e-9"]
    result = CliRunner().invoke(app, ["bench", "--quick", "--out", str(tmp_path), *args])
    assert result.exit_code == 0, result.output
    assert "measured 0 of" in result.output
    (folder,) = tmp_path.iterdir()
    assert (folder / "raw.csv").read_text().count("\n") == 1  # the header: nothing was measured
    assert (folder / "report.md").exists()
