"""``fields:`` end to end: typed values from the emulator over HTTP, exported as columns, or the
document quarantined with the reason when the answer leaves the schema."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest

from docmill.cli.main import main
from docmill.llm.emulator import EmulatorConfig
from docmill.llm.emulator_server import EmulatorServer

N = 12
FIELDS = """\
fields:
  section: {type: integer, required: true, description: "The manual section, 1 to 8."}
  name: {type: string, required: true, description: "The command, function or file documented."}
  see_also: {type: string, list: true, description: "The pages named under SEE ALSO."}
"""
KIND = "  kind: {type: enum, values: [command, function, format], required: true}\n"


@pytest.fixture
def corpus(tmp_path: Path, manpages: Path, manpage_labels: Path) -> Path:
    rows = [r for r in csv.DictReader(manpage_labels.open()) if r["format"] == "txt"][:N]
    for row in rows:
        (tmp_path / "corpus" / row["path"]).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(manpages / row["path"], tmp_path / "corpus" / row["path"])
    return tmp_path / "corpus"


def _run(corpus: Path, fields: str, config: EmulatorConfig, *, per_task: bool = False) -> tuple[str, int]:
    folder = corpus.parent
    (folder / "fields.yaml").write_text(fields)
    (folder / "docmill.yaml").write_text(
        f"llm: {{cache: false, tasks_per_request: {'one' if per_task else 'all'}}}\n"
    )
    db = str(folder / "j.db")
    args = ["run", str(corpus), "--labels", str(folder / "fields.yaml"), "--db", db, "--progress", "none"]
    args += ["--config", str(folder / "docmill.yaml"), "-s", "threads", "--quarantine-after", "1"]
    with EmulatorServer(config) as server:
        code = main([*args, "-c", "llm", "--model", "emulated-small", "--base-url", f"{server.url}/v1"])
        requests = server.stats()["requests"]
    assert code in (0, 1)
    return db, requests


def _rows(db: str, folder: Path, fmt: str = "csv") -> list[dict[str, object]]:
    out = folder / f"out.{fmt}"
    assert main(["export", "--db", db, "--format", fmt, "-o", str(out)]) == 0
    if fmt == "csv":
        return list(csv.DictReader(out.open()))
    return [json.loads(line) for line in out.read_text().splitlines()]


def test_fields_are_extracted_typed_and_exported(corpus: Path) -> None:
    db, requests = _run(corpus, FIELDS, EmulatorConfig(rpm=0, tpm=0, latency_median=0.0, seed=3))
    assert requests == N
    rows = _rows(db, corpus.parent, "jsonl")
    valid = [r for r in rows if r["status"] == "ok"]
    assert len(valid) >= 0.95 * N
    for row in valid:
        assert isinstance(row["field_section"], int) and isinstance(row["field_name"], str)
        assert isinstance(row["field_see_also"], list) or row["field_see_also"] is None
    header = list(_rows(db, corpus.parent)[0])
    assert header[-3:] == ["field_section", "field_name", "field_see_also"]


def test_fields_with_tasks_per_request_one_are_one_more_request(corpus: Path) -> None:
    tasks = (
        "tasks:\n  topic:\n    labels: {command: {keywords: [options]}, function: {keywords: [include]}}\n"
    )
    config = EmulatorConfig(rpm=0, tpm=0, latency_median=0.0, seed=3)
    db, requests = _run(corpus, tasks + FIELDS, config, per_task=True)
    assert requests == N * 2  # the task, then the fields
    rows = _rows(db, corpus.parent)
    assert all(r["label_topic"] in ("command", "function") and r["field_section"] for r in rows)


def test_an_answer_outside_the_schema_is_quarantined_with_the_reason(corpus: Path) -> None:
    bad = EmulatorConfig(rpm=0, tpm=0, latency_median=0.0, seed=3, bad_label=1.0)  # enums: not-a-label
    db, requests = _run(corpus, FIELDS + KIND, bad)
    assert requests == N * 3  # asked, then invalid_retries (2) more
    rows = _rows(db, corpus.parent)
    assert {r["status"] for r in rows} == {"quarantined"}
    assert all(
        r["error"] == "InvalidModelOutput: field 'kind': 'not-a-label' is not one of 3 values" for r in rows
    )
