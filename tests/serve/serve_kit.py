"""Helpers of the dashboard tests: a corpus with awkward names, `docmill` in a subprocess, ports."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
BASE_URL = "http://127.0.0.1:8765"
LABELS_YAML = """\
labels:
  invoice:
    description: "A bill requesting payment for goods or services."
    keywords: [invoice, amount due, payment terms]
  report:
    description: "A document presenting findings."
    keywords: [report, quarterly, findings]
"""
BROKEN_PDF = "broken & ünïcode — scan.pdf"
BINARY = "firmware.bin"


@dataclass(frozen=True)
class Corpus:
    root: Path
    invoices: list[str]
    reports: list[str]

    @property
    def good(self) -> list[str]:
        return self.invoices + self.reports

    @property
    def bad(self) -> list[str]:
        return [BROKEN_PDF, BINARY]


def make_corpus(root: Path, n: int) -> Corpus:
    """``n`` invoices and ``n`` reports (odd characters in names), one broken PDF and one binary."""
    (root / "sub dir").mkdir(parents=True)
    invoices, reports = [], []
    for i in range(n):
        invoice = f"sub dir/invoice #{i} & ü — naïve.txt"
        (root / invoice).write_text(f"Invoice {i}. Amount due: {i * 10} EUR. Payment terms: 30 days.\n")
        report = f"report-{i:03d}.md"
        (root / report).write_text(f"# Quarterly report {i}\n\nOur findings for the quarter.\n")
        invoices.append(invoice)
        reports.append(report)
    (root / BROKEN_PDF).write_bytes(b"%PDF-1.4\n1 0 obj garbage, no xref, no trailer\n")
    (root / BINARY).write_bytes(bytes(range(256)) * 20)
    (root / "labels.yaml").write_text(LABELS_YAML)
    return Corpus(root, invoices, reports)


def docmill_command(*args: str, slow: bool = False) -> list[str]:
    """``docmill ARGS`` in this interpreter; ``slow`` adds the test-only ``slow:SECONDS`` classifier."""
    if slow:
        return [sys.executable, str(HERE / "slowrun.py"), *args]
    return [sys.executable, "-m", "docmill", *args]


def command_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])}


def docmill_run(source: Path, db: Path | str, *extra: str) -> None:
    """A real ``docmill run`` over ``source`` into the journal ``db``."""
    args = ["run", str(source), "--db", str(db), "-s", "threads", "-w", "2", "--progress", "none", *extra]
    done = subprocess.run(
        docmill_command(*args), env=command_env(), capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr


RPM, TPM = 3000, 500_000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=1).close()
            return
        except OSError as exc:
            if getattr(exc, "code", None):  # any HTTP answer means it is listening
                return
            time.sleep(0.1)
    raise AssertionError(f"nothing answered at {url}")
