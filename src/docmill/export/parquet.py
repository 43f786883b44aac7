"""Parquet export through pyarrow (extra ``docmill[parquet]``), written in row groups as records stream."""

from __future__ import annotations

from collections.abc import Iterable
from itertools import islice
from pathlib import Path
from typing import Any

from docmill.errors import MissingDependencyError
from docmill.export.columns import EXPORT_COLUMNS, Column, export_row
from docmill.journal.base import DocumentRecord

_ROW_GROUP = 10_000


def _schema(columns: tuple[Column, ...] = EXPORT_COLUMNS) -> Any:
    """The Arrow schema of ``columns``: a multi-label task's column is a list of strings."""
    try:
        import pyarrow as pa
    except ImportError as exc:
        raise MissingDependencyError("pyarrow", "parquet") from exc
    types = {
        str: pa.string(),
        int: pa.int64(),
        float: pa.float64(),
        bool: pa.bool_(),
        list: pa.list_(pa.string()),
    }
    return pa.schema([(column.name, types[column.kind]) for column in columns])


def write_parquet(
    records: Iterable[DocumentRecord], path: Path, columns: tuple[Column, ...] = EXPORT_COLUMNS
) -> int:
    """Write ``records`` to ``path``; returns the row count."""
    schema = _schema(columns)
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = iter(records)
    n = 0
    with pq.ParquetWriter(path, schema) as writer:
        while chunk := [export_row(r, columns) for r in islice(rows, _ROW_GROUP)]:
            writer.write_table(pa.Table.from_pylist(chunk, schema=schema))
            n += len(chunk)
        if n == 0:
            writer.write_table(schema.empty_table())
    return n
