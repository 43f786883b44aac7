"""User steps: entry points by name, and the context's awaiting call to the run's LLM."""

from __future__ import annotations

import asyncio
from importlib.metadata import EntryPoint

import pytest

from docmill.config import RunConfig
from docmill.errors import ConfigError
from docmill.llm.emulator import EmulatorConfig
from docmill.llm.emulator_server import EmulatorServer
from docmill.llm.settings import LLMOptions
from docmill.processors import steps
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
