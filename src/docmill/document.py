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
    """

    id: str
    uri: str
    size: int | None = None
    mtime_ns: int | None = None
    offset: int | None = None


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
        return dataclasses.replace(self, **changes)

    def with_metadata(self, **items: Any) -> Document:
        """A copy whose metadata has these items added."""
        return dataclasses.replace(self, metadata={**self.metadata, **items})

    @property
    def is_empty(self) -> bool:
        """True once extraction ran and found no visible text."""
        return self.text is not None and not self.text.strip()


def sha256_bytes(data: bytes) -> str:
    """Hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()
