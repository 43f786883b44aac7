"""Hedging at the tail, end to end against the emulator over real HTTP: a hung call gets a twin."""

from __future__ import annotations

import asyncio

from docmill.document import Document
from docmill.limits.provider import ProviderLimits
from docmill.llm.emulator import EmulatorConfig
from docmill.llm.emulator_server import EmulatorServer
from docmill.model.labels import LabelSet
from docmill.processors.classify_llm import LLMClassifier, LLMSettings
from docmill.retry import RetryPolicy
from docmill.testing import MemorySource

LABELS = LabelSet(names=("even", "odd"), descriptions={"even": "An even document.", "odd": "An odd one."})
# Seed 35 with 20 % hangs: the first 10 requests answer (the latency tracker needs 10 replies before
# it can tell a slow call), then requests 11, 14 and 16 hang and the ones after each answer.
HANGS = EmulatorConfig(rpm=0, tpm=0, latency_median=0.02, hang=0.2, hang_seconds=5, seed=35)


async def _classify_in_order(clf: LLMClassifier, docs: list[Document]) -> list[Document]:
    return [await clf.aprocess(doc) for doc in docs]


def test_a_hung_call_with_room_in_the_limits_is_hedged_and_the_twin_answers() -> None:
    source = MemorySource(14)
    docs = [source.load(ref) for ref in source]
    with EmulatorServer(HANGS) as server:
        url = f"{server.url}/v1"
        settings = LLMSettings(base_url=url, model="emulated-small", timeout=30.0, timeout_floor=30.0)
        limits = ProviderLimits.from_rates(6000, None, shared=False)  # room to spare: the tail
        clf = LLMClassifier(LABELS, settings, limits=limits, retry=RetryPolicy(max_attempts=2, initial=0.01))
        clf.setup()
        results = asyncio.run(_classify_in_order(clf, docs))
        assert clf._client is not None
        hedger = clf._client.hedger
        stats = server.stats()
        clf.teardown()
    assert [d.metadata["label"] in LABELS.names for d in results] == [True] * 14
    assert stats["faults"]["hang"] == 3
    assert (hedger.sent, hedger.won) == (3, 3)  # each hang cut by its twin, none by the 30 s timeout
    assert [d.metadata["requests"] for d in results].count(2) == 3
    assert sum(d.metadata["requests"] for d in results) == stats["requests"] == 17  # losers counted
