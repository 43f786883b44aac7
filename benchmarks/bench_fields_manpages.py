"""Structured fields over the man-page corpus: how many documents get valid values from the emulator.

    DOCMILL_SHARED_DATA=/work/shared/data python benchmarks/bench_fields_manpages.py [--malformed 0.2]
        [--max-tokens-out 100]

Runs ``docmill run -c llm --labels benchmarks/manpages.fields.yaml`` (integer section, string name,
list of strings see_also) over every distinct page of the shared corpus (sources and contents; all
five formats) against ``docmill emulate``'s server over real HTTP, which sends a malformed reply to
``--malformed`` of the requests. Figures: documents with valid values, quarantined ones and their
reasons, and how the values compare with the page (its file's name, its manual section, the pages it
names under SEE ALSO).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import re
import shutil
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from docmill.cli.main import main
from docmill.llm.emulator import EmulatorConfig
from docmill.llm.emulator_server import EmulatorServer

FIELDS = Path(__file__).resolve().parent / "manpages.fields.yaml"


def distinct_pages(data: Path, limit: int | None) -> list[dict[str, str]]:
    rows: list[dict[str, str]] = []
    seen: set[object] = set()
    for row in csv.DictReader((data / "manpages-labels.csv").open()):
        digest = hashlib.sha256((data / "manpages" / row["path"]).read_bytes()).digest()
        if row["source_page"] not in seen and digest not in seen:
            rows.append(row)
            seen.update((row["source_page"], digest))
    return rows[:limit]


def run(data: Path, rows: list[dict[str, str]], folder: Path, options: argparse.Namespace) -> dict[str, Any]:
    for row in rows:
        target = folder / "corpus" / row["path"]
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(data / "manpages" / row["path"], target)
    (folder / "docmill.yaml").write_text(f"llm: {{cache: false, max_tokens_out: {options.max_tokens_out}}}\n")
    db, out = str(folder / "j.db"), folder / "out.jsonl"
    args = ["run", str(folder / "corpus"), "--labels", str(FIELDS), "--db", db, "--progress", "none"]
    args += ["--config", str(folder / "docmill.yaml"), "-s", options.strategy]
    args += ["-c", "llm", "--model", "emulated-small"]
    faults = EmulatorConfig(rpm=0, tpm=0, latency_median=0.0, seed=7, malformed=options.malformed)
    with EmulatorServer(faults) as server:
        started = time.perf_counter()
        main([*args, "--base-url", f"{server.url}/v1"])
        seconds = time.perf_counter() - started
        requests = server.stats()["requests"]
    main(["export", "--db", db, "--format", "jsonl", "-o", str(out)])
    exported = [json.loads(line) for line in out.read_text().splitlines()]
    return {"rows": exported, "requests": requests, "seconds": seconds}


def figures(rows: list[dict[str, str]], result: dict[str, Any]) -> list[str]:
    truth = {Path(row["path"]).name: row for row in rows}
    exported = result["rows"]
    valid = [r for r in exported if r["status"] == "ok"]
    reasons = Counter(str(r.get("error") or "").split(":")[1][:50] for r in exported if r["status"] != "ok")
    pages = [truth[Path(r["path"]).name] for r in valid]
    named = sum(
        str(r["field_name"]).replace(" ", "_").casefold() == p["source_page"].rsplit(".", 1)[0].casefold()
        for r, p in zip(valid, pages, strict=True)
    )
    sections = sum(r["field_section"] == int(p["section"]) for r, p in zip(valid, pages, strict=True))
    listed = [str(ref) for r in valid for ref in r["field_see_also"]]
    refs = sum(bool(re.fullmatch(r"\S+\(\d\w*\)", ref)) for ref in listed)
    n, v = len(exported), max(1, len(valid))
    return [
        f"documents {n}, requests {result['requests']}, {result['seconds']:.1f} s",
        f"valid values: {len(valid)} ({100 * len(valid) / n:.1f} %); not: "
        + (", ".join(f"{count} × {why}" for why, count in reasons.most_common()) or "none"),
        f"name = the page's file name: {100 * named / v:.1f} %; "
        f"section = the page's: {100 * sections / v:.1f} %",
        f"see_also: {len(listed)} entries, {100 * refs / max(1, len(listed)):.1f} % page references; "
        f"{sum(bool(r['field_see_also']) for r in valid)} documents name some",
    ]


def main_cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--malformed", type=float, default=0.2, help="share of malformed replies")
    parser.add_argument("--docs", type=int, default=None, help="at most this many pages")
    parser.add_argument("--strategy", default="threads")
    parser.add_argument("--max-tokens-out", type=int, default=100, help="llm.max_tokens_out (default 100)")
    options = parser.parse_args()
    data = Path(os.environ.get("DOCMILL_SHARED_DATA", "/work/shared/data"))
    rows = distinct_pages(data, options.docs)
    with tempfile.TemporaryDirectory(prefix="docmill-fields-") as folder:
        result = run(data, rows, Path(folder), options)
    print("\n".join(figures(rows, result)))


if __name__ == "__main__":
    main_cli()
