"""Files on disk: ``DirectorySource`` (a folder, walked recursively) and ``FileListSource`` (a paths file).

Listing never opens a file and never fails: anything odd met on the way (a dangling or looping symlink,
an unreadable folder, a named pipe, a socket) is yielded as a ref whose ``load`` raises ``SourceError``
with the reason, so it ends in the journal as a failure instead of stopping the walk. ``load`` opens
only regular files, non-blocking, and checks the size limit on the open descriptor before reading.
"""

from __future__ import annotations

import errno
import fnmatch
import os
import stat
from collections.abc import Iterator, Sequence
from pathlib import Path

from docmill.document import Document, DocumentRef, sha256_bytes
from docmill.errors import ConfigError, ResourceLimitExceeded, SourceError

_KINDS = {
    stat.S_IFIFO: "a named pipe",
    stat.S_IFSOCK: "a socket",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFDIR: "a directory that could not be listed",
}


def load_file(ref: DocumentRef, max_bytes: int | None = None) -> Document:
    """Read a regular file into a Document (content + sha256); every problem is a SourceError."""
    try:
        info = os.stat(ref.uri)
    except OSError as exc:
        raise SourceError(_stat_problem(ref.uri, exc), uri=ref.uri) from exc
    _check_regular(ref.uri, info.st_mode)
    _check_size(ref.uri, info.st_size, max_bytes)
    try:
        content = _read_regular(ref.uri, max_bytes)
    except OSError as exc:
        raise SourceError(f"cannot read {ref.id}: {exc.strerror or exc}", uri=ref.uri) from exc
    return Document(ref=ref, sha256=sha256_bytes(content), content=content)


def _read_regular(path: str, max_bytes: int | None) -> bytes:
    # O_NONBLOCK: should the path be swapped for a FIFO after the stat, open() still returns at once.
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(fd)
        _check_regular(path, info.st_mode)
        _check_size(path, info.st_size, max_bytes)
        limit = -1 if max_bytes is None else max_bytes + 1
        content = handle.read(limit)
    _check_size(path, len(content), max_bytes)  # the file may have grown since fstat
    return content


def _check_regular(path: str, mode: int) -> None:
    if stat.S_ISREG(mode):
        return
    kind = _KINDS.get(stat.S_IFMT(mode), "not a regular file")
    if stat.S_ISDIR(mode) and os.path.islink(path):
        real = os.path.realpath(path)
        looping = _inside(os.path.dirname(os.path.abspath(path)), real)
        kind = (
            "a symlink to a folder being walked (a loop)"
            if looping
            else "a symlink to a folder outside the source"
        )
    raise SourceError(f"{path}: {kind}; not read", uri=path)


def _check_size(path: str, size: int, max_bytes: int | None) -> None:
    if max_bytes is not None and size > max_bytes:
        raise ResourceLimitExceeded(
            f"{os.path.basename(path)}: {size:,} bytes exceeds max_bytes={max_bytes:,}"
        )


def _stat_problem(path: str, exc: OSError) -> str:
    if exc.errno == errno.ELOOP:
        return f"{path}: symlink loop"
    if exc.errno == errno.ENOENT and os.path.islink(path):
        return f"{path}: dangling symlink to {os.readlink(path)!r}"
    if exc.errno == errno.EACCES:
        return f"{path}: permission denied"
    return f"{path}: {exc.strerror or exc}"


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def posix_id(relative: str) -> str:
    """A journal-safe id: POSIX separators, undecodable bytes of a file name made visible."""
    rel = relative.replace(os.sep, "/")
    try:
        rel.encode("utf-8")
    except UnicodeEncodeError:
        rel = os.fsencode(rel).decode("utf-8", "backslashreplace")
    return rel


