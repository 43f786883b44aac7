"""The recorded rows of a chunk of listed paths (a resume asks once per chunk), read as one range
of the documents' key when the paths come in key order.

A listing sorted by path (folders; most JSONL files, keyed by a counter) asks for rows that lie
next to each other in the key (source, path, fingerprint): one range read returns them in key order
at half the cost of looking each path up in an ``IN (…)`` list. The range is capped at twice the
chunk's size, so a sparse chunk — rows of other fingerprints or of paths no longer listed in
between — falls back to the lookups instead of reading much more than it needs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import pairwise
from typing import Any

from docmill.journal import _sql
from docmill.journal.policy import Recorded

Query = Callable[[str, Sequence[Any]], list[Any]]

_SPAN = """
SELECT path, fingerprint, status, size, mtime_ns FROM documents
WHERE source = ? AND path BETWEEN ? AND ? LIMIT ?
"""


def recorded_rows(query: Query, paths: list[str], source: str, fingerprint: str) -> dict[str, Recorded]:
    """{path: its row under ``fingerprint``} for the recorded ones among ``paths`` (cleaned ids)."""
    span = _span(query, paths, source)
    if span is not None:
        return {
            path: Recorded(status, size, mtime) for path, fp, status, size, mtime in span if fp == fingerprint
        }
    marks = ", ".join("?" * len(paths))
    rows = query(_sql.RECORDED.format(marks=marks), (source, fingerprint, *paths))
    return {path: Recorded(status, size, mtime) for path, status, size, mtime in rows}


def _span(query: Query, paths: list[str], source: str) -> list[Any] | None:
    """Every row from the first to the last of ``paths``, when they are in ascending key order
    (Python's order of str is SQLite's of UTF-8 text) and the range holds at most twice as many."""
    if len(paths) < 2 or any(a >= b for a, b in pairwise(paths)):
        return None
    cap = 2 * len(paths)
    rows = query(_SPAN, (source, paths[0], paths[-1], cap))
    return rows if len(rows) < cap else None
