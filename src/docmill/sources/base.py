"""The Source protocol: lazy refs in the parent, ``load`` in the worker."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol, runtime_checkable

from docmill.document import Document, DocumentRef


@runtime_checkable
class Source(Protocol):
    """Where documents come from.

    ``__iter__`` yields cheap refs lazily and never reads content; problems met while listing
    (unreadable folders, symlink loops) are yielded as refs whose ``load`` raises ``SourceError``,
    so they end in the journal as failures with a reason. ``load`` runs in the worker, so a source
    must be picklable. ``root`` names the source for the journal and exports.
    """

    root: str

    def __iter__(self) -> Iterator[DocumentRef]: ...
    def count(self) -> int | None: ...
    def load(self, ref: DocumentRef) -> Document: ...
