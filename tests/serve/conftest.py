"""Dashboard test fixtures: a small corpus, journals made by a real `docmill run`, the LLM emulator."""

from __future__ import annotations

import subprocess
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

with warnings.catch_warnings():  # starlette asks for httpx2; the httpx it falls back to works
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from serve_kit import (
    BASE_URL,
    RPM,
    TPM,
    Corpus,
    command_env,
    docmill_command,
    docmill_run,
    free_port,
    make_corpus,
    wait_for,
)

from docmill.serve.app import create_app


@pytest.fixture(scope="session")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    return make_corpus(tmp_path_factory.mktemp("corpus"), 12)


@pytest.fixture(scope="session")
def journal_db(corpus: Corpus, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A journal holding one finished run over ``corpus``."""
    db = tmp_path_factory.mktemp("journal") / "docmill.db"
    docmill_run(corpus.root, db)
    return db


@pytest.fixture
def client(journal_db: Path) -> Iterator[TestClient]:
    with TestClient(create_app(str(journal_db)), base_url=BASE_URL) as test_client:
        yield test_client


@pytest.fixture(scope="session")
def emulator() -> Iterator[str]:
    port = free_port()
    args = ["emulate", "--port", str(port), "--latency-median", "0.02", "--rpm", "0", "--tpm", "0"]
    process = subprocess.Popen(docmill_command(*args), env=command_env(), stdout=subprocess.DEVNULL)
    try:
        wait_for(f"http://127.0.0.1:{port}/v1/models")
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture(scope="session")
def llm_run(emulator: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Corpus]:
    root = tmp_path_factory.mktemp("llm")
    corpus = make_corpus(root / "corpus", 6)
    db = root / "docmill.db"
    limits = ["--rpm", str(RPM), "--tpm", str(TPM)]
    docmill_run(corpus.root, db, "-c", "llm", "--base-url", emulator, "--model", "emulated-small", *limits)
    return db, corpus


BATCH_LLM = """\
llm: {price_input_per_1m: 10.0, price_output_per_1m: 20.0, cache: false, batch_poll_seconds: 0.1,
      batch_max_requests: 2}
"""


@pytest.fixture(scope="session")
def batch_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A journal holding one ``docmill run --batch`` against the emulated Batch API: six documents,
    two lines a batch, the first batch expired half done and its rest packed again."""
    from docmill.cli.main import main
    from docmill.llm.emulator import EmulatorConfig
    from docmill.llm.emulator_server import EmulatorServer

    root = tmp_path_factory.mktemp("batch")
    corpus = make_corpus(root / "corpus", 3)
    (root / "llm.yaml").write_text(BATCH_LLM)
    db = root / "docmill.db"
    config = EmulatorConfig(rpm=0, tpm=0, latency_median=0.0, batch_seconds=0.3, batch_expire_first=1)
    with EmulatorServer(config) as server:
        args = ["run", str(corpus.root), "--db", str(db), "--progress", "none", "-c", "llm", "--batch"]
        args += ["--model", "emulated-small", "--base-url", f"{server.url}/v1"]
        assert main([*args, "--config", str(root / "llm.yaml")]) == 0
    return db
