"""ResponseCache: answers already paid for, keyed by what determines them.

The key is (content sha256, prompt version, model, labels fingerprint, prompt settings): the same
document classified again, in a re-run or as a duplicate elsewhere in the collection, costs
nothing. A small SQLite file in WAL mode with a busy timeout, so worker processes may read and
write it at once. It is a cache, not the journal: losing it loses money, never results.

Beside the answers it keeps *claims*: the process asking the model for a key right now, so that a
copy of the same content in another worker process waits for that answer instead of paying for it
again (``docmill.llm.singleflight``). A claim expires, and a dead owner's claim is taken over.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sqlite3
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from docmill._sqlite_wal import use_wal

log = logging.getLogger(__name__)

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS replies "
    "(key TEXT PRIMARY KEY, answer TEXT NOT NULL, created REAL NOT NULL DEFAULT (strftime('%s', 'now')))"
)
_CLAIMS = (
    "CREATE TABLE IF NOT EXISTS claims "
    "(key TEXT PRIMARY KEY, owner TEXT NOT NULL, ref TEXT NOT NULL, expires REAL NOT NULL)"
)


@dataclass(frozen=True, slots=True)
class Claim:
    """Who asks the model for a key right now: ``owner`` (host:pid:token), for the document ``ref``,
    until ``expires`` (wall time, shared by the run's processes)."""

    owner: str
    ref: str
    expires: float


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
            _prepare(db, self.busy_timeout)
            self._local.db, self._local.pid = db, os.getpid()
        return db

    def get(self, key: str) -> dict[str, Any] | None:
        """The answer for ``key``; a miss too when the cache cannot be read (it costs money, not results)."""
        try:
            row = self._db().execute("SELECT answer FROM replies WHERE key = ?", (key,)).fetchone()
        except sqlite3.Error as exc:
            _unusable(self.path, exc)
            return None
        return json.loads(row[0]) if row else None

    def put(self, key: str, answer: Mapping[str, Any]) -> None:
        """Remember ``answer``; an unwritable cache is reported once (the journal keeps the answer)."""
        try:
            self._db().execute(
                "INSERT OR REPLACE INTO replies (key, answer) VALUES (?, ?)", (key, json.dumps(dict(answer)))
            )
        except sqlite3.Error as exc:
            _unusable(self.path, exc)

    def __len__(self) -> int:
        return int(self._db().execute("SELECT count(*) FROM replies").fetchone()[0])

    # -- claims: one process asks, the others wait for its answer (docmill.llm.singleflight) --------

    def claim(self, key: str, claim: Claim, *, replacing: Claim | None = None) -> bool:
        """Take ``key`` for ``claim``: when nobody holds it, or from ``replacing`` (expired or dead),
        atomically, so of two processes racing for it exactly one wins."""
        if replacing is None:
            sql = "INSERT OR IGNORE INTO claims (key, owner, ref, expires) VALUES (?, ?, ?, ?)"
            args: tuple[Any, ...] = (key, claim.owner, claim.ref, claim.expires)
        else:
            sql = (
                "UPDATE claims SET owner = ?, ref = ?, expires = ? "
                "WHERE key = ? AND owner = ? AND expires = ?"
            )
            args = (claim.owner, claim.ref, claim.expires, key, replacing.owner, replacing.expires)
        return self._db().execute(sql, args).rowcount == 1

    def holder(self, key: str) -> Claim | None:
        row = self._db().execute("SELECT owner, ref, expires FROM claims WHERE key = ?", (key,)).fetchone()
        return Claim(row[0], row[1], float(row[2])) if row else None

    def release(self, key: str, claim: Claim) -> None:
        """Give ``key`` up (answered or not); a claim taken over by someone else is left alone."""
        self._db().execute("DELETE FROM claims WHERE key = ? AND owner = ?", (key, claim.owner))

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


def _prepare(db: sqlite3.Connection, patience: float) -> None:
    """WAL mode (``docmill._sqlite_wal``: the threads of a run open a new cache together) and the tables."""
    use_wal(db, patience)
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute(_SCHEMA)
    db.execute(_CLAIMS)


_warned: set[Path] = set()


def _unusable(path: Path, exc: sqlite3.Error) -> None:
    if path not in _warned:
        _warned.add(path)
        log.warning("response cache %s unusable (%s): answers are asked again", path, exc)


class NullCache:
    """Remembers nothing."""

    def get(self, key: str) -> dict[str, Any] | None:
        return None

    def put(self, key: str, answer: Mapping[str, Any]) -> None:
        return None

    def claim(self, key: str, claim: Claim, *, replacing: Claim | None = None) -> bool:
        """Always granted: without a shared file, only the copies inside one process coalesce."""
        return True

    def holder(self, key: str) -> Claim | None:
        return None

    def release(self, key: str, claim: Claim) -> None:
        return None

    def close(self) -> None:
        return None
