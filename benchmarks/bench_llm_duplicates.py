"""Paid duplicates, measured: LLM calls for a corpus where every text is present twice.

    python benchmarks/bench_llm_duplicates.py                 # 120 texts, each twice (240 documents)
    python benchmarks/bench_llm_duplicates.py --distinct 40

Each text is written twice, side by side (``t000-0.txt``, ``t000-1.txt``), so both copies are in
flight together, as copies named ``report.txt`` and ``report (1).txt`` are. For each strategy the
run is made twice against a fresh emulator (no rate limit, 0.3 s median latency) with a fresh
journal and response cache: with singleflight (the default) and without it (``SingleFlight`` made
to call straight through, i.e. duplicates recognised only by the response cache and the journal,
as before). Figures: HTTP requests the emulator received, the requests the run reported, wall time.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from docmill.journal.sqlite import SqliteJournal
from docmill.limits.provider import ProviderLimits
from docmill.llm import singleflight
from docmill.llm.cache import ResponseCache
from docmill.llm.emulator import EmulatorConfig
from docmill.llm.emulator_server import EmulatorServer
from docmill.model.labels import LabelSet
from docmill.pipeline import Pipeline
from docmill.processors.classify_llm import LLMClassifier, LLMSettings
from docmill.processors.extract import ExtractText
from docmill.runner import run
from docmill.sources.files import DirectorySource

LABELS = LabelSet(
    names=("invoice", "letter", "recipe"),
    descriptions={"invoice": "A bill.", "letter": "A letter to someone.", "recipe": "How to cook a dish."},
)
TOPICS = ("invoice amount due", "dear friend, yours sincerely", "recipe: stir the flour and bake")
ON = (singleflight.SingleFlight.run, singleflight.SingleFlight.arun)


def _straight(self: Any, key: str, ref: str, call: Callable[[], Any]) -> Any:
    return call()


async def _astraight(self: Any, key: str, ref: str, call: Callable[[], Awaitable[Any]]) -> Any:
    return await call()


def _coalesce(on: bool) -> None:
    run_, arun = ON if on else (_straight, _astraight)
    singleflight.SingleFlight.run = run_  # type: ignore[method-assign]
    singleflight.SingleFlight.arun = arun  # type: ignore[method-assign]


def _corpus(root: Path, distinct: int) -> None:
    root.mkdir()
    for i in range(distinct):
        for copy in range(2):
            (root / f"t{i:03d}-{copy}.txt").write_text(f"Document {i}: {TOPICS[i % 3]}. " * 20)


def _once(folder: Path, strategy: str, on: bool) -> dict[str, Any]:
    _coalesce(on)
    (folder / f"{strategy}-{on}").mkdir()
    config = EmulatorConfig(rpm=0, tpm=0, latency_median=0.3)
    with EmulatorServer(config) as server:
        settings = LLMSettings(base_url=f"{server.url}/v1", model="emulated-small")
        cache = ResponseCache(folder / f"{strategy}-{on}" / "docmill-cache.db")
        clf = LLMClassifier(LABELS, settings, limits=ProviderLimits(), cache=cache)
        journal = SqliteJournal(folder / f"{strategy}-{on}" / "j.db")
        started = time.perf_counter()
        done = run(DirectorySource(folder / "corpus"), Pipeline(ExtractText(), clf), executor=strategy,
                   workers=4, journal=journal)  # fmt: skip
        seconds = time.perf_counter() - started
        sent = server.stats()["requests"]
    return {"sent": sent, "reported": done.stats.llm.get("requests", 0), "seconds": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--distinct", type=int, default=120)
    parser.add_argument("--strategies", default="threads,asyncio,processes,hybrid,staged")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        _corpus(folder / "corpus", args.distinct)
        print(f"{args.distinct} distinct texts, each twice ({2 * args.distinct} documents)")
        print("| strategy | calls: with / without coalescing | reported by the run | wall s |")
        print("|---|---:|---:|---:|")
        for strategy in args.strategies.split(","):
            with_, without = _once(folder, strategy, True), _once(folder, strategy, False)
            print(f"| {strategy} | **{with_['sent']}** / {without['sent']} | "
                  f"{with_['reported']} / {without['reported']} | "
                  f"{with_['seconds']:.1f} / {without['seconds']:.1f} |")  # fmt: skip


if __name__ == "__main__":
    main()
