"""How good is `docmill plan --pages-per-doc`? Project scanned and text PDFs from a 10 % sample by the page.

A corpus of `--docs` man-page PDFs, half re-made as image-only scans (`make-scans.py`, 150 dpi, at most
4 pages; files 0, 1, 4, 5, … are scans, so every 10th file alternates scan and text PDF), a sample of
every 10th file, `measure_profile` on it (the code of `docmill plan --sample`), then the projection
of the whole corpus by the page (`for_pages`: the sample's seconds per OCR page and per text-layer
page at its OCR share × the corpus's mean pages per document) and, beside it, by the document
(the sample's mean seconds per document). Each is checked against the real pipeline over the whole
corpus with that strategy, at one worker per core, in a fresh interpreter (bench_plan_check.py's
`--measure`). Last, the report `docmill plan` prints for the seeds' 500,000 documents × 10 pages.

    python benchmarks/bench_plan_pages.py [--docs 40] [--strategies sequential,processes]

The man pages are read from $DOCMILL_SHARED_DATA/manpages (default ../shared/data/manpages).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pypdfium2 as pdfium
from bench_plan_check import corpus_dir, measured_wall

from docmill.bench.pages import for_pages
from docmill.bench.plan import PlanInputs, plan_report, project
from docmill.bench.profile import measure_profile


def build_corpus(manpages: Path, into: Path, docs: int) -> None:
    """``docs`` PDFs from the end of the corpus (never seen in training), half of them as scans."""
    pdfs = sorted(manpages.rglob("*.pdf"))[-docs:]
    originals = into.parent / "originals"
    originals.mkdir()
    for i, path in enumerate(pdfs):
        name = f"{i:03d}.pdf"
        shutil.copy(path, (originals if i % 4 < 2 else into) / name)
    make_scans = manpages.parent / "make-scans.py"
    subprocess.run([sys.executable, str(make_scans), str(originals), str(into)], check=True, timeout=900)
    (into / "scans.csv").unlink()


def pages_of(folder: Path) -> list[int]:
    counts = []
    for path in sorted(folder.glob("*.pdf")):
        pdf = pdfium.PdfDocument(path)
        counts.append(len(pdf))
        pdf.close()
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=40)
    parser.add_argument("--strategies", default="sequential,processes")
    args = parser.parse_args()
    strategies, cores = args.strategies.split(","), len(os.sched_getaffinity(0))
    with tempfile.TemporaryDirectory(prefix="docmill-plan-pages-") as tmp:
        corpus, sample = Path(tmp) / "corpus", Path(tmp) / "sample"
        corpus.mkdir()
        sample.mkdir()
        build_corpus(corpus_dir(), corpus, args.docs)
        for path in sorted(corpus.glob("*.pdf"))[::10]:
            shutil.copy(path, sample / path.name)
        pages = pages_of(corpus)
        per_doc = sum(pages) / len(pages)
        profile = measure_profile(sample, strategies=[s for s in strategies if s != "sequential"])
        print(f"load average before the full runs {os.getloadavg()[0]:.2f}")
        print(f"\n{len(pages)} documents, {sum(pages)} pages ({per_doc:.2f} per document)", end="")
        print(f"; sample {profile.sample_docs}")
        print(
            "| strategy | projected by page | projected by document | measured "
            "| error (page) | error (document) | measured pages/s |"
        )
        print("|---|---:|---:|---:|---:|---:|---:|")
        inputs = PlanInputs(docs=len(pages), llm=False, pages_per_doc=per_doc)
        for strategy in strategies:
            scaling = profile.scaling[strategy]
            by_page = project(for_pages(profile, per_doc), scaling, inputs).wall_s
            by_doc = project(profile, scaling, PlanInputs(docs=len(pages), llm=False)).wall_s
            workers = 1 if strategy == "sequential" else cores
            wall = measured_wall(strategy, workers, corpus, 1)
            errors = f"{(by_page - wall) / wall:+.1%} | {(by_doc - wall) / wall:+.1%}"
            print(
                f"| {strategy} | {by_page:.1f} s | {by_doc:.1f} s | {wall:.1f} s | {errors} "
                f"| {sum(pages) / wall:.2f} |"
            )
        print(f"load average after {os.getloadavg()[0]:.2f}\n")
        seeds = PlanInputs(docs=500_000, pages_per_doc=10, llm=False, deadline_s=7 * 86400)
        print(plan_report(profile, seeds))


if __name__ == "__main__":
    main()
