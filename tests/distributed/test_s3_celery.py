"""Celery workers read ``s3://`` themselves: no shared filesystem; endpoint and keys from their env."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from distributed_helpers import drive, running_workers

from docmill.executors.distributed import CeleryExecutor
from docmill.executors.sequential import SequentialExecutor
from docmill.job import Job
from docmill.journal.sqlite import SqliteJournal
from docmill.outcome import Outcome
from docmill.pipeline import Pipeline
from docmill.processors.extract import ExtractText
from docmill.sources.s3 import S3Source
from s3_server import S3

pytestmark = [pytest.mark.celery, pytest.mark.redis]


def test_celery_workers_fetch_objects_from_s3(s3: S3, manpages: Path, tmp_path: Path) -> None:
    assert s3.upload_tree(manpages, "man", limit=40) == 40
    s3.client.put_object(Bucket=s3.bucket, Key="man/zz-gone.txt", Body=b"soon deleted")
    lines = [f'{{"id": "r{i}", "text": "record {i} of a JSONL object"}}' for i in range(5)]
    s3.client.put_object(Bucket=s3.bucket, Key="man/records.jsonl", Body="\n".join(lines).encode())
    source = S3Source(s3.url("man"))
    refs = list(source)
    s3.client.delete_object(Bucket=s3.bucket, Key="man/zz-gone.txt")  # listed, then gone
    job = Job(source, Pipeline(ExtractText()))
    with SqliteJournal(tmp_path / "local.db") as local:
        _, expected = drive(SequentialExecutor(), job, local, refs)
    with running_workers(2) as workers:  # started after ``s3`` set the AWS variables they inherit
        with SqliteJournal(tmp_path / "celery.db") as journal:
            ex = CeleryExecutor(2, broker=workers.broker, queue=workers.queue, chunk_size=5)
            with ex:
                _, got = drive(ex, job, journal, refs)
    assert len(got) == len(expected) == 46  # 40 objects, 5 records (each line a ranged GET), 1 gone
    assert view(got) == view(expected)
    assert view(got)["zz-gone.txt"] == ("failed", None, f"{s3.url('man/zz-gone.txt')}: no such object")
    assert sum(1 for o in got if o.status.is_success) == 45
    assert view(got)["records.jsonl#r4"][0] == "ok"
    pids = {o.timings.worker.split(":")[1] for o in got if o.timings.worker}
    assert pids and str(os.getpid()) not in pids  # fetched by the workers, not by this process


def view(outcomes: list[Outcome]) -> dict[str, tuple[str, str | None, str | None]]:
    return {o.ref.id: (o.status.value, o.sha256, o.error.message if o.error else None) for o in outcomes}
