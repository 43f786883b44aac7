"""A public test kit: a fake clock, in-memory sources and processors that misbehave on purpose.

Everything here is importable at module level so it pickles into worker processes. The crash
processors misbehave only for the document ids in ``targets`` and pass every other document
through, so a test can check that one bad document fails alone and the rest end ``ok``.
"""

from __future__ import annotations

import asyncio
import ctypes
import hashlib
import os
import signal
import sys
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

from docmill.document import Document, DocumentRef, sha256_bytes
from docmill.errors import SourceError, UnsupportedDocument
from docmill.processors.base import AsyncProcessor, Processor

# ---------------------------------------------------------------------------------------------- clock


class FakeClock:
    """A Clock whose time moves only when told to (``advance``) or when someone sleeps on it."""

    def __init__(self, start: float = 1_000.0, wall_start: float = 1_700_000_000.0) -> None:
        self._now = start
        self._wall_offset = wall_start - start
        self._lock = threading.Lock()
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self._now

    def wall(self) -> float:
        return self._now + self._wall_offset

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += max(0.0, seconds)

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.advance(seconds)

    async def asleep(self, seconds: float) -> None:
        self.sleep(seconds)
        await asyncio.sleep(0)


# --------------------------------------------------------------------------------------------- sources


def ref_for(i: int, prefix: str = "doc") -> DocumentRef:
    """The i-th in-memory ref: ``doc-000042`` at ``mem://doc-000042``."""
    name = f"{prefix}-{i:06d}"
    return DocumentRef(id=name, uri=f"mem://{name}", size=len(name) + 11)


def iter_refs(n: int, prefix: str = "doc") -> Iterator[DocumentRef]:
    """``n`` in-memory refs, lazily (a million of them cost nothing until pulled)."""
    return (ref_for(i, prefix) for i in range(n))


def make_refs(n: int, prefix: str = "doc") -> list[DocumentRef]:
    """``n`` in-memory refs as a list."""
    return list(iter_refs(n, prefix))


TWO_LABELS = """labels:
  invoice:
    description: "A bill requesting payment."
    keywords: [invoice, amount due, payment terms]
  recipe:
    description: "How to cook a dish."
    keywords: [tablespoon, oven, simmer, ingredients]
"""
"""A labels file of two labels (invoice, recipe) that the keyword classifier tells apart."""


def write_corpus(root: Path, docs: Mapping[str, str], labels: str = TWO_LABELS) -> Path:
    """Write ``docs`` (relative path → text) under ``root`` with a ``labels.yaml``; returns ``root``."""
    for rel, text in docs.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text, encoding="utf-8")
    (root / "labels.yaml").write_text(labels, encoding="utf-8")
    return root


class PulledCounter:
    """Wraps refs and counts how many were pulled: the laziness probe of the contract suite."""

    def __init__(self, refs: Iterable[DocumentRef]) -> None:
        self._refs = iter(refs)
        self.pulled = 0

    def __iter__(self) -> Iterator[DocumentRef]:
        for ref in self._refs:
            self.pulled += 1
            yield ref


class MemorySource:
    """A picklable Source whose documents are made up from their ids (content = ``text of <id>``).

    ``unreadable`` ids raise SourceError on load, like a file that vanished.
    """

    root = "memory"

    def __init__(self, n: int = 0, *, unreadable: Iterable[str] = ()) -> None:
        self.n = n
        self.unreadable = frozenset(unreadable)

    def __iter__(self) -> Iterator[DocumentRef]:
        return iter_refs(self.n)

    def count(self) -> int | None:
        return self.n

    def load(self, ref: DocumentRef) -> Document:
        if ref.id in self.unreadable:
            raise SourceError(f"cannot read {ref.uri}", uri=ref.uri)
        content = f"text of {ref.id}".encode()
        return Document(ref=ref, sha256=sha256_bytes(content), content=content)


# ------------------------------------------------------------------------------------ well-behaved steps


def _finish(doc: Document, **metadata: object) -> Document:
    text = doc.text if doc.text is not None else (doc.content or b"").decode("utf-8", "replace")
    label = "even" if int(doc.sha256[:2], 16) % 2 == 0 else "odd"
    return doc.evolve(text=text).with_metadata(label=label, **metadata)


class NoopProcessor(Processor):
    """Decodes the content and labels the document from its hash; costs almost nothing."""

    name = "noop"

    def process(self, doc: Document) -> Document:
        return _finish(doc)


class CpuProcessor(Processor):
    """Burns CPU: ``rounds`` chained sha256 over the content (about 1 µs per round)."""

    name = "cpu"

    def __init__(self, rounds: int = 5_000) -> None:
        self.rounds = rounds

    def process(self, doc: Document) -> Document:
        digest = doc.content or b""
        for _ in range(self.rounds):
            digest = hashlib.sha256(digest).digest()
        return _finish(doc, digest=digest.hex()[:8])


class SleepProcessor(Processor):
    """Blocks its thread for ``seconds`` (a synchronous network call)."""

    name = "sleep"

    def __init__(self, seconds: float = 0.01) -> None:
        self.seconds = seconds

    def process(self, doc: Document) -> Document:
        time.sleep(self.seconds)
        return _finish(doc)


class AsyncSleepProcessor(AsyncProcessor):
    """Awaits ``seconds`` (an LLM call's latency without the LLM)."""

    name = "async-sleep"

    def __init__(self, seconds: float = 0.05) -> None:
        self.seconds = seconds

    async def aprocess(self, doc: Document) -> Document:
        await asyncio.sleep(self.seconds)
        return _finish(doc)


