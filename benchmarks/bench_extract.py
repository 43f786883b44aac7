"""Extraction speed per format on the man-page corpus, with the alternatives side by side.

Usage: python benchmarks/bench_extract.py [--data DIR] [--repeat N] [--limit N]

For each format, every document of that format is extracted ``--repeat`` times in one process (one
thread); the table shows the best pass. Alternatives measured in the same run: pypdf against
pypdfium2 for PDFs, python-docx against docmill's streaming reader for DOCX. Figures are ms per
document and MB/s of input; on a shared machine prefer the ratios to the absolute numbers.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from docmill.document import Document, DocumentRef
from docmill.processors.extract import ExtractText, library_versions

REPO = Path(__file__).resolve().parents[1]
Extractor = Callable[[str, bytes], str]


def docmill_extractor() -> Extractor:
    extract = ExtractText()

    def run(name: str, data: bytes) -> str:
        return extract.process(Document(DocumentRef(name, name), "", content=data)).text or ""

    return run


def pypdf_extractor() -> Extractor:
    from pypdf import PdfReader

    def run(name: str, data: bytes) -> str:
        return "\f".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)

    return run


def python_docx_extractor() -> Extractor:
    import docx

    def run(name: str, data: bytes) -> str:
        return "\n".join(p.text for p in docx.Document(io.BytesIO(data)).paragraphs)

    return run


ALTERNATIVES: dict[str, list[tuple[str, Callable[[], Extractor]]]] = {
    "pdf": [("pypdf", pypdf_extractor)],
    "docx": [("python-docx", python_docx_extractor)],
}


def load(data_dir: Path, limit: int | None) -> dict[str, list[tuple[str, bytes]]]:
    """Documents of the man-page corpus grouped by format."""
    by_format: dict[str, list[tuple[str, bytes]]] = {}
    with (data_dir / "manpages-labels.csv").open(newline="") as handle:
        for row in csv.DictReader(handle):
            docs = by_format.setdefault(row["format"], [])
            if limit is None or len(docs) < limit:
                docs.append((row["path"], (data_dir / "manpages" / row["path"]).read_bytes()))
    return by_format


def best_pass(extractor: Extractor, docs: list[tuple[str, bytes]], repeat: int) -> tuple[float, list[float]]:
    """(seconds of the fastest full pass, per-document seconds of that pass)."""
    best: tuple[float, list[float]] = (float("inf"), [])
    for _ in range(repeat):
        times = []
        for name, data in docs:
            started = time.perf_counter()
            extractor(name, data)
            times.append(time.perf_counter() - started)
        if sum(times) < best[0]:
            best = (sum(times), times)
    return best


def row(
    fmt: str, tool: str, docs: list[tuple[str, bytes]], repeat: int, make: Callable[[], Extractor]
) -> str:
    total, times = best_pass(make(), docs, repeat)
    megabytes = sum(len(data) for _, data in docs) / 1e6
    ms = sorted(t * 1000 for t in times)
    p95 = ms[min(len(ms) - 1, int(len(ms) * 0.95))]
    return (
        f"| {fmt:<5} | {tool:<12} | {len(docs):>5} | {megabytes:>6.2f} | {total * 1000 / len(docs):>7.2f} "
        f"| {statistics.median(ms):>7.2f} | {p95:>7.2f} | {megabytes / total:>6.1f} |"
    )


def main() -> None:
    default = Path(os.environ.get("DOCMILL_SHARED_DATA", REPO.parent / "shared" / "data"))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=default, help="folder with manpages/ and its labels CSV")
    parser.add_argument("--repeat", type=int, default=3, help="passes per extractor; the best is shown")
    parser.add_argument("--limit", type=int, default=None, help="at most this many documents per format")
    args = parser.parse_args()
    by_format = load(args.data, args.limit)
    print(f"python {platform.python_version()}, {os.cpu_count()} CPUs, libraries {library_versions()}")
    print(f"best of {args.repeat} passes, one thread\n")
    print("| format | extractor | docs | MB | ms/doc | median ms | p95 ms | MB/s |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for fmt in ("txt", "md", "html", "pdf", "docx"):
        docs = by_format.get(fmt, [])
        if not docs:
            continue
        print(row(fmt, "docmill", docs, args.repeat, docmill_extractor))
        for tool, make in ALTERNATIVES.get(fmt, []):
            print(row(fmt, tool, docs, args.repeat, make))


if __name__ == "__main__":
    main()
