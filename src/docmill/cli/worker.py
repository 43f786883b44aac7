"""``docmill worker``: a Celery worker serving docmill's distributed runs."""

from __future__ import annotations

import os
from enum import StrEnum
from typing import Annotated

import typer


class Pool(StrEnum):
    prefork = "prefork"
    threads = "threads"
    solo = "solo"


def worker(
    broker: Annotated[
        str, typer.Option(envvar="DOCMILL_BROKER", help="Broker URL (Redis or RabbitMQ).")
    ] = "redis://127.0.0.1:6379/0",
    concurrency: Annotated[int, typer.Option("--concurrency", "-c", min=1, help="Worker processes.")] = 2,
    pool: Annotated[Pool, typer.Option(help="prefork: processes; threads: I/O-bound runs.")] = Pool.prefork,
    queue: Annotated[str, typer.Option(envvar="DOCMILL_QUEUE", help="Queue to consume.")] = "docmill",
    hostname: Annotated[str | None, typer.Option(help="Node name (default docmill-PID@HOST).")] = None,
    max_tasks_per_child: Annotated[int, typer.Option(min=1, help="Replace a process after N chunks.")] = 1000,
    visibility_timeout: Annotated[
        float, typer.Option(min=1, help="Seconds before an unacknowledged chunk is redelivered (Redis).")
    ] = 3600,
    loglevel: Annotated[str, typer.Option(help="Celery log level.")] = "INFO",
) -> None:
    """Start a Celery worker that runs chunks of docmill runs (`docmill run --strategy celery`)."""
    from docmill.distributed.app import make_app

    app = make_app(
        broker, visibility_timeout=visibility_timeout, max_tasks_per_child=max_tasks_per_child, queue=queue
    )
    name = hostname or f"docmill-{os.getpid()}@%h"  # unique per process, even on one host
    app.worker_main(
        [
            "worker",
            f"--pool={pool.value}",
            f"--concurrency={concurrency}",
            f"--queues={queue}",
            f"--hostname={name}",
            f"--loglevel={loglevel}",
            "--without-mingle",  # no start-up handshake: workers come and go during a run
            "--task-events",
        ]
    )


def register(app: typer.Typer) -> None:
    app.command()(worker)