class SetupRecorder(Processor):
    """Appends ``setup <pid>`` / ``teardown <pid>`` lines to ``path``: counts setups per worker."""

    name = "setup-recorder"

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = str(path)

    def _note(self, event: str) -> None:
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(f"{event} {os.getpid()}\n")

    def setup(self) -> None:
        self._note("setup")

    def teardown(self) -> None:
        self._note("teardown")

    def process(self, doc: Document) -> Document:
        return doc

    @staticmethod
    def setups_per_pid(path: str | os.PathLike[str]) -> dict[int, int]:
        counts: dict[int, int] = {}
        lines = Path(path).read_text(encoding="utf-8").split() if Path(path).exists() else []
        for event, pid in zip(lines[::2], lines[1::2], strict=True):
            if event == "setup":
                counts[int(pid)] = counts.get(int(pid), 0) + 1
        return counts


# ------------------------------------------------------------------------------------ crash processors


class TargetedProcessor(Processor):
    """Misbehaves (``misbehave``) for the ids in ``targets``; every other document passes."""

    name = "targeted"

    def __init__(self, targets: Iterable[str] = ()) -> None:
        self.targets = frozenset(targets)

    def process(self, doc: Document) -> Document:
        if doc.ref.id in self.targets:
            return self.misbehave(doc)
        return _finish(doc)

    def misbehave(self, doc: Document) -> Document:
        return doc


class RaisingProcessor(TargetedProcessor):
    """Raises a permanent processing error."""

    name = "crash-raise"

    def misbehave(self, doc: Document) -> Document:
        raise UnsupportedDocument(f"refusing {doc.ref.id} on purpose")


class ExitingProcessor(TargetedProcessor):
    """Calls ``sys.exit(3)`` (SystemExit, which the Job catches)."""

    name = "crash-sys-exit"

    def misbehave(self, doc: Document) -> Document:
        sys.exit(3)


class HardExitProcessor(TargetedProcessor):
    """Calls ``os._exit(7)``: the process ends at once, no cleanup."""

    name = "crash-os-exit"

    def misbehave(self, doc: Document) -> Document:
        os._exit(7)


class KillingProcessor(TargetedProcessor):
    """Sends SIGKILL to its own process (the OOM killer's way)."""

    name = "crash-sigkill"

    def misbehave(self, doc: Document) -> Document:
        os.kill(os.getpid(), signal.SIGKILL)
        time.sleep(10)  # pragma: no cover - the signal arrives first
        return doc


class SegfaultProcessor(TargetedProcessor):
    """Reads address 0 through ctypes: SIGSEGV, as a buggy C extension would."""

    name = "crash-segfault"

    def misbehave(self, doc: Document) -> Document:
        ctypes.string_at(0)
        return doc  # pragma: no cover


class UnpicklableResultProcessor(TargetedProcessor):
    """Puts a lock into the result, which cannot cross a process boundary."""

    name = "crash-unpicklable"

    def misbehave(self, doc: Document) -> Document:
        return _finish(doc, handle=threading.Lock())


class HangingProcessor(TargetedProcessor):
    """Sleeps ``seconds`` (far past any sane per-document timeout) in short naps."""

    name = "crash-hang"

    def __init__(self, targets: Iterable[str] = (), seconds: float = 30.0) -> None:
        super().__init__(targets)
        self.seconds = seconds

    def misbehave(self, doc: Document) -> Document:
        end = time.monotonic() + self.seconds
        while time.monotonic() < end:
            time.sleep(0.02)
        return _finish(doc)


_LEAKED: list[bytes] = []  # kept alive on purpose: the leak


class LeakingProcessor(TargetedProcessor):
    """Allocates ``megabytes`` of touched memory and never frees it."""

    name = "crash-leak"

    def __init__(self, targets: Iterable[str] = (), megabytes: int = 200) -> None:
        super().__init__(targets)
        self.megabytes = megabytes

    def misbehave(self, doc: Document) -> Document:
        _LEAKED.append(b"x" * (self.megabytes << 20))
        return _finish(doc)


def forget_leaks() -> None:
    """Free what LeakingProcessor kept in this process."""
    _LEAKED.clear()


# -------------------------------------------------------------------------------------------- crashes


def crash_env(point: str, k: int) -> dict[str, str]:
    """The environment that makes a docmill process SIGKILL itself at ``point`` (``before-commit``
    or ``after-commit``) of its k-th journal commit (see ``docmill.journal.faults``)."""
    from docmill.journal.faults import ENV, CrashPoint

    CrashPoint(point, k)  # a bad point is refused here, not in the child
    return {ENV: f"{point}:{k}"}


__all__ = [
    "AsyncSleepProcessor",
    "CpuProcessor",
    "ExitingProcessor",
    "FakeClock",
    "HangingProcessor",
    "HardExitProcessor",
    "KillingProcessor",
    "LeakingProcessor",
    "MemorySource",
    "NoopProcessor",
    "PulledCounter",
    "RaisingProcessor",
    "SegfaultProcessor",
    "SetupRecorder",
    "SleepProcessor",
    "TargetedProcessor",
    "UnpicklableResultProcessor",
    "crash_env",
    "forget_leaks",
    "iter_refs",
    "make_refs",
    "ref_for",
]
