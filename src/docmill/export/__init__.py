"""Exports of the journal: CSV, JSON Lines and Parquet (``docmill export``)."""

from docmill.export.writers import COLUMNS, FORMATS, export

__all__ = ["COLUMNS", "FORMATS", "export"]
