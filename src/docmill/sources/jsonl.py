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
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from docmill.document import Document, DocumentRef, sha256_bytes
from docmill.errors import ConfigError, ResourceLimitExceeded, SourceError

_pid = os.getpid()  # kept current by a fork hook: os.getpid() per line is a system call


_SCAN: Callable[[str, int], tuple[Any, int]] = getattr(json.JSONDecoder(), "scan_once")  # noqa: B009 (untyped)
_BLANK = " \t\n\r"  # JSON's whitespace


def _parse(line: bytes) -> Any:
    """``json.loads(line)`` for a UTF-8 line (a BOM allowed), straight through the C scanner: the
    parent parses every line of the file, and ``json.loads``' encoding detection, the ``utf-8-sig``
    codec (Python code) and ``JSONDecoder.decode``'s whitespace regexes cost 3× the parse itself."""
    text = line.decode()
    if text.startswith("\ufeff"):
        text = text[1:]
    start = len(text) - len(text.lstrip(_BLANK)) if text[:1] in _BLANK else 0
    try:
        value, end = _SCAN(text, start)
    except StopIteration as exc:  # no JSON value at ``start``
        raise ValueError(f"expecting a value at character {exc.value}") from None
    if end < len(text) and text[end:].strip(_BLANK):
        raise ValueError(f"extra data at character {end}")
    return value


def _forked() -> None:
    global _pid
    _pid = os.getpid()


os.register_at_fork(after_in_child=_forked)


def record_refs(
    lines: Iterable[bytes], *, uri: str, id_field: str, prefix: str = ""
) -> Iterator[DocumentRef]:
    """One ref per non-blank line of ``lines`` (each with its line end, as a binary file iterates),
    carrying its byte offset and length: the splitting every JSONL source shares, whether the bytes
    come from a file or an object store. A ref's id is ``prefix`` and the record's ``id_field`` (or
    ``line-N``); its uri is ``uri#LN``."""
    offset = 0
    for number, line in enumerate(lines, start=1):
        if line.strip():
            yield _ref(line, number, offset, uri, id_field, prefix)
        offset += len(line)


def _ref(line: bytes, number: int, offset: int, uri: str, id_field: str, prefix: str) -> DocumentRef:
    try:
        value = _parse(line).get(id_field)
    except (ValueError, AttributeError):
        value = None
    ref_id = (str(value) if value is not None else "") or f"line-{number}"
    # No mtime: appending to the file must not make every earlier line look changed; a line whose
    # length changed is processed again. Positional: the listing builds one ref per line.
    return DocumentRef(prefix + ref_id, f"{uri}#L{number}", len(line), None, offset)


def lines_of(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """The lines of a byte stream read in chunks, each with its ``\\n``, as a binary file iterates."""
    pending: list[bytes] = []
    for chunk in chunks:
        parts = chunk.split(b"\n")
        for part in parts[:-1]:
            pending.append(part)
            yield b"".join(pending) + b"\n"
            pending.clear()
        if parts[-1]:
            pending.append(parts[-1])
    if pending:
        yield b"".join(pending)


def check_record_size(ref: DocumentRef, max_bytes: int | None) -> None:
    """``max_bytes`` applied to one record, before its bytes are read."""
    if max_bytes is not None and (ref.size or 0) > max_bytes:
        raise ResourceLimitExceeded(f"{ref.id}: {ref.size:,} bytes exceeds max_bytes={max_bytes:,}")


def record_document(ref: DocumentRef, line: bytes, text_field: str) -> Document:
    """The Document of one record's line; its sha256 is that of its UTF-8 text."""
    text = record_text(ref, line, text_field)
    return Document(ref=ref, sha256=sha256_bytes(text.encode("utf-8", "surrogatepass")), text=text)


def record_text(ref: DocumentRef, line: bytes, text_field: str) -> str:
    """The ``text_field`` of the JSON object on ``line``; a SourceError naming the line otherwise."""
    try:
        record: Any = _parse(line)
    except ValueError as exc:
        raise SourceError(f"{ref.uri}: malformed JSON ({exc})", uri=ref.uri) from exc
    if not isinstance(record, dict):
        raise SourceError(f"{ref.uri}: a JSON {type(record).__name__}, not an object", uri=ref.uri)
    text = record.get(text_field)
    if not isinstance(text, str):
        raise SourceError(f"{ref.uri}: no string field {text_field!r}", uri=ref.uri)
    return text


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
            yield from record_refs(handle, uri=self.path, id_field=self.id_field)

    def count(self) -> int | None:
        with open(self.path, "rb") as handle:
            return sum(1 for line in handle if line.strip())

    def load(self, ref: DocumentRef) -> Document:
        check_record_size(ref, self.max_bytes)
        return record_document(ref, self._read(ref), self.text_field)

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

    def __repr__(self) -> str:
        return f"JsonlSource({self.path!r})"
