"""``DocumentRef`` (a cheap, picklable pointer) and ``Document`` (loaded content).

Only refs cross process boundaries; the worker turns a ref into a Document with ``Source.load``.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class DocumentRef:
    """Where a document is, and enough to tell whether it changed, without reading it.

    ``id`` is stable within a source (the path relative to the source root, or a JSONL key) and is
    what the journal, exports and truth files call ``path``. ``offset`` locates a record inside a
    container file (a JSONL line); ``mtime_ns`` lets resume notice an edited file without hashing it.
    ``pages`` (first, stop), 0-based, makes the ref one part of a PDF split across workers
    (``extract.split_pages``): only those pages are extracted, and the runner joins the parts.
    """

    id: str
    uri: str
    size: int | None = None
    mtime_ns: int | None = None
    offset: int | None = None
    pages: tuple[int, int] | None = None

    def __reduce__(self) -> tuple[Any, ...]:
        # Rebuilt through __init__ from a tuple: a third of the cost of the dataclass default
        # (a per-field setattr loop), and refs cross a process boundary twice per document.
        return (DocumentRef, (self.id, self.uri, self.size, self.mtime_ns, self.offset, self.pages))


@dataclass(frozen=True, slots=True)
class Document:
    """A loaded document as it flows through the pipeline."""

    ref: DocumentRef
    sha256: str
    content: bytes | None = None
    text: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def evolve(self, **changes: Any) -> Document:
        """A copy with some fields replaced."""
        # Not dataclasses.replace: every step of every document calls this, and replace
        # re-inspects the fields each time (3x slower).
        for name in _DOCUMENT_FIELDS:
            if name not in changes:
                changes[name] = getattr(self, name)
        return Document(**changes)

    def with_metadata(self, **items: Any) -> Document:
        """A copy whose metadata has these items added."""
        return Document(self.ref, self.sha256, self.content, self.text, {**self.metadata, **items})

    def __reduce__(self) -> tuple[Any, ...]:
        return (Document, (self.ref, self.sha256, self.content, self.text, self.metadata))

    @property
    def is_empty(self) -> bool:
        """True once extraction ran and found no visible text."""
        text = self.text  # isspace, not strip: no copy of the text per step per document
        return text is not None and (not text or text.isspace())


_DOCUMENT_FIELDS = tuple(f.name for f in dataclasses.fields(Document))


def sha256_bytes(data: bytes) -> str:
    """Hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()
