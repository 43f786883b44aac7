"""Page-split extraction: one long PDF's pages spread over a run's workers, recorded once.

::

  refs ─▶ expand ─parts─▶ Executor.map_unordered ─outcomes─▶ join ─▶ the runner (journal, progress)
          the parent counts     each part: load + hash the file,    holds the parts' texts until the
          a local scan's pages; extract its pages only, send the    last one; joins them in page
          over ``split_pages``  text back in the part's result      order; runs the rest of the
          → parts of that many                                      pipeline (classification) here

With ``extract.split_pages`` at N (0, the default: never; 4 is a good value) and OCR on, a regular
``.pdf`` file on the local disk whose
first page is to be OCRed (a scan) and which has more than N pages (and no more than
``max_pages``) becomes parts of N pages (``DocumentRef.pages``), so a long scan at the end of a run
keeps every worker busy rather than one. PDFs with a text layer are not split: their extraction
takes milliseconds, and their classification (an LLM call, perhaps) is better left to the workers.
The parts are never journaled: the document is recorded once, with the whole file's hash (so
de-duplication happens once), its whole page count and the same text as an unsplit run. A part
that fails or crashes makes its document fail or crash once, with that part's reason (the first
such part in page order). A run stopped before every part is in
records nothing for that document: the next run splits it again.

Memory: a part's text is capped at ``max_chars`` like a whole document's; the parent holds the
texts of a document's parts received so far (about that document's text) and ``max_in_flight``
bounds the parts out at once. One difference from an unsplit run: a scan whose text passes
``max_chars`` has every part OCRed (the unsplit read stops at the cut), so its ``pages_ocr`` counts
every page; its text is cut at the same place. The rest of the pipeline
runs in the parent on its own copy of the steps, one joined document at a time (one
classification per long scan, beside the minutes of OCR its parts took).

Every built-in strategy splits: a part runs only the extraction step, whichever stage or host it
lands on (``staged`` returns it from its CPU stage; ``celery`` brings its text back in the JSON
result, no shared folder needed). A strategy registered from outside docmill, which may key its
work by path (two parts share one), runs every document whole.
"""

from __future__ import annotations

import dataclasses
import os
import pickle
import stat
from collections.abc import Iterable, Iterator
from typing import Any

from docmill.document import Document, DocumentRef
from docmill.executors.base import Executor
from docmill.job import Job
from docmill.outcome import Outcome, Timings
from docmill.pipeline import Pipeline
from docmill.processors.extract import ExtractText
from docmill.processors.formats.pdf import scan_pages

SPLITTING = frozenset(
    {
        "sequential",
        "threads",
        "asyncio",
        "processes",
        "batches",
        "queue",
        "hybrid",
        "celery",
        "staged",
        "auto",
    }
)
_PART_ONLY = ("text", "chars")  # a part's result keys that the joined document computes anew


