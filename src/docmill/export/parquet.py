"""Parquet export through pyarrow (extra ``docmill[parquet]``), written in row groups as records stream."""

from __future__ import annotations

from collections.abc import Iterable
from itertools import islice
from pathlib import Path
from typing import Any

from docmill.errors import MissingDependencyError
from docmill.journal.base import DocumentRecord

_ROW_GROUP = 10_000


def _schema() -> Any:
    try:
        import pyarrow as pa
    except ImportError as exc:
        raise MissingDependencyError("pyarrow", "parquet") from exc
    return pa.schema(
        [
            ("path", pa.string()), ("sha256", pa.string()), ("status", pa.string()), ("label", pa.string()),
            ("score", pa.float64()), ("error", pa.string()), ("attempts", pa.int64()),
            ("duplicate_of", pa.string()), ("size", pa.int64()), ("seconds", pa.float64()),
        ]
    )  # fmt: skip


def write_parquet(records: Iterable[DocumentRecord], path: Path) -> int:
    """Write ``records`` to ``path``; returns the row count."""
    schema = _schema()
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = iter(records)
    n = 0
    with pq.ParquetWriter(path, schema) as writer:
        while chunk := [r.export_row() for r in islice(rows, _ROW_GROUP)]:
            writer.write_table(pa.Table.from_pylist(chunk, schema=schema))
            n += len(chunk)
        if n == 0:
            writer.write_table(schema.empty_table())
    return n
