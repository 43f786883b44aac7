"""Access refused by a real S3 protocol server: one object a policy denies fails that document alone,
with one line; credentials the server does not accept stop the run before any work, with one line.

A moto server of this module's own, with its IAM checks on (``INITIAL_NO_AUTH_ACTION_COUNT``): the
first few requests make a user whose policy allows ``s3:*`` but denies ``GetObject`` under
``denied/``; every later request is checked against that user's policy.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_s3_source import labels_of, run

from docmill.errors import ConfigError
from docmill.journal.base import Query
from docmill.journal.sqlite import SqliteJournal
from s3_server import _wait_ready, aws_environment, free_port

SETUP_REQUESTS = 3  # create_user, create_access_key, put_user_policy: unchecked; the rest are checked
BUCKET = f"acl-{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="module")
def iam_endpoint() -> Iterator[tuple[str, dict[str, str]]]:
    """(endpoint, the reader's credentials) of a moto server enforcing IAM; skips when it cannot start."""
    pytest.importorskip("moto.server", reason="moto[server] not installed (pip install 'docmill[test]')")
    boto3 = pytest.importorskip("boto3", reason="boto3 not installed (pip install 'docmill[s3]')")
    url = f"http://127.0.0.1:{free_port()}"
    env = {**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": str(SETUP_REQUESTS)}
    argv = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", url.rpartition(":")[2]]
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        if not _wait_ready(url, proc, timeout=30):
            pytest.skip(f"moto S3 server did not start on {url}")
        yield url, reader(boto3, url)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def reader(boto3: Any, url: str) -> dict[str, str]:
    """The reader's credentials; its bucket made and filled with them."""
    where = {"endpoint_url": url, "region_name": "us-east-1"}
    iam = boto3.client("iam", aws_access_key_id="setup", aws_secret_access_key="x", **where)
    iam.create_user(UserName="reader")
    key = iam.create_access_key(UserName="reader")["AccessKey"]
    allow = {"Effect": "Allow", "Action": "s3:*", "Resource": "*"}
    deny = {"Effect": "Deny", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{BUCKET}/denied/*"}
    policy = {"Version": "2012-10-17", "Statement": [allow, deny]}
    iam.put_user_policy(UserName="reader", PolicyName="read-most", PolicyDocument=json.dumps(policy))
    credentials = {"AWS_ACCESS_KEY_ID": key["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"]}
    s3 = boto3.client("s3", **where, **{name.lower(): value for name, value in credentials.items()})
    s3.create_bucket(Bucket=BUCKET)
    for name in ("p/a.txt", "p/b.txt", "denied/p/c.txt"):
        s3.put_object(Bucket=BUCKET, Key=name, Body=f"manual page {name}".encode())
    s3.put_object(Bucket=BUCKET, Key="denied/p/r.jsonl", Body=b'{"id": "x", "text": "y"}\n')
    return credentials


@pytest.fixture
def reader_env(
    iam_endpoint: tuple[str, dict[str, str]], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """This test's AWS variables: the module's server, the reader's credentials."""
    url, credentials = iam_endpoint
    aws_environment(monkeypatch, url, tmp_path)
    for name, value in credentials.items():
        monkeypatch.setenv(name, value)


def test_an_object_the_policy_denies_fails_only_that_document(reader_env: None, tmp_path: Path) -> None:
    result = run(f"s3://{BUCKET}/", tmp_path, "j")
    assert result.stats.done == 4
    got = labels_of(tmp_path / "j.db")
    assert got["p/a.txt"][0] in {"ok", "empty"} and got["p/b.txt"][0] in {"ok", "empty"}
    with SqliteJournal(tmp_path / "j.db") as journal:
        failed = {r.path: r for r in journal.iter_documents(Query(status=["failed", "quarantined"]))}
    assert sorted(failed) == ["denied/p/c.txt", "denied/p/r.jsonl"]
    for path, record in failed.items():
        reason = f"s3://{BUCKET}/{path}: access denied (check the credentials and the bucket policy)"
        assert (record.status, record.error_type, record.error_message) == (
            "quarantined",
            "SourceError",
            reason,
        )


@pytest.mark.parametrize("variable", ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"])
def test_credentials_the_server_refuses_stop_the_run_before_any_work(
    reader_env: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    monkeypatch.setenv(variable, "AKIAWRONGWRONGWRONG1")
    with pytest.raises(ConfigError, match=rf"^s3://{BUCKET}: access denied \(check the credentials"):
        run(f"s3://{BUCKET}/p", tmp_path, "j")
    assert not (tmp_path / "j.db").exists()
    argv = [sys.executable, "-m", "docmill", "run", f"s3://{BUCKET}/p", "--db", str(tmp_path / "c.db")]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    reason = "access denied (check the credentials and the bucket policy)"
    assert done.stderr.strip() == f"docmill: error: s3://{BUCKET}: {reason}"
    assert not (tmp_path / "c.db").exists()
