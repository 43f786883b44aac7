"""``docmill run -w 100000`` on a handful of documents: done in seconds, a bounded pool, one warning;
strategy options a strategy does not take: one line, exit 2, before any work."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from docmill.executors import sizing

pytestmark = pytest.mark.timeout(120)

DOCS = 5
LABELS = """labels:
  invoice:
    description: "A bill requesting payment."
    keywords: [invoice, amount due, payment terms]
"""


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    root = tmp_path / "corpus"
    root.mkdir()
    for i in range(DOCS):
        (root / f"doc{i}.txt").write_text(f"Invoice {i}. Amount due: {i * 100} EUR. Payment terms apply.")
    (root / "labels.yaml").write_text(LABELS)
    return root


def docmill(*args: str, cwd: Path) -> subprocess.Popen[str]:
    cmd = [sys.executable, "-m", "docmill", *args]
    return subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def most_children(proc: subprocess.Popen[str]) -> int:
    """The most processes ``proc`` had below it at once, sampled until it exits."""
    parent, most = psutil.Process(proc.pid), 0
    while proc.poll() is None:
        try:
            most = max(most, len(parent.children(recursive=True)))
        except psutil.NoSuchProcess:
            break
        time.sleep(0.005)
    return most


@pytest.mark.parametrize("strategy", ["processes", "queue"])
def test_a_hundred_thousand_workers_on_five_documents(strategy: str, corpus: Path, tmp_path: Path) -> None:
    db = tmp_path / "docmill.db"
    started = time.monotonic()
    proc = docmill("run", str(corpus), "-s", strategy, "-w", "100000", "--db", str(db), cwd=tmp_path)
    children = most_children(proc)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert time.monotonic() - started < 30
    ceiling, _ = sizing.process_ceiling()
    warnings = [line for line in err.splitlines() if "workers 100000" in line]
    assert len(warnings) == 1 and warnings[0].startswith(
        f"docmill: warning: workers 100000 capped at {ceiling} worker processes ("
    )
    expected = min(DOCS, ceiling)  # one per document, within what the machine can take
    assert children <= expected + 1  # and a resource tracker at most
    status = subprocess.run(
        [sys.executable, "-m", "docmill", "status", "--db", str(db), "--json"],
        capture_output=True, text=True, cwd=tmp_path, timeout=60, check=True,
    )  # fmt: skip
    executor = json.loads(status.stdout)["live"]["executor"]
    assert executor["workers"] == expected and executor["completed"] == DOCS


@pytest.mark.parametrize(
    ("strategy", "options", "words"),
    [
        ("processes", "{start_method: bogus}", "strategy_options.start_method: invalid value 'bogus'"),
        ("asyncio", "{sync_threads: 0}", "strategy_options.sync_threads: invalid value 0"),
        ("asyncio", "{start_method: fork}", "strategy_options.start_method: unknown setting"),
        ("threads", "{bogus: 1}", "strategy_options.bogus: unknown setting"),
        ("queue", "{max_in_flight: 0}", "strategy_options.max_in_flight: invalid value 0"),
        ("processes", "{timeout_grace: -1}", "strategy_options.timeout_grace: invalid value -1.0"),
    ],
)
def test_bad_strategy_options_are_one_line_before_any_work(
    strategy: str, options: str, words: str, corpus: Path, tmp_path: Path
) -> None:
    (tmp_path / "docmill.yaml").write_text(f"strategy_options: {options}\n")
    proc = docmill("run", str(corpus), "-s", strategy, "--db", "docmill.db", cwd=tmp_path)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 2, err
    assert err.strip().count("\n") == 0 and words in err and "Traceback" not in err
    assert not (tmp_path / "docmill.db").exists()  # refused before the journal was opened
