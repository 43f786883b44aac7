"""Reading a journal from Python: ``docmill.open_journal(db)`` and the tables of results.

A ``JournalReader`` is a handle for reading only: summaries, export rows (the columns of
``docmill export``), failures, and the same rows as a pandas DataFrame or a pyarrow Table::

    with docmill.open_journal("docmill.db") as journal:
        print(journal.summary().by_status)
        df = journal.to_pandas()

``run=None`` means what ``docmill export`` means: the documents of the latest run's source and
pipeline. pandas (extra ``docmill[pandas]``) and pyarrow (``docmill[parquet]``) load on first use.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from docmill.errors import ConfigError, MissingDependencyError
from docmill.export import EXPORT_COLUMNS, Column, export_row, run_columns
from docmill.journal import Journal
from docmill.journal import open_journal as _open_journal
from docmill.journal.base import DocumentRecord, Query, RunRecord, Summary
from docmill.journal.policy import FAILURES


class JournalReader:
    """A journal opened for reading; a context manager that closes it."""

    def __init__(self, journal: Journal, target: str) -> None:
        self.journal = journal
        self.target = target

    def __enter__(self) -> JournalReader:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"JournalReader({re.sub(r'//[^/@]*@', '//***@', self.target)!r})"  # no password shown

    def close(self) -> None:
        """Close the journal (also done on leaving a ``with`` block)."""
        self.journal.close()

    def runs(self) -> list[RunRecord]:
        """Every run the journal holds, newest first."""
        return self.journal.runs()

    def summary(self, run: int | None = None) -> Summary:
        """Counts by status and label of the documents of ``run`` (default: the latest run)."""
        self._check(run)
        return self.journal.summary(run)

    def records(
        self, run: int | None = None, *, status: Sequence[str] = (), label: str | None = None
    ) -> Iterator[DocumentRecord]:
        """The full journal rows of ``run``'s source and pipeline, in path order, streamed."""
        self._check(run)
        return self.journal.iter_documents(Query(run_id=run, status=tuple(status), label=label))

    def rows(
        self, run: int | None = None, *, status: Sequence[str] = (), label: str | None = None
    ) -> list[dict[str, Any]]:
        """One dict per document with the columns of ``docmill export`` (``columns(run)``), in path order."""
        columns = self.columns(run)
        return [export_row(record, columns) for record in self.records(run, status=status, label=label)]

    def columns(self, run: int | None = None) -> tuple[Column, ...]:
        """The export columns of ``run`` (every run when None): ``EXPORT_COLUMNS``, then a
        ``label_<task>`` column per task and a ``field_<name>`` column per field of its labels file."""
        return run_columns(r.config for r in self.journal.runs() if run is None or r.id == run)

    def failures(self, run: int | None = None) -> list[DocumentRecord]:
        """Every failed, quarantined or crashed document, with ``error_type`` and ``error_message``."""
        return list(self.records(run, status=sorted(FAILURES)))

    def to_pandas(self, run: int | None = None, **filters: Any) -> Any:
        """``rows(run, **filters)`` as a ``pandas.DataFrame`` (needs ``docmill[pandas]``)."""
        return to_pandas(self.rows(run, **filters), self.columns(run))

    def to_arrow(self, run: int | None = None, **filters: Any) -> Any:
        """``rows(run, **filters)`` as a ``pyarrow.Table`` typed like the Parquet export."""
        return to_arrow(self.rows(run, **filters), self.columns(run))

    def _check(self, run: int | None) -> None:
        if run is not None and self.journal.run(run) is None:
            raise ConfigError(f"no run {run} in journal {self.target}")


def open_journal(db: str | os.PathLike[str] = "docmill.db") -> JournalReader:
    """Open the journal at ``db`` (a SQLite file or a ``postgresql://`` URL) for reading only.

    Nothing is written, no file is left behind, and the journal may be one the user can only read
    (``docmill.journal.open_journal(read_only=True)``). A missing SQLite file is a ``ConfigError``.
    """
    target = os.fspath(db)
    if "://" not in target and not Path(target).is_file():
        raise ConfigError(f"no journal at {target} (run docmill.run(...) or `docmill run` first)")
    return JournalReader(_open_journal(target, read_only=True), target)


def to_pandas(rows: Iterable[dict[str, Any]], columns: tuple[Column, ...] = EXPORT_COLUMNS) -> Any:
    """Export rows as a ``pandas.DataFrame`` with the columns of ``docmill export``."""
    try:
        import pandas as pd
    except ImportError as exc:
        raise MissingDependencyError("pandas", "pandas") from exc
    return pd.DataFrame.from_records(list(rows), columns=[column.name for column in columns])


def to_arrow(rows: Iterable[dict[str, Any]], columns: tuple[Column, ...] = EXPORT_COLUMNS) -> Any:
    """Export rows as a ``pyarrow.Table`` with the Parquet export's schema."""
    from docmill.export.parquet import _schema  # the Arrow types of export.columns

    schema = _schema(columns)  # raises MissingDependencyError naming docmill[parquet] without pyarrow
    import pyarrow as pa

    return pa.Table.from_pylist(list(rows), schema=schema)
