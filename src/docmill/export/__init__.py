"""Exports of the journal: CSV, JSON Lines and Parquet (``docmill export``)."""

from docmill.export.columns import (
    COLUMNS,
    EXPORT_COLUMNS,
    Column,
    export_row,
    field_columns,
    run_columns,
    task_columns,
)
from docmill.export.writers import FORMATS, export

__all__ = [
    "COLUMNS",
    "EXPORT_COLUMNS",
    "FORMATS",
    "Column",
    "export",
    "export_row",
    "field_columns",
    "run_columns",
    "task_columns",
]
