"""The export columns, declared once: each one's name, type and how it is read from a journal record.

Everything that writes or serves results derives from :data:`EXPORT_COLUMNS`: the CSV header and
the keys of a JSON Lines row (``docmill export``, the dashboard's downloads), the Parquet schema,
and the columns of ``RunResult.to_pandas()``/``to_arrow()``. A new column is one line here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from operator import attrgetter
from typing import Any

from docmill.journal.base import DocumentRecord
from docmill.model.tasks import LEGACY, task_value


@dataclass(frozen=True, slots=True)
class Column:
    """One export column: ``name``, the type of its values (None aside) and how to ``read`` it."""

    name: str
    kind: type[str] | type[int] | type[float] | type[bool] | type[list[str]]  # list: of strings
    read: Callable[[DocumentRecord], Any]


def _error(record: DocumentRecord) -> str | None:
    """``Type: message``, or None for a document that did not fail."""
    return f"{record.error_type}: {record.error_message}" if record.error_type else None


def _column(name: str, kind: type[str] | type[int] | type[float]) -> Column:
    """A column read from the record's attribute of the same name."""
    return Column(name, kind, attrgetter(name))


EXPORT_COLUMNS: tuple[Column, ...] = (
    _column("path", str),
    _column("sha256", str),
    _column("status", str),
    _column("label", str),
    _column("score", float),
    Column("error", str, _error),
    _column("attempts", int),
    _column("duplicate_of", str),
    _column("size", int),
    _column("seconds", float),
    _column("pages", int),  # PDF pages or image frames; empty for formats without pages
    _column("pages_ocr", int),  # of which OCRed; empty when OCR was off
)
"""The columns every export carries, in order."""

COLUMNS: tuple[str, ...] = tuple(column.name for column in EXPORT_COLUMNS)
"""The names of :data:`EXPORT_COLUMNS`, in order."""


def task_columns(tasks: Mapping[str, Mapping[str, Any]]) -> tuple[Column, ...]:
    """One ``label_<task>`` column per task the runs declared (``docmill.model.tasks``): its label,
    or a multi-label task's list of labels. A plain labels file's one task is the ``label`` column."""
    return tuple(
        Column(f"label_{name}", list if spec.get("multi") else str, _task_reader(name))
        for name, spec in tasks.items()
        if name != LEGACY
    )


def _task_reader(name: str) -> Callable[[DocumentRecord], Any]:
    return lambda record: task_value(record.result, name)


_FIELD_KINDS: dict[str, type[Any]] = {"integer": int, "number": float, "boolean": bool}


def field_columns(fields: Mapping[str, Mapping[str, Any]]) -> tuple[Column, ...]:
    """One ``field_<name>`` column per field the runs declared (``docmill.model.fields``): an integer,
    a number, true/false, a string (string, date, enum), or a list of strings for a list field."""
    return tuple(
        Column(
            f"field_{name}",
            list if spec.get("list") else _FIELD_KINDS.get(spec.get("type", ""), str),
            _field_reader(name),
        )
        for name, spec in fields.items()
    )


def _field_reader(name: str) -> Callable[[DocumentRecord], Any]:
    def read(record: DocumentRecord) -> Any:
        value = (record.result.get("fields") or {}).get(name)
        return [str(v) for v in value] if isinstance(value, list) else value

    return read


def run_columns(configs: Iterable[Mapping[str, Any]]) -> tuple[Column, ...]:
    """The export columns of runs recorded with ``configs``: ``EXPORT_COLUMNS``, then a column per
    task and per field their labels files declared."""
    from docmill.model.tasks import recorded_fields, recorded_tasks

    kept = list(configs)
    return EXPORT_COLUMNS + task_columns(recorded_tasks(kept)) + field_columns(recorded_fields(kept))


def export_row(record: DocumentRecord, columns: tuple[Column, ...] = EXPORT_COLUMNS) -> dict[str, Any]:
    """``record``'s export columns (by default :data:`EXPORT_COLUMNS`), in order."""
    return {column.name: column.read(record) for column in columns}
