"""Journal records → the JSON the API serves: redacted, with progress, rate and ETA worked out."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from docmill.export.columns import export_row as _export_row
from docmill.journal.base import DocumentRecord, RunRecord, Summary
from docmill.serve.security import redact, redact_text

FAILURE_STATUSES = ("failed", "quarantined", "crashed")
STALE_AFTER = 15.0  # seconds without a heartbeat before a "running" run is shown as stalled


def run_json(run: RunRecord, summary: Summary | None, *, now: float) -> dict[str, Any]:
    """A run with its live progress; ``summary`` adds counts when the caller has them."""
    stats = dict(redact(run.stats or {}))
    return {
        "id": run.id,
        "source": redact_text(run.source),
        "fingerprint": run.fingerprint,
        "strategy": run.strategy,
        "workers": run.workers,
        "total": run.total,
        "state": _state(run, now),
        "started": run.started,
        "finished": run.finished,
        "heartbeat": run.heartbeat,
        "config": redact(run.config or {}),
        "stats": stats,
        "progress": progress(run, summary, stats, now=now),
    }


def _state(run: RunRecord, now: float) -> str:
    last = run.heartbeat or run.started
    if run.state == "running" and now - last > STALE_AFTER:
        return "stalled"
    return run.state


def progress(
    run: RunRecord, summary: Summary | None, stats: Mapping[str, Any], *, now: float
) -> dict[str, Any]:
    """Done, total, fraction, docs/s, pages and pages/s, elapsed and ETA (seconds, or None when unknown).

    ``done`` counts what the journal holds for the run's source and pipeline (earlier runs included,
    as ``total`` does): the summary's total, or the heartbeat's done + skipped when that is ahead of
    a memoised summary. The rate is this run's own, from its heartbeat.
    """
    live = _number(stats.get("done"), 0) + _number(stats.get("skipped"), 0)  # fresh each heartbeat
    done = max(summary.total, live) if summary else live  # the summary may be a few seconds old
    total = run.total if run.total is not None else _optional(stats.get("total"))
    end = run.finished or (run.heartbeat if run.state != "running" else now) or now
    elapsed = max(0.0, end - run.started)
    own = _number(stats.get("done"), 0)
    rate = _number(stats.get("docs_per_second"), own / elapsed if elapsed > 0 else 0.0)
    remaining = None if total is None else max(0, int(total) - int(done))
    eta = remaining / rate if remaining is not None and rate > 0 and run.state == "running" else None
    fraction = min(1.0, done / total) if total else (1.0 if run.state == "done" else None)
    return {
        "done": int(done),
        "total": total,
        "fraction": fraction,
        "docs_per_second": rate,
        **_pages(stats, elapsed),
        "elapsed_seconds": elapsed,
        "eta_seconds": eta,
    }


def _pages(stats: Mapping[str, Any], elapsed: float) -> dict[str, Any]:
    """This run's pages and pages/s from its heartbeat; None until it has met a document with pages."""
    pages = _optional(stats.get("pages")) or None
    if pages is None:
        return {"pages": None, "pages_per_second": None}
    rate = _number(stats.get("pages_per_second"), pages / elapsed if elapsed > 0 else 0.0)
    return {"pages": pages, "pages_per_second": rate}


def _number(value: Any, default: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return default
    return value


def _optional(value: Any) -> int | None:
    number = _number(value, -1)
    return None if number < 0 else int(number)


def summary_json(summary: Summary) -> dict[str, Any]:
    """Counts by status and label, the failure total, docs/s and pages/s over the documents' times."""
    return {
        "total": summary.total,
        "by_status": dict(summary.by_status),
        "by_label": dict(summary.by_label),
        "failures": sum(summary.by_status.get(s, 0) for s in FAILURE_STATUSES),
        "first_started": summary.first_started,
        "last_finished": summary.last_finished,
        "docs_per_second": summary.docs_per_second,
        "pages": summary.pages,
        "pages_per_second": summary.pages_per_second,
    }


def throughput_json(points: Sequence[tuple[float, int]]) -> dict[str, Any]:
    """Buckets of finished documents → docs/s per bucket (bucket width from consecutive starts)."""
    width = points[1][0] - points[0][0] if len(points) > 1 else 0.0
    return {
        "bucket_seconds": width,
        "points": [
            {"t": t, "count": n, "docs_per_second": (n / width) if width > 0 else float(n)} for t, n in points
        ],
    }


def document_json(doc: DocumentRecord) -> dict[str, Any]:
    """Every field of a journal row, secrets removed."""
    return {
        "path": doc.path,
        "source": redact_text(doc.source),
        "fingerprint": doc.fingerprint,
        "sha256": doc.sha256,
        "size": doc.size,
        "status": doc.status,
        "label": doc.label,
        "score": _finite(doc.score),
        "result": redact(doc.result or {}),
        "error_type": doc.error_type,
        "error_message": redact_text(doc.error_message) if doc.error_message else None,
        "attempts": doc.attempts,
        "failures": doc.failures,
        "duplicate_of": doc.duplicate_of,
        "worker": doc.worker,
        "started": doc.started,
        "finished": doc.finished,
        "seconds": doc.seconds,
        "run_id": doc.run_id,
    }


def export_row(doc: DocumentRecord) -> dict[str, Any]:
    """The export columns (``docmill.export.columns``) with the error redacted."""
    row = _export_row(doc)
    if row.get("error"):
        row["error"] = redact_text(str(row["error"]))
    return row


def _finite(value: float | None) -> float | None:
    return value if value is None or math.isfinite(value) else None


def clean_json(value: Any) -> Any:
    """``value`` with NaN and infinities turned into None, so it is valid JSON."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): clean_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean_json(v) for v in value]
    return value
