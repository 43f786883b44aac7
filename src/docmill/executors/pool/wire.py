"""The compact form refs and outcomes take through a worker's pipe.

Pickling a frozen, slotted dataclass costs 5–18 µs (copyreg and one ``object.__setattr__`` per
field), more than a no-op document's whole processing; plain tuples of str/int/float cost well under
a microsecond each. So refs travel as tuples, outcomes travel as tuples *without* their ref (the
parent still holds it, by sequence number), staged Documents likewise without their ref, and
anything else as itself.
"""

from __future__ import annotations

from typing import Any

from docmill.document import Document, DocumentRef
from docmill.outcome import ErrorInfo, Outcome, Status, Timings

Item = tuple[int, DocumentRef]
_OUTCOME = "\x00outcome"  # marks a packed Outcome among other results
_DOCUMENT = "\x00document"  # marks a packed Document (staged: the CPU stage's product)
_STATUS = {status.value: status for status in Status}  # a dict lookup: Status(value) costs ~1 µs


def pack_items(items: list[Item]) -> list[tuple[Any, ...]]:
    return [(seq, r.id, r.uri, r.size, r.mtime_ns, r.offset, r.pages) for seq, r in items]


def unpack_items(packed: list[tuple[Any, ...]]) -> list[Item]:
    return [(p[0], DocumentRef(p[1], p[2], p[3], p[4], p[5], p[6])) for p in packed]


def pack_result(result: Any) -> Any:
    """An Outcome as a tuple; a tuple with Outcomes inside likewise; anything else unchanged."""
    if isinstance(result, Outcome):
        e, t = result.error, result.timings
        error = None if e is None else (e.type, e.message, e.traceback, e.retryable)
        return (_OUTCOME, result.status.value, result.sha256, result.result, error, result.attempts,
                t.started, t.finished, t.worker)  # fmt: skip
    if isinstance(result, Document):
        return (_DOCUMENT, result.sha256, result.content, result.text, result.metadata)
    if isinstance(result, tuple):
        return tuple(pack_result(part) for part in result)
    return result


def unpack_result(packed: Any, ref: DocumentRef) -> Any:
    """The inverse of ``pack_result``, with ``ref`` put back into outcomes."""
    if isinstance(packed, tuple) and packed:
        if packed[0] == _OUTCOME:
            _, status, sha, result, error, attempts, started, finished, worker = packed
            info = None if error is None else ErrorInfo(*error)
            timings = Timings(started, finished, worker)
            return Outcome(ref, _STATUS[status], sha, result, info, attempts, timings)
        if packed[0] == _DOCUMENT:
            return Document(ref, *packed[1:])
        return tuple(unpack_result(part, ref) for part in packed)
    return packed
