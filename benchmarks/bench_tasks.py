"""Several tasks per document, measured: one LLM request for every task, one per task, one run per task.

    DOCMILL_SHARED_DATA=/work/shared/data python benchmarks/bench_tasks.py            # 200 man pages
    DOCMILL_SHARED_DATA=/work/shared/data python benchmarks/bench_tasks.py --docs 100 --rpm 600

A labels file with two LLM tasks (``topic``: the man section, ``benchmarks/manpages.labels.yaml``;
``audience``: multi-label) and one keywords task (``language``), over ``--docs`` distinct man pages
(text and markdown), against the emulator (``--rpm`` requests per minute, 0.3 s median latency),
three variants side by side, each with its own emulator, journal and no response cache:

- ``all``: ``llm.tasks_per_request: all`` (the default): one request per document;
- ``one``: ``llm.tasks_per_request: one``: one request per task, a document's tasks concurrently;
- ``runs``: what it took before tasks: one run per task, each with a plain labels file.

Figures: requests and prompt tokens the emulator received, wall time, and the topic accuracy against
``manpages-labels.csv``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from docmill.cli.main import main
from docmill.llm.emulator import EmulatorConfig
from docmill.llm.emulator_server import EmulatorServer

HERE = Path(__file__).resolve().parent
RPM = [1200]
AUDIENCE = {
    "programmer": {
        "description": "Writes programs against it.",
        "keywords": ["function", "include", "struct"],
    },
    "user": {"description": "Runs it from the shell.", "keywords": ["command", "options", "shell"]},
    "administrator": {"description": "Runs the system.", "keywords": ["daemon", "root", "configuration"]},
}
LANGUAGE = {"c": {"keywords": ["include", "int", "char", "struct"]}, "perl": {"keywords": ["perl", "module"]}}


def _corpus(root: Path, shared: Path, docs: int) -> list[dict[str, str]]:
    """``docs`` man pages with distinct texts (copies would be answered once: duplicates)."""
    rows: list[dict[str, str]] = []
    seen: set[bytes] = set()
    for row in csv.DictReader((shared / "manpages-labels.csv").open()):
        data = (shared / "manpages" / row["path"]).read_bytes()
        if row["format"] in ("txt", "md") and data not in seen and len(rows) < docs:
            seen.add(data)
            rows.append(row)
            (root / row["path"]).parent.mkdir(parents=True, exist_ok=True)
            (root / row["path"]).write_bytes(data)
    return rows


def _files(folder: Path) -> dict[str, Path]:
    topic = yaml.safe_load((HERE / "manpages.labels.yaml").read_text())["labels"]
    tasks = {
        "topic": {"labels": topic},
        "audience": {"labels": AUDIENCE, "multi": True},
        "language": {"classifier": "keywords", "labels": LANGUAGE},
    }
    files = {"tasks": folder / "tasks.yaml", "topic": folder / "topic.yaml", "audience": folder / "aud.yaml"}
    files["tasks"].write_text(yaml.safe_dump({"tasks": tasks}))
    files["topic"].write_text(yaml.safe_dump({"labels": topic}))
    files["audience"].write_text(yaml.safe_dump({"labels": AUDIENCE}))
    return files


def _run(corpus: Path, labels: Path, db: Path, url: str, per_request: str, classifier: str = "llm") -> None:
    config = db.with_suffix(".yaml")  # the rate as the emulator's: no probe, no 429 to learn it from
    config.write_text(f"llm: {{cache: false, rpm: {RPM[0]}, tasks_per_request: {per_request}}}\n")
    args = ["run", str(corpus), "--labels", str(labels), "--db", str(db), "--progress", "none"]
    args += ["--config", str(config), "-s", "asyncio", "-c", classifier, "--model", "emulated-small"]
    assert main([*args, "--base-url", f"{url}/v1"]) == 0


def _topic_accuracy(db: Path, rows: list[dict[str, str]], column: str) -> float:
    out = db.with_suffix(".jsonl")
    assert main(["export", "--db", str(db), "--format", "jsonl", "-o", str(out)]) == 0
    got = {json.loads(line)["path"]: json.loads(line) for line in out.read_text().splitlines()}
    return sum(1 for r in rows if got[r["path"]].get(column) == r["label"]) / len(rows)


def _variant(name: str, corpus: Path, files: dict[str, Path], folder: Path, rows: Any, rpm: int) -> list[Any]:
    config = EmulatorConfig(rpm=rpm, tpm=0, latency_median=0.3, seed=3)
    with EmulatorServer(config) as server:
        started = time.perf_counter()
        if name == "runs":
            for task in ("topic", "audience"):
                _run(corpus, files[task], folder / f"{name}-{task}.db", server.url, "all")
            _run(corpus, files["tasks"], folder / f"{name}-language.db", server.url, "all", "keywords")
            db, column = folder / f"{name}-topic.db", "label"
        else:
            db, column = folder / f"{name}.db", "label_topic"
            _run(corpus, files["tasks"], db, server.url, name)
        seconds = time.perf_counter() - started
        stats = server.stats()
    accuracy = _topic_accuracy(db, rows, column)
    figures = [stats["requests"], stats["rate_limited"], f"{stats['tokens_in']:,}", f"{seconds:.1f}"]
    return [name, *figures, f"{accuracy:.3f}"]


def main_(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=200)
    parser.add_argument("--rpm", type=int, default=1200)
    args = parser.parse_args(argv)
    RPM[0] = args.rpm
    shared = Path(os.environ.get("DOCMILL_SHARED_DATA", HERE.parents[1] / "shared" / "data"))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        rows = _corpus(folder / "corpus", shared, args.docs)
        files = _files(folder)
        print(f"{len(rows)} documents, {args.rpm} RPM, 0.3 s median latency")
        print("| variant | requests | of which 429 | prompt tokens | seconds | topic accuracy |")
        print("|---|---:|---:|---:|---:|---:|")
        for name in ("all", "one", "runs"):
            row = _variant(name, folder / "corpus", files, folder, rows, args.rpm)
            print("| " + " | ".join(map(str, row)) + " |")


if __name__ == "__main__":
    main_()
