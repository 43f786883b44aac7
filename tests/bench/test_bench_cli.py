"""`docmill bench` and `docmill plan` end to end, through the CLI, on real strategies and files."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest
from matplotlib.image import imread
from typer.testing import CliRunner

from docmill.bench.harness import BenchRow, overlaps_io
from docmill.bench.plan import PlanInputs, project
from docmill.bench.profile import measure_profile, profile_from_run
from docmill.cli.main import app
from docmill.errors import ConfigError

SUMMARY_COLUMNS = {
    "strategy",
    "workers",
    "workload",
    "size_kb",
    "complexity",
    "docs_per_s",
    "docs_per_s_cv",
    "mb_per_s",
    "speedup",
    "efficiency",
    "cpu_cores_mean",
    "cpu_cores_peak",
    "cpu_util_pct",
    "rss_peak_mb",
    "threads_peak",
    "ctx_voluntary",
    "ctx_involuntary",
}


def _bench(tmp_path: Path, *args: str) -> Path:
    result = CliRunner().invoke(app, ["bench", "--quick", "--out", str(tmp_path), *args])
    assert result.exit_code == 0, result.output
    (folder,) = tmp_path.iterdir()
    return folder


def _read(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        return list(reader.fieldnames or []), list(reader)


QUIET = 0.5  # cores of other work below which a measurement is trusted to within 5 %


def check_results(folder: Path) -> None:
    """Sane values: sequential speedup is 1; efficiency is at most 1.05 where it is physically bounded.

    Bounded = a strategy whose concurrency is its worker count (not ``overlaps_io``). The 5 % bound is
    checked on cells measured while other processes left the cores alone: on a loaded machine even a
    sleeping baseline wakes late, by tens of percent. Loaded cells get the loose bound 1.5, which
    still catches a wrong baseline or grouping.
    """
    raw_columns, raw = _read(folder / "raw.csv")
    assert raw_columns == BenchRow.columns()
    assert raw and all(r["error"] == "" and int(r["failed"]) == 0 for r in raw)
    assert all(float(r["docs_per_s"]) > 0 and float(r["rss_peak_mb"]) > 10 for r in raw)
    columns, summary = _read(folder / "summary.csv")
    assert SUMMARY_COLUMNS <= set(columns)
    quiet = {
        s["workload"] for s in summary if s["strategy"] == "sequential" and float(s["other_cores"]) < QUIET
    }
    for s in summary:
        if s["strategy"] == "sequential":
            assert float(s["speedup"]) == 1.0
        if overlaps_io(s["strategy"]):
            continue
        strict = s["workload"] in quiet and float(s["other_cores"]) < QUIET
        assert 0 < float(s["efficiency"]) <= (1.05 if strict else 1.5), s
    report = (folder / "report.md").read_text()
    for heading in ("Winner per cell", "Amdahl", "Caveats", "cores available"):
        assert heading in report
    pngs = sorted((folder / "plots").glob("*.png"))
    workload = summary[0]["workload"]
    assert {p.stem for p in pngs} >= {
        f"throughput-{workload}",
        f"speedup-{workload}",
        f"efficiency-{workload}",
        "memory",
        "cpu",
        "context-switches",
        "heatmap",
    }
    for png in pngs:
        image = imread(png)
        assert image.shape[0] > 200 and image.shape[1] > 300


def test_quick_bench_writes_sane_results(tmp_path: Path) -> None:
    folder = _bench(
        tmp_path, "--strategies", "sequential,threads,processes,peer:pool", "--workloads", "io-sim"
    )
    check_results(folder)
    profile = profile_from_run(folder)
    assert profile.seconds_per_doc > 0 and set(profile.scaling) >= {"sequential", "threads", "processes"}


@pytest.mark.slow
def test_full_quick_preset(tmp_path: Path) -> None:
    """Every registered strategy and every peer, on cpu and io."""
    check_results(_bench(tmp_path))


def test_bad_option_is_one_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["bench", "--quick", "--workers", "two", "--out", str(tmp_path)])
    assert result.exit_code != 0
    assert isinstance(result.exception, Exception) and "--workers" in str(result.exception)


@pytest.fixture(scope="module")
def tiny_sample(manpages: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("sample")
    files = sorted(p for p in manpages.rglob("*") if p.is_file())
    for path in files[::100]:  # 12 documents of every format
        shutil.copy(path, folder / path.name)
    return folder


def test_plan_on_a_tiny_sample(tiny_sample: Path) -> None:
    args = [
        "plan",
        "--docs",
        "500000",
        "--sample",
        str(tiny_sample),
        "--strategies",
        "processes",
        "--deadline",
        "1d",
        "--price-in",
        "0.15",
        "--price-out",
        "0.6",
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    rows = {
        line.split("|")[1].strip(): line.split("|")
        for line in result.output.splitlines()
        if line.startswith("| ")
    }
    assert set(rows) >= {"processes", "sequential"}
    assert rows["processes"][7].strip() == "llm concurrency"  # two workers blocking on 1 s calls
    assert int(rows["processes"][8]) >= 3  # 500,000 s of calls over 2 workers: 3 hosts for one day
    assert int(rows["sequential"][8]) >= 6
    assert "Cost: 500,000 × $" in result.output


def test_plan_projections_are_positive_and_monotone(tiny_sample: Path) -> None:
    profile = measure_profile(tiny_sample, strategies=["processes"])
    scaling = profile.scaling["processes"]
    assert profile.seconds_per_doc > 0 and profile.chars_per_doc > 100
    walls = [project(profile, scaling, PlanInputs(docs=n, rpm=600)).wall_s for n in (1_000, 10_000, 100_000)]
    assert 0 < walls[0] < walls[1] < walls[2]
    by_hosts = [
        project(profile, scaling, PlanInputs(docs=100_000, rpm=600), hosts=h) for h in (1, 2, 8, 64, 512)
    ]
    walls = [p.wall_s for p in by_hosts]
    assert all(a >= b for a, b in zip(walls, walls[1:], strict=False)) and walls[0] > walls[-1]
    assert by_hosts[-1].binding == "rate limit (rpm)" and walls[-2] == walls[-1]


def test_plan_needs_exactly_one_source(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["plan", "--docs", "10"])
    assert result.exit_code != 0 and "exactly one of" in str(result.exception)


def test_bench_on_a_real_folder(tiny_sample: Path, tmp_path: Path) -> None:
    args = [
        "bench",
        "--corpus",
        str(tiny_sample),
        "--strategies",
        "sequential,processes",
        "--workers",
        "1,2",
        "--repeat",
        "1",
        "--no-peers",
        "--out",
        str(tmp_path),
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    (folder,) = tmp_path.iterdir()
    _, rows = _read(folder / "raw.csv")
    assert {(r["strategy"], r["workers"], r["workload"], r["n_docs"]) for r in rows} == {
        ("sequential", "1", "extract", "12"),
        ("processes", "1", "extract", "12"),
        ("processes", "2", "extract", "12"),
    }
    assert all(r["error"] == "" and r["failed"] == "0" for r in rows)
    assert (folder / "plots" / "speedup-extract.png").is_file()


@pytest.mark.parametrize(
    "args,message",
    [
        (["bench", "--strategies", "warp-drive"], "unknown strategy 'warp-drive'"),
        (["bench", "--workloads", "gpu"], "unknown workload 'gpu'"),
        (["plan", "--docs", "10", "--from", "no/such/run"], "no raw.csv in no/such/run"),
        (["plan", "--docs", "10", "--sample", ".", "--deadline", "soon"], "cannot read duration 'soon'"),
    ],
)
def test_bad_input_is_a_one_line_config_error(args: list[str], message: str, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, [*args, *(["--out", str(tmp_path)] if args[0] == "bench" else [])])
    assert isinstance(result.exception, ConfigError), result.output
    assert message in str(result.exception) and "\n" not in str(result.exception)
