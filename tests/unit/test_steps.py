"""User steps: entry points by name, and the context's awaiting call to the run's LLM."""

from __future__ import annotations

import asyncio
from importlib.metadata import EntryPoint

import pytest

from docmill.config import RunConfig
from docmill.document import Document, DocumentRef
from docmill.errors import ConfigError
from docmill.llm.emulator import EmulatorConfig
from docmill.llm.emulator_server import EmulatorServer
from docmill.llm.pricing import Price
from docmill.llm.settings import LLMOptions
from docmill.processors import steps
from docmill.processors.base import AsyncProcessor
from docmill.processors.extract import ExtractText


def test_an_entry_point_names_a_step(monkeypatch: pytest.MonkeyPatch) -> None:
    found = [EntryPoint("extract", "docmill.processors.extract:ExtractText", steps.GROUP)]
    monkeypatch.setattr(steps, "entry_points", lambda group: found if group == steps.GROUP else [])
    assert steps.load_step_class("extract") is ExtractText
    with pytest.raises(ConfigError, match="'other' is neither module:Class nor a docmill.steps entry point"):
        steps.load_step_class("other")


def test_the_context_calls_the_run_llm_blocking_and_awaiting() -> None:
    with EmulatorServer(EmulatorConfig(rpm=0, tpm=0, latency_median=0.0, seed=3)) as server:
        options = LLMOptions(base_url=f"{server.url}/v1", model="emulated-small")
        config = RunConfig(classifier="none", llm=options)
        llm = steps.run_llm(config, [])
        assert llm is not None
        context = steps.StepContext(llm)
        message = [{"role": "user", "content": "What is this? An invoice."}]
        assert context.complete(message).text and context.model == "emulated-small"
        reply = asyncio.run(context.acomplete(message, max_tokens=20))
        assert reply.tokens_in > 0
        context.close()
        assert server.stats()["requests"] == 2
    assert steps.run_llm(RunConfig(classifier="none"), []) is None
    with pytest.raises(ConfigError, match="this step calls the LLM: configure one"):
        steps.StepContext(None).complete(message)


class AskTwice(AsyncProcessor):
    name = "ask-twice"

    async def aprocess(self, doc: Document) -> Document:
        for _ in range(2):
            await self.context.acomplete([{"role": "user", "content": doc.text or ""}])  # type: ignore[attr-defined]
        return doc.with_metadata(asked=2, cost=0.5)


def test_an_async_step_is_billed_for_its_calls_awaited_or_blocking() -> None:
    with EmulatorServer(EmulatorConfig(rpm=0, tpm=0, latency_median=0.0, seed=3)) as server:
        options = LLMOptions(base_url=f"{server.url}/v1", model="emulated-small")
        step = AskTwice()
        step.context = steps.StepContext(steps.run_llm(RunConfig(classifier="none", llm=options), []))  # type: ignore[attr-defined]
        wrapped = steps.metered(step, Price(1_000_000.0, 0.0))  # $1 per prompt token
        assert isinstance(wrapped, AsyncProcessor)
        doc = Document(DocumentRef("d", "d"), "0" * 64, None, "an invoice, amount due")
        for answered in (asyncio.run(wrapped.aprocess(doc)), wrapped.process(doc)):
            used = answered.metadata["steps"]["AskTwice"]
            assert used["requests"] == 2 == answered.metadata["requests"]
            assert answered.metadata["cost"] == 0.5 + used["cost"] and used["cost"] == used["tokens_in"]
        wrapped.teardown()
        assert server.stats()["requests"] == 4
