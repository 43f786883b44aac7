"""Acceptance: man pages never seen in training, re-made as image-only scans, classified through OCR.

40 PDFs are rendered to images and saved without a text layer (``make-scans.py``, 150 dpi); a model
is trained on the other man pages; ``docmill run --ocr auto`` must leave none empty, label at
least 85 % right, and export a page count per document that matches the scans'.
"""

from __future__ import annotations

import csv
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from docmill.processors.formats import ocr

pytestmark = pytest.mark.slow
UNSEEN = 40


def _docmill(*args: str | Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "docmill", *map(str, args)], capture_output=True, text=True, timeout=1200
    )
    assert done.returncode == 0, done.stderr[-2000:]


def _split(labels: Path, tmp: Path) -> tuple[dict[str, str], Path]:
    """The last 40 PDFs of the corpus (unseen) and a truth file of everything else (training)."""
    rows = list(csv.DictReader(labels.open(encoding="utf-8")))
    unseen = {r["path"]: r["label"] for r in [r for r in rows if r["format"] == "pdf"][-UNSEEN:]}
    train = tmp / "train.csv"
    with train.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["path", "label"])
        writer.writerows((r["path"], r["label"]) for r in rows if r["path"] not in unseen)
    return unseen, train


def test_unseen_scanned_man_pages_are_read_and_labelled(
    shared_data: Path, manpages: Path, manpage_labels: Path, tmp_path: Path
) -> None:
    if not ocr.tesseract_available():
        pytest.skip("Tesseract not installed (apt-get install tesseract-ocr; pip install 'docmill[ocr]')")
    unseen, train = _split(manpage_labels, tmp_path)
    originals = tmp_path / "originals"
    for path in unseen:
        (originals / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(manpages / path, originals / path)
    scans = tmp_path / "scans"
    subprocess.run([sys.executable, shared_data / "make-scans.py", originals, scans], check=True, timeout=600)
    pages = {r["path"]: int(r["pages"]) for r in csv.DictReader((scans / "scans.csv").open())}
    (scans / "scans.csv").unlink()
    _docmill("train", manpages, "--truth", train, "-o", tmp_path / "m.model", "--holdout", "0")
    db = tmp_path / "j.db"
    _docmill("run", scans, "-c", f"model:{tmp_path / 'm.model'}", "--ocr", "auto", "--db", db, "-w", "2")
    _docmill("export", "--db", db, "-o", tmp_path / "out.csv")
    rows = list(csv.DictReader((tmp_path / "out.csv").open(encoding="utf-8")))
    assert len(rows) == UNSEEN and [r["path"] for r in rows if r["status"] != "ok"] == []
    assert {r["path"]: int(r["pages"]) for r in rows} == pages
    assert all(r["pages_ocr"] == r["pages"] for r in rows)
    right = sum(unseen[r["path"]] == r["label"] for r in rows)
    assert right >= 0.85 * UNSEEN, f"{right}/{UNSEEN} labelled right"
