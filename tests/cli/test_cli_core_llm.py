"""`docmill run --classifier llm` against the emulated provider: spend is summed from the classifier's
results, --max-cost stops the run cleanly, and the next run finishes the rest."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from docmill.cli.main import main

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "corpus"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def provider() -> Iterator[str]:
    port = free_port()
    cmd = [sys.executable, "-m", "docmill", "emulate", "--port", str(port), "--latency-median", "0.02"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.1)
    else:
        proc.kill()
        pytest.fail("the emulated provider did not start")
    yield f"http://127.0.0.1:{port}/v1"
    proc.terminate()
    proc.wait(10)


def test_max_cost_stops_cleanly_then_the_rest_is_finished(
    provider: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if not (EXAMPLES / "labels.yaml").is_file():
        pytest.skip("examples/corpus is not there")
    config = tmp_path / "docmill.yaml"
    prices = "price_input_per_1m: 50.0, price_output_per_1m: 100.0"
    config.write_text(f"llm: {{base_url: '{provider}', model: emulated-small, {prices}}}\n")
    db = str(tmp_path / "j.db")
    args = ["run", str(EXAMPLES), "--config", str(config), "--classifier", "llm", "--db", db]
    args += ["--strategy", "threads", "--workers", "2", "--progress", "log"]
    assert main([*args, "--max-cost", "0.02"]) == 1
    err = capsys.readouterr().err
    assert "spending limit $0.02 reached" in err and "Traceback" not in err

    assert main(["status", "--db", db, "--json"]) == 0
    stopped = json.loads(capsys.readouterr().out)
    assert stopped["run"]["state"] == "interrupted" and 0 < stopped["documents"] < 50
    assert stopped["cost"] >= 0.02 and stopped["live"]["llm"]["requests"] >= 1

    assert main(args) == 0
    assert main(["status", "--db", db, "--json"]) == 0
    done = json.loads(capsys.readouterr().out)
    assert done["documents"] == 50 and done["run"]["state"] == "done"
    allowed = set(yaml.safe_load((EXAMPLES / "labels.yaml").read_text())["labels"])
    assert set(done["by_label"]) <= allowed
