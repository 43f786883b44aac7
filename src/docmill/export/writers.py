"""Write journal records as CSV, JSON Lines or Parquet.

Rows stream from the journal and are written as they come, so memory stays flat for any journal size.
A file is written under a temporary name and renamed at the end: a reader never sees half an export.
``-`` writes CSV or JSON Lines to standard output. The columns are those of ``export.columns``.
"""

from __future__ import annotations

import csv
import json
import os
import sys
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TextIO

from docmill.errors import ConfigError
from docmill.export.columns import EXPORT_COLUMNS, Column, export_row
from docmill.journal.base import DocumentRecord

Columns = tuple[Column, ...]
Writer = Callable[[Iterable[DocumentRecord], Path, Columns], int]
TextWriter = Callable[[Iterable[DocumentRecord], TextIO, Columns], int]
LIST_SEPARATOR = ";"  # a multi-label task's labels in one CSV cell


def write_csv(records: Iterable[DocumentRecord], out: TextIO, columns: Columns = EXPORT_COLUMNS) -> int:
    names = [column.name for column in columns]
    writer = csv.DictWriter(out, fieldnames=names, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    n = 0
    for n, record in enumerate(records, start=1):  # noqa: B007 - n is the count
        row = export_row(record, columns)
        writer.writerow({k: LIST_SEPARATOR.join(v) if isinstance(v, list) else v for k, v in row.items()})
    return n


def write_jsonl(records: Iterable[DocumentRecord], out: TextIO, columns: Columns = EXPORT_COLUMNS) -> int:
    n = 0
    for n, record in enumerate(records, start=1):  # noqa: B007 - n is the count
        row = {**export_row(record, columns), "result": dict(record.result)}
        out.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
    return n


def _text_file(write: TextWriter) -> Writer:
    def to_path(records: Iterable[DocumentRecord], path: Path, columns: Columns) -> int:
        with open(path, "w", encoding="utf-8", newline="") as out:
            return write(records, out, columns)

    return to_path


def _parquet(records: Iterable[DocumentRecord], path: Path, columns: Columns) -> int:
    from docmill.export.parquet import write_parquet

    return write_parquet(records, path, columns)


FORMATS: dict[str, Writer] = {
    "csv": _text_file(write_csv),
    "jsonl": _text_file(write_jsonl),
    "parquet": _parquet,
}
_STREAMS: dict[str, TextWriter] = {"csv": write_csv, "jsonl": write_jsonl}


def export(
    records: Iterable[DocumentRecord],
    fmt: str,
    out: str | os.PathLike[str],
    columns: Columns = EXPORT_COLUMNS,
) -> int:
    """Write ``records`` to ``out`` (a path, or ``-`` for stdout) in format ``fmt``; returns the row count.

    ``columns``: :data:`EXPORT_COLUMNS` and, for runs that answered tasks, their ``task_columns``.
    """
    if fmt not in FORMATS:
        raise ConfigError(f"unknown export format {fmt!r}; choose one of: {', '.join(FORMATS)}")
    if str(out) == "-":
        if fmt not in _STREAMS:
            raise ConfigError(f"{fmt} cannot be written to standard output; give -o FILE")
        return _STREAMS[fmt](records, sys.stdout, columns)
    target = Path(out)
    if not target.parent.is_dir():
        raise ConfigError(f"folder does not exist: {target.parent}")
    return _atomic(target, lambda tmp: FORMATS[fmt](records, tmp, columns))


def _atomic(target: Path, write: Callable[[Path], Any]) -> int:
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        n = int(write(tmp))
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return n
