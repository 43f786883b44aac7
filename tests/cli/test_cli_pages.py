"""Pages beside documents through the command line: the run's summary and `docmill status`."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from docmill.cli.main import main

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "corpus"


def test_run_summary_and_status_speak_pages(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pdfs = sorted(EXAMPLES.rglob("*.pdf"))  # one-page PDFs with a text layer, one of them corrupt
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for i, pdf in enumerate(pdfs):
        shutil.copy(pdf, corpus / f"{i:02d}.pdf")
    db = str(tmp_path / "j.db")
    args = ["run", str(corpus), "--db", db, "-s", "sequential", "-c", "none", "--ocr", "never"]
    assert main([*args, "--progress", "log"]) == 0
    assert f"{len(pdfs) - 1} pages, " in capsys.readouterr().err
    assert main(["status", "--db", db, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["pages"] == len(pdfs) - 1 and data["pages_per_second"] > 0
    assert main(["status", "--db", db]) == 0
    assert f"pages {len(pdfs) - 1:,} · " in capsys.readouterr().out
