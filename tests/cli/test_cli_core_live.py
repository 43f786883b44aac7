"""A run in another process: status reads its heartbeat live, --watch follows it to the end, and
Ctrl-C stops it cleanly (exit 130) so that the next run finishes the rest."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from docmill.cli.main import main

# A docmill whose "slow" classifier takes SECONDS per document, so a run lasts long enough to watch.
LAUNCHER = """
import sys
from docmill.processors.registry import CLASSIFIERS
from docmill.testing import SleepProcessor
CLASSIFIERS["slow"] = lambda arg, settings: SleepProcessor(float(arg or 0.05))
from docmill.cli.main import main
sys.exit(main(sys.argv[1:]))
"""
N = 60


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    root = tmp_path / "corpus"
    root.mkdir()
    for i in range(N):
        (root / f"doc-{i:03d}.txt").write_text(f"document number {i}\n")
    return root


def start(corpus: Path, db: Path, seconds: float = 0.05) -> subprocess.Popen[str]:
    cmd = [sys.executable, "-c", LAUNCHER, "run", str(corpus), "--db", str(db), "--strategy", "sequential",
           "--classifier", f"slow:{seconds}", "--progress", "log", "--commit-seconds", "0.2"]  # fmt: skip
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def status(db: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, object]:
    assert main(["status", "--db", str(db), "--json"]) == 0
    return json.loads(capsys.readouterr().out)  # type: ignore[no-any-return]


def wait_until(predicate: object, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.05)
    pytest.fail("timed out waiting for the run")


def test_status_reads_the_live_heartbeat(
    corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "j.db"
    proc = start(corpus, db)
    try:
        wait_until(lambda: db.exists() and _live_done(db, capsys) > 0)
        first = status(db, capsys)
        time.sleep(1.2)
        second = status(db, capsys)
        assert first["run"]["state"] == "running"  # type: ignore[index]
        assert second["live"]["done"] > first["live"]["done"]  # type: ignore[index]
        assert second["live"]["total"] == N  # type: ignore[index]
        assert second["eta_seconds"] is not None and second["heartbeat_age"] < 5  # type: ignore[operator]
        assert main(["status", "--db", str(db), "--watch", "--json", "--interval", "0.3"]) == 0
        frames = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
        assert len(frames) >= 2 and frames[-1]["run"]["state"] == "done" and frames[-1]["documents"] == N
    finally:
        proc.kill()
        proc.wait()


def _live_done(db: Path, capsys: pytest.CaptureFixture[str]) -> int:
    try:
        data = status(db, capsys)
    except (AssertionError, json.JSONDecodeError):
        capsys.readouterr()
        return 0
    live = data.get("live")
    return int(live.get("done", 0)) if isinstance(live, dict) else 0


def test_ctrl_c_stops_cleanly_and_the_next_run_finishes(
    corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "j.db"
    proc = start(corpus, db, seconds=0.1)
    time.sleep(2.0)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "finishing the documents in flight" in err and "Traceback" not in err
    stopped = status(db, capsys)
    assert stopped["run"]["state"] == "interrupted"  # type: ignore[index]
    assert 0 < stopped["documents"] < N  # type: ignore[operator]
    again = start(corpus, db, seconds=0.01)
    out, err = again.communicate(timeout=60)
    assert again.returncode == 0, err
    assert "already done by an earlier run" in err
    assert status(db, capsys)["documents"] == N
