"""A real S3 protocol server on loopback for the tests: moto's server mode, one per test session.

Not a mock of the client: boto3 in the test, in ``processes`` workers and in Celery workers speaks
HTTP to it exactly as to S3 or MinIO. Tests that need it skip with one line when it cannot start.
``s3`` points the standard AWS variables (and nothing else: no ~/.aws files) at it for one test.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

SECRET = "docmill-test-secret-5f1e0c"  # a test fails if this ever shows up in a journal or an export


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with urllib.request.urlopen(url + "/moto-api/", timeout=1):
                return True
        except OSError:
            time.sleep(0.1)
    return False


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """``http://127.0.0.1:PORT`` of a moto server subprocess; skips with one line when it cannot start."""
    pytest.importorskip("moto.server", reason="moto[server] not installed (pip install 'docmill[test]')")
    pytest.importorskip("boto3", reason="boto3 not installed (pip install 'docmill[s3]')")
    port = free_port()
    argv = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        if not _wait_ready(url, proc, timeout=30):
            pytest.skip(f"moto S3 server did not start on {url}")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@dataclass
class S3:
    """The server of this test, a client of the test's own, and a fresh bucket."""

    endpoint: str
    client: Any
    bucket: str

    def url(self, prefix: str = "") -> str:
        return f"s3://{self.bucket}/{prefix}"

    def upload_tree(self, folder: Path, prefix: str, limit: int | None = None) -> int:
        """Put every file under ``folder`` at ``prefix/<relative path>``; the number put."""
        files = sorted(p for p in folder.rglob("*") if p.is_file())[:limit]
        for path in files:
            key = f"{prefix}/{path.relative_to(folder).as_posix()}"
            self.client.put_object(Bucket=self.bucket, Key=key, Body=path.read_bytes())
        return len(files)


def aws_environment(monkeypatch: pytest.MonkeyPatch, endpoint: str, tmp: Path) -> None:
    """The standard AWS variables, pointed at ``endpoint``; no profile or file of the machine is read."""
    import docmill.sources.s3 as s3_module

    values = {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "docmill-test-key",
        "AWS_SECRET_ACCESS_KEY": SECRET,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": str(tmp / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp / "no-aws-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_RETRY_MODE", "AWS_MAX_ATTEMPTS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(s3_module, "_client_cache", None)  # a client made under other variables


@pytest.fixture
def s3(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> S3:
    """A fresh bucket on the test server, with the AWS variables of this test pointing at it."""
    import boto3

    aws_environment(monkeypatch, s3_endpoint, tmp_path)
    client = boto3.session.Session().client("s3")
    bucket = f"t-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=bucket)
    return S3(s3_endpoint, client, bucket)
