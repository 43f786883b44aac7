"""A long scan at the end of a run: the whole document in one worker (the default), its pages
split in parts across the workers (`split_pages: 4`), or OCRed by a pool of threads inside its one
worker (`ocr_threads: 0`), side by side.

Two corpora of image-only man-page scans (`make-scans.py`, 150 dpi):

* `tail`: `--small` one-page scans, then `zz-long.pdf`, the longest man page (15 pages) as a scan,
  last in the source's order, so with one thread per document it holds one worker alone at the end;
* `bulk`: `--small` × 2 one-page scans only: every worker always busy, where extra OCR threads can
  only cost (oversubscription).

Each case is a whole run (``docmill.runner.run``: DirectorySource → ExtractText, OCR auto, an
in-memory journal) with a strategy at one worker per core, in a forked child, alternating the
settings `--repeat` times; wall seconds and pages/s are medians. The texts of every setting are
checked to be identical.

    python benchmarks/bench_ocr_split.py [--small 10] [--repeat 3] [--strategies processes,queue]
        [--corpora tail,bulk] [--settings whole,split,split16,threads] [--long-pages 0]

``--long-pages N`` repeats the long scan's pages until it has N (a longer scanned report).

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
from typing import Any

import pypdfium2 as pdfium
from bench_plan_check import corpus_dir

from docmill.bench.isolation import in_child
from docmill.journal.sqlite import SqliteJournal
from docmill.outcome import Outcome
from docmill.pipeline import Pipeline
from docmill.processors.extract import ExtractText
from docmill.progress import NullReporter
from docmill.runner import run
from docmill.sources.files import DirectorySource

SETTINGS = {
    "whole": ("split_pages: 0 (whole document per worker)", {"split_pages": 0}),
    "split": ("split_pages: 4 (default)", {}),
    "split16": ("split_pages: 16", {"split_pages": 16}),
    "threads": ("ocr_threads: 0 (one per core), no split", {"ocr_threads": 0, "split_pages": 0}),
}


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


def lengthen(path: Path, pages: int) -> None:
    """Make the scan at ``path`` ``pages`` long by repeating its pages (a longer scanned report)."""
    source, longer = pdfium.PdfDocument(path), pdfium.PdfDocument.new()
    while len(longer) < pages:
        longer.import_pages(source, list(range(min(len(source), pages - len(longer)))))
    longer.save(str(path) + ".long")
    source.close()
    longer.close()
    Path(str(path) + ".long").replace(path)


def build(root: Path, small: int, long_pages: int = 0) -> dict[str, Path]:
    pdfs = sorted(corpus_dir().rglob("*.pdf"))
    tail, bulk = root / "tail", root / "bulk"
    scans(pdfs[: small * 2], bulk, 1)
    tail.mkdir()
    for path in sorted(bulk.glob("*.pdf"))[:small]:
        shutil.copy(path, tail / path.name)
    long_dir = root / "long"
    scans([longest(pdfs)], long_dir, 100)
    (next(long_dir.glob("*.pdf"))).rename(tail / "zz-long.pdf")
    if long_pages:
        lengthen(tail / "zz-long.pdf", long_pages)
    return {"tail": tail, "bulk": bulk}


class _Kept(NullReporter):
    def __init__(self) -> None:
        self.outcomes: list[Outcome] = []

    def update(self, outcome: Outcome) -> None:
        self.outcomes.append(outcome)


def _whole_run(
    strategy: str, workers: int, folder: Path, options: dict[str, Any]
) -> tuple[float, list[Outcome]]:
    kept = _Kept()
    pipeline = Pipeline(ExtractText(**options))
    result = run(DirectorySource(folder), pipeline, executor=strategy, workers=workers,
                 journal=SqliteJournal(":memory:"), reporter=kept)  # fmt: skip
    return result.stats.wall_seconds, kept.outcomes


def case(strategy: str, folder: Path, options: dict[str, Any]) -> tuple[float, int, list[str]]:
    workers = 1 if strategy == "sequential" else len(os.sched_getaffinity(0))
    wall, outcomes = in_child(_whole_run, strategy, workers, folder, options, timeout=1800)
    pages = sum(int((o.result or {}).get("pages", 0)) for o in outcomes)
    texts = sorted(f"{o.ref.id}:{(o.result or {}).get('chars')}" for o in outcomes)
    return wall, pages, texts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--strategies", default="processes,queue")
    parser.add_argument("--corpora", default="tail")
    parser.add_argument("--long-pages", type=int, default=0, help="repeat the long scan's pages to this many")
    parser.add_argument("--settings", default="whole,split16,split,threads")
    args = parser.parse_args()
    settings = args.settings.split(",")
    with tempfile.TemporaryDirectory(prefix="docmill-ocr-split-") as tmp:
        built = build(Path(tmp), args.small, args.long_pages)
        corpora = {k: v for k, v in built.items() if k in args.corpora.split(",")}
        walls: dict[tuple[str, str, str], list[float]] = {}
        pages: dict[str, int] = {}
        loads = []
        for _ in range(args.repeat):
            for corpus, folder in corpora.items():
                for strategy in args.strategies.split(","):
                    seen = set()
                    for name in settings:
                        loads.append(os.getloadavg()[0])
                        wall, pages[corpus], texts = case(strategy, folder, SETTINGS[name][1])
                        walls.setdefault((corpus, strategy, name), []).append(wall)
                        seen.add(tuple(texts))
                    assert len(seen) == 1, "the settings read different texts"
        print(f"load average {min(loads):.1f}-{max(loads):.1f}; medians of {args.repeat}")
        print("| corpus | pages | strategy | setting | wall | pages/s | vs whole |")
        print("|---|---:|---|---|---:|---:|---:|")
        for (corpus, strategy, name), values in walls.items():
            wall = statistics.median(values)
            base = statistics.median(walls[(corpus, strategy, settings[0])])
            print(
                f"| {corpus} | {pages[corpus]} | {strategy} ×{len(os.sched_getaffinity(0))} "
                f"| {SETTINGS[name][0]} | {wall:.1f} s | {pages[corpus] / wall:.2f} | {base / wall:.2f}× |"
            )


if __name__ == "__main__":
    main()
