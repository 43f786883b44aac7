"""`docmill run --classifier llm` with a broken endpoint: a check before the run (exit 2, nothing
recorded), a circuit breaker during it (exit 1, the cut documents redone by the next run), and a
run whose every document failed exits 1."""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from docmill.cli.main import main
from docmill.journal.base import Query
from docmill.journal.sqlite import SqliteJournal
from docmill.llm.emulator import EmulatorConfig
from docmill.llm.emulator_server import EmulatorServer

N = 30


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    root = tmp_path / "corpus"
    root.mkdir()
    for i in range(N):
        (root / f"doc{i:02d}.txt").write_text(f"An {'even' if i % 2 == 0 else 'odd'} document number {i}.")
    (tmp_path / "labels.yaml").write_text(
        "labels:\n  even: {description: An even document.}\n  odd: {description: An odd one.}\n"
    )
    return root


def _run(corpus: Path, base_url: str, *extra: str, llm: str = "") -> int:
    tmp = corpus.parent
    (tmp / "docmill.yaml").write_text(f"llm: {{outage_seconds: 1, max_attempts: 8{llm}}}\n")
    args = ["run", str(corpus), "--classifier", "llm", "--model", "emulated-small", "--base-url", base_url]
    args += [
        "--labels",
        str(tmp / "labels.yaml"),
        "--db",
        str(tmp / "j.db"),
        "--config",
        str(tmp / "docmill.yaml"),
    ]
    return main([*args, "--progress", "log", "-s", "threads", "--workers", "4", *extra])


def _statuses(corpus: Path) -> list[str]:
    journal = SqliteJournal(corpus.parent / "j.db")
    try:
        return [record.status for record in journal.documents(Query())]
    finally:
        journal.close()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_dead_base_url_is_one_line_and_exit_2_with_nothing_recorded(
    corpus: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    started = time.monotonic()
    assert _run(corpus, f"http://127.0.0.1:{_closed_port()}/v1") == 2
    assert time.monotonic() - started < 10
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("docmill: error: nothing answers at http://127.0.0.1:"), err
    assert _statuses(corpus) == []


def test_a_refused_key_or_an_unknown_model_is_exit_2(
    corpus: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with EmulatorServer(EmulatorConfig(rpm=0, tpm=0, latency_median=0.0, api_key="sk-right")) as server:
        assert _run(corpus, f"{server.url}/v1", llm=", api_key_env: DOCMILL_NO_SUCH_KEY_SET") == 2
        assert "is not set" in capsys.readouterr().err
        assert _run(corpus, f"{server.url}/v1", llm=", api_key_env: PATH") == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "refused the key (401)" in err[0], err
        assert server.stats()["requests"] == 0  # the probe lists models: no chat call was made
    with EmulatorServer(EmulatorConfig(rpm=0, tpm=0, latency_median=0.0)) as server:
        assert _run(corpus, f"{server.url}/v1", "--model", "gpt-9") == 2
        assert "unknown model 'gpt-9'" in capsys.readouterr().err
    assert _statuses(corpus) == []


def _emulator(port: int) -> subprocess.Popen[bytes]:
    """A real provider process, so that killing it closes its connections as a crash does."""
    cmd = [sys.executable, "-m", "docmill", "emulate", "--port", str(port), "--latency-median", "0.2"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc
        time.sleep(0.1)
    proc.kill()
    pytest.fail("the emulator did not start")


def _requests(port: int) -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/emulator/stats", timeout=5) as response:
        return int(json.load(response)["requests"])


def test_the_endpoint_going_away_stops_the_run_and_the_next_run_finishes(
    corpus: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    port = _closed_port()
    provider = _emulator(port)

    def cut() -> None:
        with contextlib.suppress(OSError):
            while _requests(port) < 8:
                time.sleep(0.02)
        provider.kill()

    threading.Thread(target=cut, daemon=True).start()
    started = time.monotonic()
    try:
        assert _run(corpus, f"http://127.0.0.1:{port}/v1") == 1
    finally:
        provider.kill()
        provider.wait(10)
    assert time.monotonic() - started < 30
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("docmill: error")]
    assert len(err) == 1 and "run stopped: the endpoint is unreachable" in err[0], err
    first = _statuses(corpus)
    assert 1 <= len(first) < N and set(first) == {"ok"}  # nothing recorded failed for the cut
    back = _emulator(port)
    try:
        assert _run(corpus, f"http://127.0.0.1:{port}/v1") == 0
    finally:
        back.terminate()
        back.wait(10)
    assert sorted(_statuses(corpus)) == ["ok"] * N


def test_a_run_in_which_every_document_failed_exits_1(
    corpus: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with EmulatorServer(EmulatorConfig(rpm=0, tpm=0, latency_median=0.0, bad_label=1.0)) as server:
        assert _run(corpus, f"{server.url}/v1") == 1
    assert f"all {N} documents failed" in capsys.readouterr().err