class DirectorySource:
    """Every file under ``root``, recursively, in sorted (deterministic) order.

    ``include``/``exclude`` are glob patterns matched against the path relative to ``root`` and
    against the file name (``*.pdf``, ``batch-a/*``). Symlinks to files are followed; symlinks to
    folders are followed when they stay inside ``root`` (anywhere with ``follow_links=True``), except
    one that points back to a folder being walked, which is reported as a loop. ``max_bytes`` fails
    larger files at load time without reading them.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        include: Sequence[str] = (),
        exclude: Sequence[str] = (),
        max_bytes: int | None = None,
        follow_links: bool = False,
    ) -> None:
        path = Path(root)
        if not path.is_dir():
            raise ConfigError(f"not a directory: {root}")
        self.root = str(path.resolve())
        self.include = tuple(include)
        self.exclude = tuple(exclude)
        self.max_bytes = max_bytes
        self.follow_links = follow_links  # follow folder symlinks that leave the root

    def __iter__(self) -> Iterator[DocumentRef]:
        yield from self._walk(self.root, "", frozenset())

    def count(self) -> int | None:
        return sum(1 for _ in self._walk(self.root, "", frozenset(), with_stat=False))

    def load(self, ref: DocumentRef) -> Document:
        return load_file(ref, self.max_bytes)

    def _walk(
        self, folder: str, prefix: str, ancestors: frozenset[str], *, with_stat: bool = True
    ) -> Iterator[DocumentRef]:
        real = os.path.realpath(folder)
        ancestors = ancestors | {real}
        try:
            with os.scandir(folder) as listing:
                entries = sorted(listing, key=lambda e: e.name)
        except OSError:
            # An unreadable folder becomes one failed document, so the reason is on record.
            yield DocumentRef(id=posix_id(prefix.rstrip("/") or "."), uri=folder)
            return
        for entry in entries:
            yield from self._entry(entry, prefix + entry.name, ancestors, with_stat)

    def _entry(
        self, entry: os.DirEntry[str], rel: str, ancestors: frozenset[str], with_stat: bool
    ) -> Iterator[DocumentRef]:
        if _is_dir(entry):
            real = os.path.realpath(entry.path)
            if real in ancestors or not (self.follow_links or _inside(real, self.root)):
                yield DocumentRef(id=posix_id(rel), uri=entry.path)  # not walked: load() says why
            else:
                yield from self._walk(entry.path, rel + "/", ancestors, with_stat=with_stat)
            return
        if not self._selected(rel):
            return
        size = mtime = None
        if with_stat:
            size, mtime = _size_mtime(entry)
        yield DocumentRef(id=posix_id(rel), uri=entry.path, size=size, mtime_ns=mtime)

    def _selected(self, rel: str) -> bool:
        return selected(rel, self.include, self.exclude)

    def __repr__(self) -> str:
        return f"DirectorySource({self.root!r})"


def selected(rel: str, include: Sequence[str], exclude: Sequence[str]) -> bool:
    """Whether the relative path ``rel`` passes the include (when any) and exclude globs."""
    name = rel.rsplit("/", 1)[-1]
    if include and not _matches(rel, name, include):
        return False
    return not _matches(rel, name, exclude)


def _is_dir(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir(follow_symlinks=True)
    except OSError:
        return False


def _size_mtime(entry: os.DirEntry[str]) -> tuple[int | None, int | None]:
    try:
        info = entry.stat(follow_symlinks=True)
    except OSError:
        return None, None
    return info.st_size, info.st_mtime_ns


def _matches(rel: str, name: str, patterns: Sequence[str]) -> bool:
    return any(fnmatch.fnmatchcase(rel, p) or fnmatch.fnmatchcase(name, p) for p in patterns)


class FileListSource:
    """The files named in ``list_file``, one path a line (blank lines and ``#`` comments skipped).

    Relative paths are resolved against ``root`` (default: the list file's folder); a document's id
    is its path relative to ``root`` when it lies under it, else the path as written. An ``s3://``
    line is an object, fetched by the worker, and its id is the URL as written.
    """

    def __init__(
        self, list_file: str | os.PathLike[str], *, root: str | os.PathLike[str] | None = None
    ) -> None:
        path = Path(list_file)
        if not path.is_file():
            raise ConfigError(f"file list not found: {list_file}")
        self.list_file = str(path.resolve())
        self.root = str(Path(root).resolve() if root is not None else path.resolve().parent)
        self.max_bytes: int | None = None

    def _lines(self) -> Iterator[str]:
        with open(self.list_file, encoding="utf-8", errors="surrogateescape") as handle:
            for line in handle:
                text = line.strip()
                if text and not text.startswith("#"):
                    yield text

    def __iter__(self) -> Iterator[DocumentRef]:
        for line in self._lines():
            if line.startswith("s3://"):  # fetched by the worker; no size or ETag without a request per line
                yield DocumentRef(id=line, uri=line)
                continue
            full = os.path.normpath(os.path.join(self.root, line))
            rel = os.path.relpath(full, self.root)
            ref_id = line if rel.startswith("..") else rel
            size, mtime = _stat_quietly(full)
            yield DocumentRef(id=posix_id(ref_id), uri=full, size=size, mtime_ns=mtime)

    def count(self) -> int | None:
        return sum(1 for _ in self._lines())

    def load(self, ref: DocumentRef) -> Document:
        if ref.uri.startswith("s3://"):
            from docmill.sources.s3 import load_object

            return load_object(ref, self.max_bytes)
        return load_file(ref, self.max_bytes)

    def check(self) -> None:
        """Each bucket named by an ``s3://`` line exists and is readable: checked once, before any work."""
        buckets = {line[5:].partition("/")[0] for line in self._lines() if line.startswith("s3://")}
        if buckets:
            from docmill.sources.s3 import check_bucket

            for bucket in sorted(buckets):
                check_bucket(bucket)

    def __repr__(self) -> str:
        return f"FileListSource({self.list_file!r})"


def _stat_quietly(path: str) -> tuple[int | None, int | None]:
    try:
        info = os.stat(path)
    except OSError:
        return None, None
    return info.st_size, info.st_mtime_ns
