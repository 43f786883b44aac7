"""ResponseCache: answers already paid for, keyed by what determines them.

The key is (content sha256, prompt version, model, labels fingerprint, prompt settings): the same
document classified again, in a re-run or as a duplicate elsewhere in the collection, costs
nothing. A small SQLite file in WAL mode with a busy timeout, so worker processes may read and
write it at once. It is a cache, not the journal: losing it loses money, never results.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS replies "
    "(key TEXT PRIMARY KEY, answer TEXT NOT NULL, created REAL NOT NULL DEFAULT (strftime('%s', 'now')))"
)


def cache_key(*parts: str) -> str:
    """One stable key from the parts that determine an answer."""
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


class ResponseCache:
    """Key → small JSON answer. Picklable (a path); connects lazily, one connection per thread."""

    def __init__(self, path: str | os.PathLike[str], *, busy_timeout: float = 30.0) -> None:
        self.path = Path(path)
        self.busy_timeout = busy_timeout
        self._local = threading.local()

    def _db(self) -> sqlite3.Connection:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None or getattr(self._local, "pid", None) != os.getpid():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(
                self.path, timeout=self.busy_timeout, isolation_level=None, check_same_thread=False
            )
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute(_SCHEMA)
            self._local.db, self._local.pid = db, os.getpid()
        return db

    def get(self, key: str) -> dict[str, Any] | None:
        row = self._db().execute("SELECT answer FROM replies WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def put(self, key: str, answer: Mapping[str, Any]) -> None:
        self._db().execute(
            "INSERT OR REPLACE INTO replies (key, answer) VALUES (?, ?)", (key, json.dumps(dict(answer)))
        )

    def __len__(self) -> int:
        return int(self._db().execute("SELECT count(*) FROM replies").fetchone()[0])

    def close(self) -> None:
        db = getattr(self._local, "db", None)
        if db is not None and getattr(self._local, "pid", None) == os.getpid():
            db.close()
        self._local.db = None

    def __getstate__(self) -> dict[str, Any]:
        return {"path": self.path, "busy_timeout": self.busy_timeout}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._local = threading.local()

    def __repr__(self) -> str:
        return f"ResponseCache({str(self.path)!r})"


class NullCache:
    """Remembers nothing."""

    def get(self, key: str) -> dict[str, Any] | None:
        return None

    def put(self, key: str, answer: Mapping[str, Any]) -> None:
        return None

    def close(self) -> None:
        return None
