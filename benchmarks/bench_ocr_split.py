"""A long scan at the end of a run: pages of one PDF OCRed by one thread (`ocr_threads: 1`, the
default) or by a pool of one per core (`ocr_threads: 0`), side by side.

Two corpora of image-only man-page scans (`make-scans.py`, 150 dpi):

* `tail`: `--small` one-page scans, then `zz-long.pdf`, the longest man page (15 pages) as a scan,
  last in the source's order, so with one thread per document it holds one worker alone at the end;
* `bulk`: `--small` × 2 one-page scans only: every worker always busy, where extra OCR threads can
  only cost (oversubscription).

Each case runs the real pipeline (DirectorySource → ExtractText, OCR auto) with a strategy at one
worker per core, in a forked child, alternating the two settings `--repeat` times; wall seconds and
pages/s are medians. The texts of both settings are checked to be identical.

    python benchmarks/bench_ocr_split.py [--small 10] [--repeat 3] [--strategies processes,queue]

The man pages are read from $DOCMILL_SHARED_DATA/manpages (default ../shared/data/manpages).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import pypdfium2 as pdfium
from bench_plan_check import corpus_dir

from docmill.bench.isolation import in_child
from docmill.bench.profile import timed_run
from docmill.clock import SYSTEM_CLOCK
from docmill.job import Job
from docmill.pipeline import Pipeline
from docmill.processors.extract import ExtractText
from docmill.sources.files import DirectorySource

SETTINGS = {"1 (default)": 1, "0 (one per core)": 0}


def scans(pdfs: list[Path], out: Path, max_pages: int) -> None:
    originals = out.parent / f"originals-{out.name}-{max_pages}"
    originals.mkdir()
    for path in pdfs:
        shutil.copy(path, originals / path.name)
    make_scans = corpus_dir().parent / "make-scans.py"
    command = [sys.executable, str(make_scans), str(originals), str(out), "--max-pages", str(max_pages)]
    subprocess.run(command, check=True, timeout=900, capture_output=True)
    (out / "scans.csv").unlink()


def longest(pdfs: list[Path]) -> Path:
    def pages(path: Path) -> int:
        pdf = pdfium.PdfDocument(path)
        try:
            return len(pdf)
        finally:
            pdf.close()

    return max(pdfs, key=pages)


def build(root: Path, small: int) -> dict[str, Path]:
    pdfs = sorted(corpus_dir().rglob("*.pdf"))
    tail, bulk = root / "tail", root / "bulk"
    scans(pdfs[: small * 2], bulk, 1)
    tail.mkdir()
    for path in sorted(bulk.glob("*.pdf"))[:small]:
        shutil.copy(path, tail / path.name)
    long_dir = root / "long"
    scans([longest(pdfs)], long_dir, 100)
    (next(long_dir.glob("*.pdf"))).rename(tail / "zz-long.pdf")
    return {"tail": tail, "bulk": bulk}


def case(strategy: str, folder: Path, threads: int) -> tuple[float, int, list[str]]:
    job = Job(DirectorySource(folder), Pipeline(ExtractText(ocr_threads=threads)))
    refs = list(job.source)
    workers = 1 if strategy == "sequential" else len(os.sched_getaffinity(0))
    run = in_child(timed_run, strategy, workers, job, refs, SYSTEM_CLOCK, timeout=1800)
    pages = sum(int((o.result or {}).get("pages", 0)) for o in run.outcomes)
    texts = sorted(f"{o.ref.id}:{(o.result or {}).get('chars')}" for o in run.outcomes)
    return run.usage.wall_seconds, pages, texts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--strategies", default="processes,queue")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="docmill-ocr-split-") as tmp:
        corpora = build(Path(tmp), args.small)
        walls: dict[tuple[str, str, str], list[float]] = {}
        pages: dict[str, int] = {}
        for _ in range(args.repeat):
            for corpus, folder in corpora.items():
                for strategy in args.strategies.split(","):
                    seen = set()
                    for name, threads in SETTINGS.items():
                        wall, pages[corpus], texts = case(strategy, folder, threads)
                        walls.setdefault((corpus, strategy, name), []).append(wall)
                        seen.add(tuple(texts))
                    assert len(seen) == 1, "the two settings read different texts"
        print(f"load average {os.getloadavg()[0]:.2f}; medians of {args.repeat}")
        print("| corpus | pages | strategy | ocr_threads | wall | pages/s | vs 1 |")
        print("|---|---:|---|---|---:|---:|---:|")
        for (corpus, strategy, name), values in walls.items():
            wall = statistics.median(values)
            base = statistics.median(walls[(corpus, strategy, "1 (default)")])
            print(
                f"| {corpus} | {pages[corpus]} | {strategy} ×{len(os.sched_getaffinity(0))} | {name} "
                f"| {wall:.1f} s | {pages[corpus] / wall:.2f} | {base / wall:.2f}× |"
            )


if __name__ == "__main__":
    main()
