"""What ``docmill status`` says about a run's batches: how many, where they are, the money saved."""

from __future__ import annotations

from typing import Any

from docmill.journal.base import Journal, RunRecord
from docmill.journal.batch_store import BatchJournal

FAILED = ("failed", "expired", "cancelled")


def batch_summary(journal: Journal, run: RunRecord | None) -> dict[str, Any] | None:
    """The batches of ``run``'s source and pipeline (every run's, as documents are), or None."""
    if run is None or not isinstance(journal, BatchJournal):
        return None
    records = journal.batch_records(source=run.source, fingerprint=run.fingerprint)
    if not records:
        return None
    closed = [b for b in records if not b.open]

    def total(key: str) -> float:
        return sum(float(b.info.get(key) or 0.0) for b in records)

    return {
        "batches": len(records),
        "submitted": sum(b.provider_id is not None for b in records),
        "in_progress": sum(b.open for b in records),
        "completed": sum(b.state == "completed" for b in closed),
        "failed": sum(b.state in FAILED for b in closed),
        "requests": int(total("requests")),
        "cost": round(total("cost"), 6),
        "saved": round(total("saved"), 6),
    }


def batch_lines(summary: dict[str, Any] | None) -> list[str]:
    """One line for people, or none without batches."""
    if not summary:
        return []
    return [
        f"batches {summary['batches']} ({summary['submitted']} submitted): {summary['in_progress']} in "
        f"progress, {summary['completed']} completed, {summary['failed']} failed or expired · "
        f"{summary['requests']} requests · spent ${summary['cost']:.4f}, saved ${summary['saved']:.4f}"
    ]
