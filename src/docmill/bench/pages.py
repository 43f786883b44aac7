"""Per-page costs for ``docmill plan --pages-per-doc P``: OCR pages and text-layer pages, measured.

A scan costs about a CPU-second per page (render + Tesseract); a page with a text layer costs
milliseconds. So a collection is planned by its pages, not its documents. From the sample's
sequential run, each paged document (PDF, image) brings its wall seconds, its pages and how many of
them were OCRed:

* ``text page`` = seconds ÷ pages over the documents with no OCRed page;
* ``OCR page`` = (seconds − text pages × that cost) ÷ OCRed pages over the others.

A projected document of ``P`` pages then costs ``P × (share × OCR page + (1 − share) × text page)``,
``share`` being the sample's fraction of pages OCRed, times the ratio of the fitted steady-state
seconds per document to the mean of the recorded ones (so ``P`` equal to the sample's own pages per
document projects what the sample measured). Strategies' serial fractions are kept as measured:
conservative for longer documents, where the parent's per-document share only shrinks.
"""

from __future__ import annotations

import dataclasses
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from docmill.errors import ConfigError
from docmill.outcome import Outcome

if TYPE_CHECKING:
    from docmill.bench.plan import PlanInputs, Profile


@dataclass(frozen=True, slots=True)
class PageCosts:
    """Seconds per page as measured on a sample's paged documents."""

    docs: int  # paged documents among the sample's successes
    pages: int
    pages_ocr: int
    chars: int  # of the paged documents' text
    bytes: int  # of the paged documents' files
    all_docs: int  # every document of the run, paged or not
    s_per_text_page: float | None  # None: no document without OCR to measure it on
    s_per_ocr_page: float | None  # None: no page was OCRed
    steady_ratio: float = 1.0  # fitted seconds per document ÷ mean recorded seconds per document

    @property
    def pages_per_doc(self) -> float:
        return self.pages / self.docs if self.docs else 0.0

    @property
    def ocr_share(self) -> float:
        return self.pages_ocr / self.pages if self.pages else 0.0

    def seconds_per_page(self) -> float:
        """A page at the sample's mix of OCR and text layer, in steady-state seconds."""
        share = self.ocr_share
        text = self.s_per_text_page if self.s_per_text_page is not None else self.s_per_ocr_page
        ocr = self.s_per_ocr_page if self.s_per_ocr_page is not None else text
        return (share * (ocr or 0.0) + (1 - share) * (text or 0.0)) * self.steady_ratio

    @property
    def all_paged(self) -> bool:
        """Whether every document of the sample had pages (so docs/s × pages per doc is pages/s)."""
        return self.docs == self.all_docs


def _pages(outcome: Outcome) -> tuple[int, int] | None:
    result = outcome.result or {}
    pages, ocred = result.get("pages"), result.get("pages_ocr") or 0
    if not outcome.status.is_success or not isinstance(pages, int) or pages < 1:
        return None
    return pages, int(ocred)


def _chars(outcome: Outcome) -> int:
    return int((outcome.result or {}).get("chars", 0))


def _per_page(paged: Sequence[tuple[float, int, int]]) -> tuple[float | None, float | None]:
    """(seconds per text-layer page, seconds per OCR page) from (seconds, pages, OCRed) per document."""
    text_only = [(s, p) for s, p, ocred in paged if ocred == 0]
    text = sum(s for s, _ in text_only) / sum(p for _, p in text_only) if text_only else None
    scanned = [(s, p, ocred) for s, p, ocred in paged if ocred > 0]
    if not scanned:
        return text, None
    rest = sum(s - (text or 0.0) * (p - ocred) for s, p, ocred in scanned)
    return text, max(text or 0.0, rest / sum(ocred for *_, ocred in scanned))


def page_costs(outcomes: Sequence[Outcome], seconds_per_doc: float) -> PageCosts | None:
    """The page costs of a sequential run's ``outcomes``, or None when no document had pages.

    ``seconds_per_doc`` is the run's fitted steady state, to which the recorded seconds are scaled.
    """
    with_pages = [(o, counts) for o in outcomes if (counts := _pages(o)) is not None]
    if not with_pages:
        return None
    paged = [(o.timings.seconds, pages, ocred) for o, (pages, ocred) in with_pages]
    text, ocr = _per_page(paged)
    recorded = statistics.fmean(o.timings.seconds for o in outcomes)
    return PageCosts(
        docs=len(paged),
        pages=sum(p for _, p, _ in paged),
        pages_ocr=sum(ocred for *_, ocred in paged),
        chars=sum(_chars(o) for o, _ in with_pages),
        bytes=sum(o.ref.size or 0 for o, _ in with_pages),
        all_docs=len(outcomes),
        s_per_text_page=text,
        s_per_ocr_page=ocr,
        steady_ratio=seconds_per_doc / recorded if recorded > 0 else 1.0,
    )


def require_pages(costs: PageCosts | None, origin: str) -> PageCosts:
    """``costs``, or the one-line reason ``--pages-per-doc`` cannot be projected from ``origin``."""
    if costs is None:
        raise ConfigError(
            f"--pages-per-doc: the costs {origin} have no pages; give --sample a folder with PDFs or images"
        )
    return costs


def for_pages(profile: Profile, pages_per_doc: float | None) -> Profile:
    """``profile`` as documents of ``pages_per_doc`` pages each (``profile`` itself when None)."""
    if pages_per_doc is None:
        return profile
    costs = require_pages(profile.pages, profile.origin)
    seconds = pages_per_doc * costs.seconds_per_page()
    share = pages_per_doc / costs.pages  # of the sample's paged text and bytes, per document
    return dataclasses.replace(
        profile,
        seconds_per_doc=seconds,
        cpu_s_per_doc=profile.cpu_s_per_doc * seconds / profile.seconds_per_doc,
        chars_per_doc=costs.chars * share,
        bytes_per_doc=costs.bytes * share,
    )


def pages_per_doc(profile: Profile, inputs: PlanInputs) -> float | None:
    """Pages per projected document, when known: asked for, or the sample's if all of it was paged."""
    if inputs.pages_per_doc is not None:
        return inputs.pages_per_doc
    costs = profile.pages
    return costs.pages_per_doc if costs is not None and costs.all_paged else None


def _per(seconds: float | None, what: str) -> str:
    return f"no {what} measured" if seconds is None else f"{1000 * seconds:,.1f} ms per {what}"


def page_lines(profile: Profile, inputs: PlanInputs) -> list[str]:
    """What the report says about pages: the measured costs and the pages projected."""
    costs = profile.pages
    if costs is None:
        return []
    lines = [
        f"Per page ({costs.docs / costs.all_docs:.0%} of the documents paged, {costs.pages_per_doc:,.2f} "
        f"pages each, {costs.ocr_share:.0%} of them OCRed): {_per(costs.s_per_ocr_page, 'OCR page')}, "
        f"{_per(costs.s_per_text_page, 'text-layer page')}, "
        f"{_per(costs.seconds_per_page(), 'page at that mix')} (steady state)."
    ]
    pages = pages_per_doc(profile, inputs)
    if pages is not None:
        lines.append(
            f"Pages: {inputs.docs:,} documents × {pages:,.1f} pages = {inputs.docs * pages:,.0f} pages."
        )
    return lines
