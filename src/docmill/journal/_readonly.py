"""Opening a SQLite journal for reading only: no schema script, no pragma that writes, no new file.

A reader (``status``, ``export``, ``failures``, ``eval``, ``serve``) opens the journal with the URI
``file:/abs/docmill.db?mode=ro`` and ``PRAGMA query_only = 1``, so it works on a journal it may
only read (a file 444, a folder 555, another user's journal).

``immutable=1`` is added when the folder is not writable and no ``-wal`` file is there. SQLite then
takes no lock and reads the file as it is: nothing is created beside it (a WAL journal opened
read-only otherwise needs ``-wal`` and ``-shm`` files, and the folder cannot hold them). The price:
such a reader assumes nobody writes the file while it reads, so a run that starts later is not
seen until the reader reopens the journal (``SqliteJournal`` does so when the file changes). When a
``-wal`` file is there (a run is writing, or one was killed), the reader opens it without
``immutable`` and SQLite reads the WAL through the existing files.

On a writable folder, SQLite creates ``-wal`` and ``-shm`` for a read-only connection to a WAL
journal; ``tidy`` removes them on close when this reader created them, they hold nothing, and no
other connection is attached (the same test SQLite makes before deleting them itself).
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from docmill.errors import ConfigError, JournalError
from docmill.journal.base import SCHEMA_VERSION

_DMS = 128  # the byte of the -shm file every connection holds a shared lock on (SQLite's unix VFS)


@dataclass(frozen=True, slots=True)
class Opened:
    """A reader's connection and what was true when it was opened."""

    db: sqlite3.Connection
    immutable: bool
    created_wal: bool  # neither -wal nor -shm was there: if SQLite makes them, they are ours
    stamp: tuple[int, int]  # the file's (size, mtime_ns), to notice a writer under immutable=1


def open_reader(path: str) -> Opened:
    """Open the journal at ``path`` read-only; a missing file is a ``ConfigError``, never a new file."""
    if not os.path.isfile(path):
        raise ConfigError(f"no journal at {path} (run `docmill run` first, or pass --db)")
    immutable = use_immutable(path)
    created = not _sidecars_exist(path)
    try:
        db = _connect(reader_uri(path, immutable=immutable))
        check_version(db, path)
    except sqlite3.DatabaseError as exc:
        raise JournalError(f"cannot open journal {path} for reading: {exc}") from exc
    return Opened(db, immutable, created, stamp(path))


def reader_uri(path: str, *, immutable: bool) -> str:
    """``file:///abs/path?mode=ro`` (with ``&immutable=1`` when asked), the path percent-encoded."""
    uri = Path(path).absolute().as_uri() + "?mode=ro"
    return uri + "&immutable=1" if immutable else uri


def use_immutable(path: str) -> bool:
    """True when the folder is not writable and no run left a ``-wal`` beside the file."""
    return not folder_writable(path) and not os.path.exists(path + "-wal")


def folder_writable(path: str) -> bool:
    """Whether this process may create files beside ``path``."""
    return os.access(os.path.dirname(os.path.abspath(path)), os.W_OK)


def stamp(path: str) -> tuple[int, int]:
    """(size, mtime_ns) of ``path``, or (-1, -1) when it cannot be read."""
    try:
        st = os.stat(path)
    except OSError:
        return (-1, -1)
    return (st.st_size, st.st_mtime_ns)


def is_stale(opened: Opened, path: str) -> bool:
    """An immutable reader must reopen: the file changed, or a writer's ``-wal`` appeared."""
    if not opened.immutable:
        return False
    return stamp(path) != opened.stamp or os.path.exists(path + "-wal")


def check_version(db: sqlite3.Connection, path: str) -> None:
    """Refuse a file that is not a journal of this schema version (reading only, never migrating)."""
    version = db.execute("PRAGMA user_version").fetchone()[0]
    if version == SCHEMA_VERSION:
        return
    if version == 0:
        raise JournalError(f"{path} is not a docmill journal (no journal tables)")
    raise JournalError(
        f"{path} has journal schema version {version}; this docmill reads version {SCHEMA_VERSION} "
        "(a writer upgrades an older one in place: run `docmill run` on it once)"
    )


def tidy(opened: Opened, path: str) -> None:
    """Remove the empty ``-wal``/``-shm`` this reader's connection made, if nobody else uses them."""
    if not opened.created_wal or opened.immutable:
        return
    wal, shm = path + "-wal", path + "-shm"
    try:
        if os.path.getsize(wal) != 0:
            return  # a writer came and wrote: the files are its own now
        with open(shm, "r+b") as handle:  # a write lock needs a handle open for writing; nothing is written
            if _alone(handle.fileno()):
                os.unlink(wal)
                os.unlink(shm)
    except OSError:
        return  # gone already, or not ours to remove


def _alone(fd: int) -> bool:
    """True when no connection holds the -shm's DMS lock (so none is attached); keeps our lock."""
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, _DMS)
    except OSError:
        return False
    return True


def _sidecars_exist(path: str) -> bool:
    return os.path.exists(path + "-wal") or os.path.exists(path + "-shm")


def _connect(uri: str) -> sqlite3.Connection:
    db = sqlite3.connect(uri, uri=True, timeout=30.0, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA query_only = 1")
    return db
