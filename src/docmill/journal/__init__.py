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


def open_journal(target: str, **options: Any) -> Journal:
    """Open (creating if needed) the journal at ``target``.

    ``options`` go to the backend: ``quarantine_after`` for both, ``synchronous`` for SQLite.
    """
    if target.startswith(_POSTGRES):
        options.pop("synchronous", None)
        module = importlib.import_module("docmill.journal.postgres")
        journal: Journal = module.PostgresJournal(target, **options)
        return journal
    if "://" in target:
        raise ConfigError(f"unsupported journal {target!r}: give a file path or a postgresql:// URL")
    from docmill.journal.sqlite import SqliteJournal

    return SqliteJournal(target, **options)


__all__ = ["Journal", "open_journal"]
