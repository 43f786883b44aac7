"""``JsonlSource``: one document per line of a JSON Lines file, streamed with bounded memory.

The parent reads the file once, line by line, to hand out refs carrying each line's byte offset
and length; a worker's ``load`` reads those bytes back with one ``os.pread`` on a descriptor it
opens once per process (opening the file per line cost more than parsing the line). A malformed
line (bad JSON, not an object, no text) still gets a ref, whose ``load`` raises ``SourceError``
naming the line.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from docmill.document import Document, DocumentRef, sha256_bytes
from docmill.errors import ConfigError, ResourceLimitExceeded, SourceError

_pid = os.getpid()  # kept current by a fork hook: os.getpid() per line is a system call


_DECODE = json.JSONDecoder().decode


def _parse(line: bytes) -> Any:
    """``json.loads(line)`` for a UTF-8 line (a BOM allowed), without its encoding detection: the
    parent parses every line of the file, so the per-call overhead is a third of the cost."""
    return _DECODE(line.decode("utf-8-sig"))


def _forked() -> None:
    global _pid
    _pid = os.getpid()


os.register_at_fork(after_in_child=_forked)


class JsonlSource:
    """Documents ``{"id": …, "text": …}`` (field names configurable), one per line of ``path``.

    A document's id is its ``id_field`` value, or ``line-N`` when the line has none (or cannot be
    parsed). Its sha256 is the hash of its UTF-8 text, so identical texts de-duplicate.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        id_field: str = "id",
        text_field: str = "text",
        max_bytes: int | None = None,
    ) -> None:
        file = Path(path)
        if not file.is_file():
            raise ConfigError(f"JSONL file not found: {path}")
        self.path = str(file.resolve())
        self.root = self.path
        self.id_field = id_field
        self.text_field = text_field
        self.max_bytes = max_bytes
        self._fd: tuple[int, int] | None = None  # (pid, descriptor): a forked child opens its own

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_fd"] = None  # a descriptor means nothing in another process
        return state

    def __iter__(self) -> Iterator[DocumentRef]:
        with open(self.path, "rb") as handle:
            offset = 0
            for number, line in enumerate(handle, start=1):
                if line.strip():
                    yield self._ref(line, number, offset)
                offset += len(line)

    def _ref(self, line: bytes, number: int, offset: int) -> DocumentRef:
        ref_id = f"line-{number}"
        try:
            value = _parse(line).get(self.id_field)
        except (ValueError, AttributeError):
            value = None
        if value is not None and str(value):
            ref_id = str(value)
        # No mtime: appending to the file must not make every earlier line look changed; a line whose
        # length changed is processed again.
        return DocumentRef(id=ref_id, uri=f"{self.path}#L{number}", size=len(line), offset=offset)

    def count(self) -> int | None:
        with open(self.path, "rb") as handle:
            return sum(1 for line in handle if line.strip())

    def load(self, ref: DocumentRef) -> Document:
        if self.max_bytes is not None and (ref.size or 0) > self.max_bytes:
            raise ResourceLimitExceeded(f"{ref.id}: {ref.size:,} bytes exceeds max_bytes={self.max_bytes:,}")
        line = self._read(ref)
        text = self._text(ref, line)
        return Document(ref=ref, sha256=sha256_bytes(text.encode("utf-8", "surrogatepass")), text=text)

    def _read(self, ref: DocumentRef) -> bytes:
        """The ref's line: ``size`` bytes at ``offset`` (refs from older docmills lack the size)."""
        if ref.size is None:
            with open(self.path, "rb") as handle:
                handle.seek(ref.offset or 0)
                return handle.readline()
        try:
            return os.pread(self._descriptor(), ref.size, ref.offset or 0)
        except OSError as exc:
            raise SourceError(f"{ref.uri}: cannot read ({exc})", uri=ref.uri) from exc

    def _descriptor(self) -> int:
        if self._fd is None or self._fd[0] != _pid:
            self._fd = (_pid, os.open(self.path, os.O_RDONLY | os.O_CLOEXEC))
        return self._fd[1]

    def _text(self, ref: DocumentRef, line: bytes) -> str:
        try:
            record: Any = _parse(line)
        except ValueError as exc:
            raise SourceError(f"{ref.uri}: malformed JSON ({exc})", uri=ref.uri) from exc
        if not isinstance(record, dict):
            raise SourceError(f"{ref.uri}: a JSON {type(record).__name__}, not an object", uri=ref.uri)
        text = record.get(self.text_field)
        if not isinstance(text, str):
            raise SourceError(f"{ref.uri}: no string field {self.text_field!r}", uri=ref.uri)
        return text

    def __repr__(self) -> str:
        return f"JsonlSource({self.path!r})"
