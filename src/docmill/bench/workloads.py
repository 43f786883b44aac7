"""Synthetic workloads for ``docmill bench``: reproducible documents and the work done on them.

A workload is a real :class:`~docmill.job.Job` over real files, so every strategy runs the same code
users run; only the documents and the processors are synthetic:

=========  ====================================================================================
``cpu``    extraction-like work over the bytes: decode, lower-case, tokenise, count (``passes``
           times); pure Python, so it holds the GIL the way parsers do
``io``     the real LLM classifier (``classify_llm``) calling ``docmill emulate``'s server over
           loopback HTTP: one request per document, lognormal latency drawn by the emulator
``io-sim`` the same wait without HTTP: a latency drawn per document (seeded by its hash, so every
           strategy waits exactly as long per document); the sync path blocks, the async awaits
``mixed``  a light ``cpu`` pass then the ``io`` call, like extract → classify with an LLM
``tiny``   200,000 short JSON Lines records, no classifier, through a whole run with its journal,
           beside ``peer:naive`` (the loop a user writes instead); see ``docmill.bench.tiny``
=========  ====================================================================================

``complexity`` scales both: tokenising passes (light 1, medium 4, heavy 16) and the median call
latency (light 5 ms, medium 20 ms, heavy 50 ms).
"""

from __future__ import annotations

import collections
import hashlib
import math
import random
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from docmill.clock import SYSTEM_CLOCK, Clock
from docmill.document import Document, DocumentRef, sha256_bytes
from docmill.errors import ConfigError, SourceError
from docmill.job import Job
from docmill.pipeline import Pipeline
from docmill.processors.base import AsyncProcessor, Processor

WORKLOADS = ("cpu", "io", "io-sim", "mixed", "tiny")
DEFAULT_WORKLOADS = ("cpu", "io", "mixed")  # io-sim and tiny on request
LLM_WORKLOADS = frozenset({"io", "mixed"})  # need an emulator: settings["base_url"]
REAL_WORKLOAD = "extract"  # a real folder (--corpus) through ExtractText and an optional classifier
REAL_COMPLEXITY = "real"
COMPLEXITY_PASSES: Mapping[str, int] = {"light": 1, "medium": 4, "heavy": 16}
COMPLEXITY_LATENCY: Mapping[str, float] = {"light": 0.005, "medium": 0.020, "heavy": 0.050}
LATENCY_SIGMA = 0.5

_WORD = re.compile(r"[a-z]+")


class TokenCount(Processor):
    """Decode the bytes, then ``passes`` times lower-case, tokenise and count words."""

    name = "bench-cpu"

    def __init__(self, passes: int = 1) -> None:
        self.passes = passes

    def config(self) -> Mapping[str, Any]:
        return {"passes": self.passes}

    def process(self, doc: Document) -> Document:
        text = (doc.content or b"").decode("utf-8", errors="replace")
        counts: collections.Counter[str] = collections.Counter()
        for _ in range(self.passes):
            counts = collections.Counter(_WORD.findall(text.lower()))
        top = counts.most_common(1)
        return doc.evolve(
            text=text,
            metadata={**doc.metadata, "words": sum(counts.values()), "top": top[0][0] if top else ""},
        )


class SimulatedCall(AsyncProcessor):
    """A remote call whose latency is lognormal(median, sigma), fixed per document by its hash."""

    name = "bench-io"

    def __init__(
        self, median: float = 0.02, sigma: float = LATENCY_SIGMA, clock: Clock = SYSTEM_CLOCK
    ) -> None:
        self.median = median
        self.sigma = sigma
        self.clock = clock

    def config(self) -> Mapping[str, Any]:
        return {"median": self.median, "sigma": self.sigma}

    def latency(self, doc: Document) -> float:
        """Seconds this document's call takes: the same for every strategy and repetition."""
        return latency_for(doc.sha256, self.median, self.sigma)

    def process(self, doc: Document) -> Document:
        """The blocking form, as a synchronous client would behave: the thread waits."""
        wait = self.latency(doc)
        self.clock.sleep(wait)
        return doc.with_metadata(requests=1, latency=wait)

    async def aprocess(self, doc: Document) -> Document:
        wait = self.latency(doc)
        await self.clock.asleep(wait)
        return doc.with_metadata(requests=1, latency=wait)


def latency_for(key: str, median: float, sigma: float) -> float:
    """A lognormal draw seeded by ``key`` (a document hash)."""
    seed = int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big")
    return median * math.exp(sigma * random.Random(seed).gauss(0.0, 1.0))


