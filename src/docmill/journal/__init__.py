"""Journals: where outcomes are kept. ``open_journal(target)`` picks the backend from the target.

* a file path → :class:`docmill.journal.sqlite.SqliteJournal` (the default, ``./docmill.db``)
* ``postgresql://…`` → ``docmill.journal.postgres.PostgresJournal`` (distributed runs; loaded lazily)
"""

from __future__ import annotations

import importlib
from typing import Any

from docmill.errors import ConfigError
from docmill.journal.base import Journal

_POSTGRES = ("postgresql://", "postgres://")


def open_journal(target: str, *, read_only: bool = False, **options: Any) -> Journal:
    """Open (creating if needed) the journal at ``target``.

    ``read_only=True`` is how every reader opens it: SQLite with ``mode=ro`` and ``query_only``,
    PostgreSQL in read-only transactions; no schema is created or migrated, nothing is written, and
    a missing SQLite file is a ``ConfigError`` (exit 2) instead of a new journal. ``options`` go to
    the backend: ``quarantine_after`` for both, ``synchronous`` for SQLite.
    """
    if target.startswith(_POSTGRES):
        options.pop("synchronous", None)
        module = importlib.import_module("docmill.journal.postgres")
        journal: Journal = module.PostgresJournal(target, read_only=read_only, **options)
        return journal
    if "://" in target:
        raise ConfigError(f"unsupported journal {target!r}: give a file path or a postgresql:// URL")
    from docmill.journal.sqlite import SqliteJournal

    return SqliteJournal(target, read_only=read_only, **options)


__all__ = ["Journal", "open_journal"]
