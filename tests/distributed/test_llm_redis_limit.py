"""An LLM run configured with ``limiter: redis://…`` keeps one budget across processes (and hosts)."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from docmill.errors import ConfigError
from docmill.executors import get_executor
from docmill.job import Job
from docmill.limits.redis_bucket import RedisTokenBucket
from docmill.llm.emulator import EmulatorConfig
from docmill.llm.emulator_server import EmulatorServer
from docmill.outcome import Status
from docmill.processors.classify_llm import from_spec
from docmill.testing import MemorySource

LABELS = "labels:\n  even: {description: An even document.}\n  odd: {description: An odd one.}\n"

pytestmark = pytest.mark.redis


def settings(tmp_path: Path, server: EmulatorServer, limiter: str) -> dict[str, object]:
    labels = tmp_path / "labels.yaml"
    labels.write_text(LABELS)
    return {
        "labels": str(labels),
        "base_url": f"{server.url}/v1",
        "model": "emulated-small",
        "rpm": 40,
        "rate_window": 2.0,
        "rate_margin": 1.0,
        "limiter": limiter,
        "limiter_name": f"test-{uuid.uuid4().hex}",
        "cache": None,
        "timeout": 5.0,
    }


def test_two_worker_processes_share_the_redis_budget(redis_url: str, tmp_path: Path) -> None:
    config = EmulatorConfig(rpm=40, tpm=0, window=2.0, latency_median=0.05, latency_sigma=0.2)
    with EmulatorServer(config) as server:
        classifier = from_spec(None, settings(tmp_path, server, redis_url))
        assert isinstance(classifier.limits.requests, RedisTokenBucket)
        job = Job(MemorySource(60), classifier)
        with get_executor("processes", workers=2) as executor:
            outcomes = list(executor.map_unordered(job, MemorySource(60)))
        stats = server.stats(arrivals=True)
    assert [o.status for o in outcomes] == [Status.OK] * 60
    assert stats["rate_limited"] == 0
    assert stats["max_requests_per_window"] <= 40


def test_an_unknown_limiter_kind_is_a_config_error(tmp_path: Path) -> None:
    config = EmulatorConfig(rpm=40, tpm=0, window=2.0)
    with EmulatorServer(config) as server, pytest.raises(ConfigError, match="redis://"):
        from_spec(None, settings(tmp_path, server, "memcached://nope"))