def build_pipeline(workload: str, complexity: str, llm: Mapping[str, Any] | None = None) -> Pipeline:
    """The processors of one workload × complexity cell; ``llm`` configures the LLM classifier."""
    if workload not in WORKLOADS:
        raise ConfigError(f"unknown workload {workload!r}; choose one of: {', '.join(WORKLOADS)}")
    if complexity not in COMPLEXITY_PASSES:
        raise ConfigError(f"unknown complexity {complexity!r}; choose one of: {', '.join(COMPLEXITY_PASSES)}")
    passes, median = COMPLEXITY_PASSES[complexity], COMPLEXITY_LATENCY[complexity]
    if workload == "cpu":
        return Pipeline(TokenCount(passes))
    if workload == "io-sim":
        return Pipeline(TokenCount(0), SimulatedCall(median))
    if not llm or not llm.get("base_url"):
        raise ConfigError(f"the {workload} workload needs an emulator (settings: base_url, labels)")
    from docmill.processors.registry import build_classifier

    return Pipeline(TokenCount(0 if workload == "io" else 1), build_classifier("llm:emulated-small", llm))


class FolderSource:
    """The files directly inside ``root``, sorted by name. Picklable; ``load`` reads and hashes."""

    def __init__(self, root: str | Path) -> None:
        self.root = str(root)

    def paths(self) -> list[Path]:
        return sorted(p for p in Path(self.root).iterdir() if p.is_file())

    def __iter__(self) -> Iterator[DocumentRef]:
        for path in self.paths():
            yield DocumentRef(id=path.name, uri=str(path), size=path.stat().st_size)

    def count(self) -> int | None:
        return len(self.paths())

    def load(self, ref: DocumentRef) -> Document:
        try:
            data = Path(ref.uri).read_bytes()
        except OSError as exc:
            raise SourceError(f"cannot read {ref.uri}: {exc.strerror}", uri=ref.uri) from exc
        return Document(ref=ref, sha256=sha256_bytes(data), content=data)


@dataclass(frozen=True, slots=True)
class Corpus:
    """A folder of generated documents, all ``size_kb`` KiB."""

    root: Path
    size_kb: int
    n_docs: int

    @property
    def total_bytes(self) -> int:
        return self.size_kb * 1024 * self.n_docs


def vocabulary(rng: random.Random, n: int = 5000) -> list[str]:
    letters = "abcdefghijklmnopqrstuvwxyz"
    return ["".join(rng.choice(letters) for _ in range(rng.randint(2, 10))) for _ in range(n)]


def synthetic_text(rng: random.Random, words: list[str], weights: list[float], size: int) -> str:
    """English-like text (Zipf word frequencies, sentences, paragraphs) of exactly ``size`` bytes."""
    chunks: list[str] = []
    length = 0
    while length < size:
        sentence = " ".join(rng.choices(words, weights=weights, k=rng.randint(6, 24)))
        chunk = sentence.capitalize() + (".\n\n" if rng.random() < 0.15 else ". ")
        chunks.append(chunk)
        length += len(chunk)
    return "".join(chunks)[:size]


def write_corpus(folder: Path, *, size_kb: int, n_docs: int, seed: int = 0) -> Corpus:
    """Ensure ``folder`` holds ``n_docs`` text files of ``size_kb`` KiB; same seed → same bytes.

    Each document has its own seeded generator, so a corpus grows without rewriting what exists.
    """
    words = vocabulary(random.Random(f"{seed}:{size_kb}"))
    weights = [1.0 / (rank + 1) for rank in range(len(words))]
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n_docs):
        path = folder / f"doc-{i:05d}.txt"
        if not path.exists():
            rng = random.Random(f"{seed}:{size_kb}:{i}")
            path.write_text(synthetic_text(rng, words, weights, size_kb * 1024), encoding="ascii")
    return Corpus(folder, size_kb, n_docs)


def real_pipeline(classifier: str | None = None, settings: Mapping[str, Any] | None = None) -> Pipeline:
    """What ``docmill run`` does to a real folder: extraction, then the classifier if one is named."""
    from docmill.processors.extract import ExtractText
    from docmill.processors.registry import build_classifier

    steps: list[Processor] = [ExtractText()]
    if classifier:
        steps.append(build_classifier(classifier, settings or {}))
    return Pipeline(*steps)


def build_job(
    root: Path,
    workload: str,
    complexity: str,
    *,
    classifier: str | None = None,
    settings: Mapping[str, Any] | None = None,
) -> Job:
    """The Job one bench cell runs: synthetic files through a workload, or a real folder (``extract``).

    ``settings`` go to the classifier: the named one for a real folder, the LLM one for io/mixed.
    """
    if workload == REAL_WORKLOAD:
        from docmill.sources.files import DirectorySource

        return Job(DirectorySource(root), real_pipeline(classifier, settings))
    return Job(FolderSource(root), build_pipeline(workload, complexity, settings))


def write_labels(folder: Path, *, seed: int = 0, size_kb: int = 10) -> Path:
    """A labels file whose keywords occur in the synthetic documents, for the LLM workloads."""
    words = vocabulary(random.Random(f"{seed}:{size_kb}"))
    lines = ["labels:"]
    for i, name in enumerate(("alpha", "beta", "gamma")):
        keywords = ", ".join(words[i * 7 : i * 7 + 5])
        lines += [
            f"  {name}:",
            f'    description: "Synthetic documents about {name}."',
            f"    keywords: [{keywords}]",
        ]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "labels.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
