"""`docmill plan --pages-per-doc`: page costs (OCR, text layer) measured on a sample drive the projection."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from docmill.bench.pages import PageCosts, for_pages, page_costs
from docmill.bench.plan import PlanInputs, Profile, Scaling, plan_report, project
from docmill.bench.profile import measure_profile
from docmill.cli.main import app
from docmill.document import DocumentRef
from docmill.errors import ConfigError
from docmill.outcome import Outcome, Status, Timings
from docmill.processors.formats import ocr

PROCESSES = Scaling("processes", serial_fraction=0.05, startup_s=0.0, rss_per_worker_mb=60.0)


def outcome(seconds: float, pages: int | None, ocred: int = 0, status: Status = Status.OK) -> Outcome:
    result: dict[str, object] = {"chars": 1000 * (pages or 1)}
    if pages is not None:
        result |= {"pages": pages, "pages_ocr": ocred}
    return Outcome(
        DocumentRef("d", "file:///d", size=2048), status, result=result, timings=Timings(0, seconds)
    )


def test_text_and_ocr_pages_are_told_apart() -> None:
    runs = [outcome(0.02, 2), outcome(0.03, 3), outcome(2.01, 3, ocred=2), outcome(1.0, 1, ocred=1)]
    costs = page_costs(runs, seconds_per_doc=sum(o.timings.seconds for o in runs) / len(runs))
    assert costs is not None
    assert costs.s_per_text_page == pytest.approx(0.01)
    assert costs.s_per_ocr_page == pytest.approx((2.01 - 0.01 + 1.0) / 3)
    assert (costs.docs, costs.pages, costs.pages_ocr, costs.all_paged) == (4, 9, 3, True)
    assert costs.seconds_per_page() * costs.pages == pytest.approx(sum(o.timings.seconds for o in runs))


def test_documents_without_pages_and_failures_carry_no_page_cost() -> None:
    runs = [outcome(0.5, None), outcome(9.0, 4, status=Status.FAILED), outcome(0.04, 4)]
    costs = page_costs(runs, seconds_per_doc=2 * (0.5 + 9.0 + 0.04) / 3)  # steady state: twice as slow
    assert costs is not None and (costs.docs, costs.pages, costs.all_paged) == (1, 4, False)
    assert costs.s_per_ocr_page is None and costs.seconds_per_page() == pytest.approx(2 * 0.01)
    assert page_costs([outcome(0.5, None)], seconds_per_doc=0.5) is None


def _profile(costs: PageCosts | None) -> Profile:
    return Profile(
        origin="measured on sample (4 documents)",
        sample_docs=4,
        seconds_per_doc=0.5,
        cpu_s_per_doc=0.4,
        bytes_per_doc=2048,
        chars_per_doc=2000,
        parent_rss_mb=80.0,
        scaling={"processes": PROCESSES},
        cores=2,
        memory_gb=16.0,
        pages=costs,
    )


SCANS = PageCosts(
    docs=4,
    pages=8,
    pages_ocr=4,
    chars=8000,
    bytes=8192,
    all_docs=4,
    s_per_text_page=0.01,
    s_per_ocr_page=0.99,
)


def test_pages_per_doc_scales_the_documents_and_the_sample_projects_itself() -> None:
    own = for_pages(_profile(SCANS), SCANS.pages_per_doc)
    assert own.seconds_per_doc == pytest.approx(2 * 0.5)  # 2 pages at 0.5 s: the sample's own document
    ten = for_pages(_profile(SCANS), 10)
    assert ten.seconds_per_doc == pytest.approx(5.0) and ten.chars_per_doc == pytest.approx(10_000)
    assert ten.cpu_s_per_doc == pytest.approx(0.4 * 10)
    assert for_pages(ten, 10) == ten  # applying it again changes nothing
    walls = [
        project(for_pages(_profile(SCANS), p), PROCESSES, PlanInputs(docs=1000, llm=False)) for p in (1, 10)
    ]
    assert walls[1].docs_per_s == pytest.approx(walls[0].docs_per_s / 10)


def test_the_report_speaks_pages_and_hosts_for_the_deadline() -> None:
    inputs = PlanInputs(docs=500_000, pages_per_doc=10, llm=False, deadline_s=7 * 86400)
    text = plan_report(_profile(SCANS), inputs)
    assert "500,000 documents × 10.0 pages = 5,000,000 pages" in text
    assert "990.0 ms per OCR page, 10.0 ms per text-layer page" in text
    header, _, row = text.split("\n\n")[1].splitlines()  # the strategy table
    cells = dict(
        zip([c.strip() for c in header.split("|")], [c.strip() for c in row.split("|")], strict=True)
    )
    assert float(cells["pages/s"]) == pytest.approx(10 * float(cells["docs/s"]), rel=0.01)
    assert int(cells["hosts for deadline"]) >= 2  # 5 M pages × 0.5 s on 2 cores: 14.5 d on one host


def test_no_pages_column_for_a_sample_that_is_not_all_paged() -> None:
    mixed = PageCosts(2, 8, 0, 8000, 8192, 4, 0.01, None)
    assert "pages/s" not in plan_report(_profile(mixed), PlanInputs(docs=1000, llm=False))
    assert "pages/s" in plan_report(_profile(mixed), PlanInputs(docs=1000, llm=False, pages_per_doc=3))


def test_pages_per_doc_without_page_costs_is_one_line() -> None:
    with pytest.raises(ConfigError, match="--pages-per-doc: the costs measured on sample") as caught:
        plan_report(_profile(None), PlanInputs(docs=1000, llm=False, pages_per_doc=10))
    assert "\n" not in str(caught.value)
    with pytest.raises(ConfigError, match="--pages-per-doc must be positive"):
        PlanInputs(docs=1000, pages_per_doc=0)


def test_a_sample_without_pdfs_cannot_project_pages(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("plain text, no pages\n" * 20)
    args = ["plan", "--docs", "1000", "--sample", str(tmp_path), "--pages-per-doc", "10", "--no-llm"]
    result = CliRunner().invoke(app, [*args, "--strategies", "sequential"])
    assert isinstance(result.exception, ConfigError) and "have no pages" in str(result.exception)


def test_scans_and_text_pdfs_measured(shared_data: Path, manpages: Path, tmp_path: Path) -> None:
    if not ocr.tesseract_available():
        pytest.skip("Tesseract not installed (apt-get install tesseract-ocr; pip install 'docmill[ocr]')")
    source = tmp_path / "source"
    source.mkdir()
    shutil.copy(sorted(manpages.rglob("*.pdf"))[0], source / "text.pdf")
    make_scans = [
        sys.executable,
        shared_data / "make-scans.py",
        source,
        tmp_path / "sample",
        "--max-pages",
        "1",
    ]
    subprocess.run([str(arg) for arg in make_scans], check=True, timeout=120, capture_output=True)
    (tmp_path / "sample" / "scans.csv").unlink()
    shutil.copy(source / "text.pdf", tmp_path / "sample" / "text.pdf.pdf")
    profile = measure_profile(tmp_path / "sample", strategies=["sequential"], min_seconds=0.1)
    costs = profile.pages
    assert costs is not None and costs.all_paged and costs.pages_ocr == 1 and costs.docs == 2
    assert costs.s_per_text_page is not None and costs.s_per_ocr_page is not None
    assert costs.s_per_ocr_page > 10 * costs.s_per_text_page  # rendering + Tesseract vs a text layer
