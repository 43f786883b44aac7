"""``docmill run --classifier llm`` then ``docmill eval`` on the example corpus, against the emulator.

The emulated model scores the prompt's labels (names, descriptions, keywords) against the
document; ``error_rate`` gives a seeded share of documents a wrong label. So the accuracy that
``docmill eval`` reports is meaningful: near 1 without errors, lower by about the error rate with.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from docmill.llm.emulator import EmulatorConfig
from docmill.llm.emulator_server import EmulatorServer

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _accuracy(server: EmulatorServer, db: Path) -> float:
    docmill = [sys.executable, "-m", "docmill"]
    run = [*docmill, "run", str(EXAMPLES / "corpus"), "--classifier", "llm", "--model", "emulated-small"]
    run += ["--base-url", f"{server.url}/v1", "--labels", str(EXAMPLES / "corpus" / "labels.yaml")]
    run += ["--db", str(db), "--progress", "log", "-s", "threads"]
    evaluate = [*docmill, "eval", "--db", str(db), "--truth", str(EXAMPLES / "corpus-labels.csv"), "--json"]
    subprocess.run(run, check=True, capture_output=True, timeout=120, cwd=db.parent)
    done = subprocess.run(evaluate, check=True, capture_output=True, text=True, timeout=60)
    return float(json.loads(done.stdout)["accuracy"])


@pytest.mark.parametrize(("error_rate", "low", "high"), [(0.0, 0.9, 1.0), (0.3, 0.45, 0.85)])
def test_eval_of_an_llm_run_reflects_the_model_quality(
    tmp_path: Path, error_rate: float, low: float, high: float
) -> None:
    config = EmulatorConfig(rpm=0, tpm=0, latency_median=0.0, error_rate=error_rate, seed=3)
    with EmulatorServer(config) as server:
        first = _accuracy(server, tmp_path / "a.db")
        again = _accuracy(server, tmp_path / "b.db")  # a fresh journal and cache: asked again
    assert low <= first <= high
    assert again == first  # the same seed gives the same answers
