"""docs/steps.md's step under the ``celery`` strategy: the same answers as ``sequential``."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from distributed_helpers import Workers, running_workers

from docmill.llm.emulator import EmulatorConfig
from docmill.llm.emulator_server import EmulatorServer

pytestmark = [pytest.mark.celery, pytest.mark.redis, pytest.mark.slow]  # workers start: ~10 s
DOCS = Path(__file__).parents[2] / "docs" / "steps.md"


@pytest.fixture(scope="module")
def lib(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("lib")
    code = re.findall(r"```python\n(.*?)```", DOCS.read_text(encoding="utf-8"), re.DOTALL)[0]
    (folder / "mysteps.py").write_text(code)
    return folder


@pytest.fixture(scope="module")
def workers(lib: Path) -> Iterator[Workers]:
    with running_workers(1, pythonpath=[lib]) as pool:
        yield pool


def _answers(root: Path, db: Path, lib: Path, url: str, *strategy: str) -> dict[str, list[str]]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(lib), os.environ.get("PYTHONPATH", "")])}
    docmill = [sys.executable, "-m", "docmill"]
    argv = [*docmill, "run", str(root), "-c", "none", "--step", "mysteps:Questions",
            "--model", "emulated-small", "--base-url", f"{url}/v1", "--db", str(db), "--progress", "none",
            *strategy]  # fmt: skip
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    out = db.with_suffix(".jsonl")
    subprocess.run(
        [*docmill, "export", "--db", str(db), "-f", "jsonl", "-o", str(out)], check=True, timeout=60
    )
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    return {row["path"]: row["result"]["answers"] for row in rows}


def test_a_user_step_gives_the_same_results_under_celery(workers: Workers, lib: Path, tmp_path: Path) -> None:
    root = tmp_path / "corpus"
    root.mkdir()
    for i in range(6):
        (root / f"doc-{i}.txt").write_text(f"Document {i}: the ls command lists files for users. " * (i + 1))
    with EmulatorServer(EmulatorConfig(rpm=0, tpm=0, latency_median=0.0, seed=3)) as server:
        alone = _answers(root, tmp_path / "a.db", lib, server.url, "-s", "sequential")
        celery = ["-s", "celery", "-w", "1", "--broker", workers.broker, "--queue", workers.queue]
        spread = _answers(root, tmp_path / "b.db", lib, server.url, *celery)
        assert server.stats()["requests"] == 2 * 6 * 2  # two questions, six documents, two runs
    assert spread == alone and len(alone) == 6
