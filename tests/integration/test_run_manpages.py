"""A real run over the 1,200 man pages: every document ends in a terminal status, once."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from docmill.config import RunConfig
from docmill.journal.base import Query
from docmill.journal.sqlite import SqliteJournal
from docmill.outcome import Status
from docmill.runner import run_config

# Keywords for man sections; good enough to give every page some label (accuracy is not the point here).
MAN_LABELS = """labels:
  user-command:
    description: "A program a user runs from the shell (section 1)."
    keywords: [options, usage, "--help", command line, exit status]
  library-function:
    description: "A library function (section 3)."
    keywords: ["#include", library, return value, "const char", "int "]
  system-call:
    description: "A Linux system call (section 2)."
    keywords: [system call, syscall, errno, EINVAL, EFAULT, kernel]
  overview:
    description: "An overview of a topic, protocol or convention (section 7)."
    keywords: [overview, protocol, conventions, introduction]
  admin-command:
    description: "A command for system administration (section 8)."
    keywords: [daemon, administrator, root, configuration, service]
  file-format:
    description: "A file format or configuration file (section 5)."
    keywords: [file format, configuration file, entries, syntax, fields]
"""
TERMINAL = {s.value for s in Status}


def write_labels(folder: Path) -> Path:
    path = folder / "man-labels.yaml"
    path.write_text(MAN_LABELS)
    return path


def truth_paths(labels_csv: Path) -> set[str]:
    with labels_csv.open(encoding="utf-8") as handle:
        return {row["path"] for row in csv.DictReader(handle)}


@pytest.mark.parametrize("strategy", ["sequential", "processes"])
def test_every_man_page_ends_in_a_terminal_status(
    manpages: Path, manpage_labels: Path, tmp_path: Path, strategy: str
) -> None:
    db = tmp_path / "j.db"
    config = RunConfig(
        source=str(manpages), strategy=strategy, workers=2, labels=str(write_labels(tmp_path)),
        db=str(db), progress="none",
    )  # fmt: skip
    result = run_config(config)
    assert result.stopped is None and result.stats.done == 1200
    with SqliteJournal(db) as journal:
        records = list(journal.iter_documents(Query()))
    paths = [r.path for r in records]
    assert len(paths) == len(set(paths)) == 1200
    assert set(paths) == truth_paths(manpage_labels)
    assert {r.status for r in records} <= TERMINAL
    assert all("classifier" in r.result for r in records if r.status == "ok"), "a page skipped classification"
    failed = [(r.path, r.error_type, r.error_message) for r in records if r.status not in ("ok", "duplicate")]
    assert not failed, f"man pages that did not extract: {failed[:5]}"
