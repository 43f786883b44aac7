"""Page-split extraction (``extract.split_pages``) under every strategy, against unsplit sequential.

The corpus is built here: image-only PDFs (text drawn with PIL, no text layer) read by Tesseract.
A 7-page scan becomes parts of 2 pages; a copy of it must be recorded ``duplicate`` once; a short
scan and a text file pass through unsplit. Every splitting strategy must record one row per
document with the same text, label and page count as the unsplit sequential run; the others are
refused in one line. A part that crashes or fails its worker gives its document one row; a run
stopped between parts records nothing for that document and the next run completes it.
"""

from __future__ import annotations

import asyncio
import io
import multiprocessing
import os
import shutil
import signal
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import pypdfium2 as pdfium
import pytest
from contract_kit import IN_PROCESS, key

from docmill.document import Document
from docmill.errors import RunStoppedError
from docmill.executors import get_executor
from docmill.executors.sequential import SequentialExecutor
from docmill.job import Job
from docmill.journal.sqlite import SqliteJournal
from docmill.outcome import Outcome, Status
from docmill.page_split import SPLITTING, PageSplit
from docmill.pipeline import Pipeline
from docmill.processors.base import AsyncProcessor, Processor
from docmill.processors.extract import ExtractText
from docmill.processors.formats import ocr
from docmill.progress import NullReporter
from docmill.reader import open_journal
from docmill.runner import run
from docmill.sources.files import DirectorySource

pytestmark = pytest.mark.skipif(
    not ocr.tesseract_available(), reason="Tesseract not installed (apt-get install tesseract-ocr)"
)
WORDS = ("invoice number seven", "quarterly report", "printing press", "nothing but the truth")


def _scan(lines: list[str]) -> bytes:
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default(size=40)
    images = []
    for line in lines:
        image = Image.new("L", (900, 160), 255)
        ImageDraw.Draw(image).text((30, 50), line, fill=0, font=font)
        images.append(image)
    buffer = io.BytesIO()
    images[0].save(buffer, "PDF", save_all=True, append_images=images[1:])
    return buffer.getvalue()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("scans")
    (root / "a-long.pdf").write_bytes(_scan([f"{WORDS[i % 4]} page {i + 1}" for i in range(7)]))
    shutil.copy(root / "a-long.pdf", root / "b-copy.pdf")
    (root / "c-short.pdf").write_bytes(_scan(["printing press"]))
    (root / "d-note.txt").write_text("quarterly report in plain text\n")
    return root


class FirstWord(Processor):
    """Labels a document by its first word: the classification that runs on the joined text."""

    name: ClassVar[str] = "first-word"

    def process(self, doc: Document) -> Document:
        words = (doc.text or "").split()
        return doc.with_metadata(label=words[0].lower() if words else None, words=len(words))


class AsyncFirstWord(AsyncProcessor):
    """FirstWord as a coroutine: the I/O stage ``staged`` runs in the parent (an LLM call's place)."""

    name: ClassVar[str] = "first-word-async"

    async def aprocess(self, doc: Document) -> Document:
        await asyncio.sleep(0)
        return FirstWord().process(doc)


class CrashingPart(ExtractText):
    """ExtractText whose part of pages 3-4 dies (``os._exit``), fails, or stops the run."""

    how: ClassVar[str] = "exit"

    def process(self, doc: Document) -> Document:
        if doc.ref.pages == (2, 4) and doc.ref.id == "a-long.pdf":
            if self.how == "exit":
                os._exit(3)
            if self.how == "stop":
                raise RunStoppedError("the endpoint is gone")
            raise ValueError("part of pages 3-4 is broken")
        return super().process(doc)


class KillingPart(CrashingPart):
    """Its part of pages 3-4 SIGKILLs the run's own process (the worker's parent)."""

    def process(self, doc: Document) -> Document:
        if doc.ref.pages == (2, 4) and doc.ref.id == "a-long.pdf":
            os.kill(os.getppid(), signal.SIGKILL)  # pending at once: the run records nothing more
            os._exit(1)
        return ExtractText.process(self, doc)


class FailingPart(CrashingPart):
    how: ClassVar[str] = "raise"


class StoppingPart(CrashingPart):
    how: ClassVar[str] = "stop"


