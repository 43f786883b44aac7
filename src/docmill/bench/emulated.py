"""LLM emulators for the ``io`` and ``mixed`` workloads: one per complexity level, on loopback.

The emulators run in the bench's own process (a background thread each) while every case runs in
a forked child, so the provider's work is not counted in the measured process tree, as a remote
provider's would not be. Limits are off: the bench measures scheduling, not a provider's quota.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from docmill.bench.workloads import COMPLEXITY_LATENCY, LATENCY_SIGMA, write_labels

CLASSIFIER_SETTINGS: Mapping[str, Any] = {
    "model": "emulated-small",
    "provider": "openai",
    "concurrency": 64,  # AIMD start: above any worker count the matrix uses
    "max_concurrency": 1024,
    "max_attempts": 3,
}


class Emulators:
    """Start emulators lazily per complexity; ``settings(level)`` configures the LLM classifier."""

    def __init__(self, workdir: Path, *, seed: int = 0) -> None:
        self.workdir = workdir
        self.seed = seed
        self._servers: dict[str, Any] = {}
        self._labels: Path | None = None

    def settings(self, complexity: str) -> dict[str, Any]:
        from docmill.llm.emulator import EmulatorConfig
        from docmill.llm.emulator_server import EmulatorServer

        if complexity not in self._servers:
            config = EmulatorConfig(
                rpm=0,
                tpm=0,
                latency_median=COMPLEXITY_LATENCY[complexity],
                latency_sigma=LATENCY_SIGMA,
                seed=self.seed,
            )
            self._servers[complexity] = EmulatorServer(config).start()
        if self._labels is None:
            self._labels = write_labels(self.workdir, seed=self.seed)
        url = self._servers[complexity].url
        return {**CLASSIFIER_SETTINGS, "base_url": f"{url}/v1", "labels": str(self._labels)}

    def reset(self) -> None:
        """Clear every emulator's statistics and restart its random stream (latencies repeat)."""
        for server in self._servers.values():
            server.reset()

    def close(self) -> None:
        for server in self._servers.values():
            server.stop()
        self._servers.clear()

    def __enter__(self) -> Emulators:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
