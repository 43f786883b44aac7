"""Which files the parent looks into for pages to split: regular ``.pdf`` files only."""

from __future__ import annotations

import os
from pathlib import Path

from docmill.page_split import _regular_pdf


def test_only_regular_pdf_files_are_opened_by_the_parent(tmp_path: Path) -> None:
    (tmp_path / "scan.PDF").write_bytes(b"%PDF-1.4\n")
    (tmp_path / "notes.txt").write_text("text")
    os.mkfifo(tmp_path / "pipe.pdf")  # opening it would wait for a writer forever
    (tmp_path / "folder.pdf").mkdir()
    assert _regular_pdf(str(tmp_path / "scan.PDF"))
    for name in ("notes.txt", "pipe.pdf", "folder.pdf", "gone.pdf"):
        assert not _regular_pdf(str(tmp_path / name)), name
