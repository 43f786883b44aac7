"""Exports of the journal: CSV, JSON Lines and Parquet (``docmill export``)."""

from docmill.sinks.export import COLUMNS, FORMATS, export

__all__ = ["COLUMNS", "FORMATS", "export"]