def _run(corpus: Path, strategy: str, db: Path, split: int, extract: type[ExtractText] = ExtractText) -> Any:
    pipeline = Pipeline(extract(ocr="always", split_pages=split), FirstWord())
    return run(DirectorySource(corpus), pipeline, executor=strategy, workers=2, journal=SqliteJournal(db))


def _rows(db: Path) -> dict[str, Mapping[str, Any]]:
    with open_journal(db) as journal:
        return {row["path"]: row for row in journal.rows()}


def _outcomes(corpus: Path, strategy: str, split: int, tmp: Path, **kw: Any) -> list[Outcome]:
    """What the run's reporter was given: one outcome per document (before de-duplication)."""
    kept = _Kept()
    pipeline = Pipeline(kw.get("extract", ExtractText)(ocr="always", split_pages=split), FirstWord())
    db = SqliteJournal(tmp / f"{strategy}-{split}.db")
    run(DirectorySource(corpus), pipeline, executor=strategy, workers=2, journal=db, reporter=kept)
    db.close()
    return kept.outcomes


class _Kept(NullReporter):
    def __init__(self) -> None:
        self.outcomes: list[Outcome] = []

    def update(self, outcome: Outcome) -> None:
        self.outcomes.append(outcome)


@pytest.fixture(scope="module")
def unsplit(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> list[tuple[object, ...]]:
    outcomes = _outcomes(corpus, "sequential", 0, tmp_path_factory.mktemp("oracle"))
    return sorted(key(o) for o in outcomes)


def test_split_runs_record_what_the_unsplit_run_does(
    executor_name: str, corpus: Path, unsplit: list[tuple[object, ...]], tmp_path: Path
) -> None:
    job = Job(DirectorySource(corpus), Pipeline(ExtractText(ocr="always", split_pages=2)))
    with get_executor(executor_name, workers=1) as strategy:
        assert PageSplit.of(job, strategy) is not None  # it does split
    outcomes = _outcomes(corpus, executor_name, 2, tmp_path)
    assert sorted(key(o) for o in outcomes) == unsplit  # one outcome per document, nothing else
    by_id = {o.ref.id: o for o in outcomes}
    long = by_id["a-long.pdf"].result or {}
    assert long["pages"] == 7 and long["pages_ocr"] == 7 and long["label"] == "invoice"
    assert all(o.ref.pages is None for o in outcomes)


@pytest.mark.parametrize("strategy", ["staged", "asyncio"])
def test_an_async_classifier_runs_on_the_joined_text(strategy: str, corpus: Path, tmp_path: Path) -> None:
    def outcomes(strategy: str, split: int) -> list[tuple[object, ...]]:
        kept = _Kept()
        pipeline = Pipeline(ExtractText(ocr="always", split_pages=split), AsyncFirstWord())
        db = SqliteJournal(tmp_path / f"{strategy}-{split}.db")
        run(DirectorySource(corpus), pipeline, executor=strategy, workers=2, journal=db, reporter=kept)
        db.close()
        return sorted(key(o) for o in kept.outcomes)

    assert outcomes(strategy, 2) == outcomes("sequential", 0)


class Unpicklable(FirstWord):
    """FirstWord holding a lambda: fine in one process, never sent to another."""

    def __init__(self) -> None:
        self.lower = lambda word: word.lower()


def test_steps_that_do_not_pickle_classify_the_joined_text_in_process(corpus: Path, tmp_path: Path) -> None:
    kept = _Kept()
    pipeline = Pipeline(ExtractText(ocr="always", split_pages=2), Unpicklable())
    run(DirectorySource(corpus), pipeline, executor="threads", workers=2, reporter=kept)
    by_id = {o.ref.id: o for o in kept.outcomes}
    assert len(kept.outcomes) == 4 and (by_id["a-long.pdf"].result or {})["label"] == "invoice"


def test_a_strategy_from_outside_docmill_takes_scans_whole(corpus: Path) -> None:
    class Outside(SequentialExecutor):
        pass

    job = Job(DirectorySource(corpus), Pipeline(ExtractText(ocr="always", split_pages=2)))
    assert PageSplit.of(job, Outside()) is None
    assert PageSplit.of(job, SequentialExecutor()) is not None


def test_only_a_long_local_pdf_is_expanded_into_parts(corpus: Path) -> None:
    source = DirectorySource(corpus)
    job = Job(source, Pipeline(ExtractText(ocr="always", split_pages=2), FirstWord()))
    splitter = PageSplit.of(job, get_executor("processes", workers=2))
    assert splitter is not None
    spans = [(ref.id, ref.pages) for ref in splitter.expand(source)]
    long = [(0, 2), (2, 4), (4, 6), (6, 7)]
    assert spans == [*(("a-long.pdf", s) for s in long), *(("b-copy.pdf", s) for s in long),
                     ("c-short.pdf", None), ("d-note.txt", None)]  # fmt: skip


def test_a_pdf_with_a_text_layer_or_ocr_off_is_not_split(manpages: Path, tmp_path: Path) -> None:
    text_pdf = next(p for p in sorted(manpages.rglob("*.pdf")) if len(pdfium.PdfDocument(p)) >= 3)
    shutil.copy(text_pdf, tmp_path / "text.pdf")  # a text layer on every page
    (tmp_path / "scan.pdf").write_bytes(_scan(["printing press", "quarterly report", "page three"]))
    source = DirectorySource(tmp_path)
    for ocr_mode, parts_of_the_scan in (("auto", 3), ("never", 0)):
        job = Job(source, Pipeline(ExtractText(ocr=ocr_mode, split_pages=1)))
        splitter = PageSplit.of(job, get_executor("sequential"))
        assert splitter is not None
        parts = [ref for ref in splitter.expand(source) if ref.pages is not None]
        assert [ref.id for ref in parts] == ["scan.pdf"] * parts_of_the_scan


def test_the_journal_has_one_row_per_split_scan_with_its_pages(corpus: Path, tmp_path: Path) -> None:
    _run(corpus, "processes", tmp_path / "j.db", 2)
    rows = _rows(tmp_path / "j.db")
    assert sorted(rows) == ["a-long.pdf", "b-copy.pdf", "c-short.pdf", "d-note.txt"]
    assert rows["a-long.pdf"]["pages"] == 7 and rows["b-copy.pdf"]["status"] == "duplicate"


@pytest.mark.parametrize("strategy", sorted(SPLITTING - IN_PROCESS - {"celery"}))  # celery: its own file
def test_a_crashing_part_crashes_its_document_once(strategy: str, corpus: Path, tmp_path: Path) -> None:
    outcomes = _outcomes(corpus, strategy, 2, tmp_path, extract=CrashingPart)
    by_id = {o.ref.id: o for o in outcomes}
    assert len(outcomes) == 4 and by_id["a-long.pdf"].status is Status.CRASHED
    assert by_id["b-copy.pdf"].status is Status.OK and (by_id["b-copy.pdf"].result or {})["pages"] == 7


def test_a_failing_part_fails_its_document_once_with_its_reason(corpus: Path, tmp_path: Path) -> None:
    outcomes = _outcomes(corpus, "threads", 2, tmp_path, extract=FailingPart)
    failed = [o for o in outcomes if o.status is Status.FAILED]
    assert len(outcomes) == 4 and [o.ref.id for o in failed] == ["a-long.pdf"]
    assert failed[0].error is not None and failed[0].error.message == "part of pages 3-4 is broken"


def test_a_run_killed_between_parts_is_completed_by_the_next(corpus: Path, tmp_path: Path) -> None:
    db = tmp_path / "j.db"
    killed = multiprocessing.get_context("fork").Process(
        target=_run, args=(corpus, "processes", db, 2, KillingPart)
    )
    killed.start()
    killed.join(60)
    assert killed.exitcode == -signal.SIGKILL and "a-long.pdf" not in _rows(db)
    _run(corpus, "processes", db, 2)
    rows = _rows(db)
    assert sorted(rows) == ["a-long.pdf", "b-copy.pdf", "c-short.pdf", "d-note.txt"]
    assert rows["a-long.pdf"]["pages"] == 7 and rows["a-long.pdf"]["label"] == "invoice"


def test_a_run_stopped_between_parts_is_completed_by_the_next(corpus: Path, tmp_path: Path) -> None:
    db = tmp_path / "j.db"
    first = _run(corpus, "processes", db, 2, StoppingPart)
    assert first.stopped == "endpoint" and "a-long.pdf" not in _rows(db)
    second = _run(corpus, "processes", db, 2)
    rows = _rows(db)
    assert sorted(rows) == ["a-long.pdf", "b-copy.pdf", "c-short.pdf", "d-note.txt"]
    assert rows["a-long.pdf"]["pages"] == 7 and second.stats.done >= 1