class PageSplit:
    """Expands long PDFs into parts on the way in and joins their outcomes on the way out."""

    def __init__(self, job: Job, extract: ExtractText) -> None:
        self.size, self.ocr = extract.split_pages, extract.limits.ocr
        self.max_pages = extract.limits.max_pages
        self.max_chars = extract.limits.max_chars
        self.job = job
        self.rest: Job | None = None  # the steps after extraction, made at the first join
        self.waiting: dict[str, tuple[int, dict[tuple[int, int], Outcome]]] = {}
        self._set_up = False

    @classmethod
    def of(cls, job: Job, strategy: Executor) -> PageSplit | None:
        """The splitter ``job``'s extraction asks for, or None (off, or a strategy not docmill's)."""
        steps = job.pipeline.steps
        extract = steps[0] if steps and isinstance(steps[0], ExtractText) else None
        if extract is None or not extract.split_pages or not _splits(strategy):
            return None
        return cls(job, extract)

    @staticmethod
    def stream(
        split: PageSplit | None, strategy: Executor, job: Job, refs: Iterable[DocumentRef]
    ) -> Iterator[Outcome]:
        """``strategy.map_unordered(job, refs)``, through ``split`` when there is one."""
        return strategy.map_unordered(job, refs) if split is None else split.outcomes(strategy, job, refs)

    def outcomes(self, strategy: Executor, job: Job, refs: Iterable[DocumentRef]) -> Iterator[Outcome]:
        """``strategy.map_unordered`` over the refs with long PDFs split, their parts joined."""
        stream = strategy.map_unordered(job, self.expand(refs))
        try:
            for outcome in stream:
                joined = outcome if outcome.ref.pages is None else self._collect(outcome)
                if joined is not None:
                    yield joined
        finally:
            close = getattr(stream, "close", None)
            if close is not None:
                close()
            if self.rest is not None and self._set_up:
                self.rest.teardown()

    def expand(self, refs: Iterable[DocumentRef]) -> Iterator[DocumentRef]:
        """The refs, a long local PDF replaced by its parts (noted before the first is passed on)."""
        for ref in refs:
            pages = self._pages(ref)
            if pages is None:
                yield ref
                continue
            spans = [(first, min(first + self.size, pages)) for first in range(0, pages, self.size)]
            self.waiting[ref.id] = (len(spans), {})
            for span in spans:
                yield dataclasses.replace(ref, pages=span)

    def _pages(self, ref: DocumentRef) -> int | None:
        """The page count of a scan worth splitting, else None (OCR off, not local, not a scan,
        short, over ``max_pages``)."""
        if self.ocr is None or ref.offset is not None or "://" in ref.uri or not _regular_pdf(ref.uri):
            return None
        pages = scan_pages(ref.uri, self.ocr)
        return pages if pages is not None and self.size < pages <= self.max_pages else None

    def _collect(self, outcome: Outcome) -> Outcome | None:
        expected, parts = self.waiting[outcome.ref.id]
        parts[outcome.ref.pages or (0, 0)] = outcome
        if len(parts) < expected:
            return None
        del self.waiting[outcome.ref.id]
        return self._joined([parts[span] for span in sorted(parts)])

    def _joined(self, parts: list[Outcome]) -> Outcome:
        ref = dataclasses.replace(parts[0].ref, pages=None)
        failed = next((part for part in parts if not part.status.is_success), None)
        if failed is not None:
            return dataclasses.replace(failed, ref=ref)
        outcome = self._rest().run_document(self._document(ref, parts))
        started = min(part.timings.started for part in parts)
        timings = Timings(started, outcome.timings.finished, parts[-1].timings.worker)
        attempts = max(outcome.attempts, *(part.attempts for part in parts))
        return dataclasses.replace(outcome, attempts=attempts, timings=timings)

    def _rest(self) -> Job:
        """A Job of the steps after extraction: a copy of its own, set up here; or, for steps that
        do not pickle (run only by in-process strategies), the run's own, which those set up."""
        if self.rest is None:
            job, steps = self.job, Pipeline(*self.job.pipeline.steps[1:])
            try:
                steps, self._set_up = pickle.loads(pickle.dumps(steps)), True
            except Exception:  # PicklingError, TypeError, AttributeError: whatever pickle raises
                self._set_up = False
            self.rest = Job(job.source, steps, retry=job.retry, timeout=job.timeout, clock=job.clock)
            if self._set_up:
                self.rest.setup()
        return self.rest

    def _document(self, ref: DocumentRef, parts: list[Outcome]) -> Document:
        """The whole PDF as one unsplit extraction would have left it: text, pages, truncated."""
        results = [dict(part.result or {}) for part in parts]
        text = "\f".join(str(result.get("text", "")) for result in results)
        metadata: dict[str, Any] = {k: v for k, v in results[0].items() if k not in _PART_ONLY}
        metadata["truncated"] = len(text) > self.max_chars or any(r.get("truncated") for r in results)
        if "pages_ocr" in metadata:
            metadata["pages_ocr"] = sum(int(r.get("pages_ocr") or 0) for r in results)
        return Document(ref, parts[0].sha256 or "", None, text[: self.max_chars], metadata)


def _regular_pdf(path: str) -> bool:
    """A regular file named ``.pdf``: the parent never opens a named pipe (it would wait forever),
    a device, or any other document to look for pages."""
    try:
        return path.lower().endswith(".pdf") and stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False


def _splits(strategy: Executor) -> bool:
    """Whether ``strategy`` is one of docmill's own, each of which passes the page-split contract."""
    return strategy.name in SPLITTING and type(strategy).__module__.startswith("docmill.executors.")
