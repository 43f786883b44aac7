"""WAL mode for an SQLite file that several processes or threads may open at the same moment.

Switching a file to WAL takes an exclusive lock that SQLite refuses at once, without calling the
busy handler, to a connection racing another one doing the same (two runs starting on one new
journal; the threads of a run opening the response cache together): ``database is locked``
however long the busy timeout. The race is short, so it is retried here for up to ``patience``.
"""

from __future__ import annotations

import sqlite3
import time

_PAUSE = 0.01  # seconds between two tries: the other connection's switch takes about a millisecond


def use_wal(db: sqlite3.Connection, patience: float) -> None:
    """Put ``db``'s file in WAL mode (a no-op when it already is), retrying the switch's race."""
    deadline = time.monotonic() + patience
    while True:
        try:
            if db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                db.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(_PAUSE)
