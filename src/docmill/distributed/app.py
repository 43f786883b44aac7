"""docmill's Celery application: JSON messages, late acks, requeue on worker loss.

``make_app(broker)`` builds it; the module-level ``app`` reads ``DOCMILL_BROKER`` (default
``redis://127.0.0.1:6379/0``) so ``celery -A docmill.distributed.app worker`` works as is.

Delivery is at least once: a task is acknowledged only after it has pushed its outcomes
(``task_acks_late``), a worker process killed mid-task gets its task requeued
(``task_reject_on_worker_lost``), and with Redis as broker a task not acknowledged within the
``visibility_timeout`` is handed to another worker. The parent keeps the first result of each
chunk and the journal upserts by key, so redelivery costs time, never a duplicate row.
"""

from __future__ import annotations

import contextlib
import os
import signal
from typing import Any

from celery import Celery
from celery.exceptions import WorkerLostError
from celery.signals import worker_process_shutdown
from celery.worker.request import Request
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from docmill.distributed import tasks
from docmill.distributed.channel import channel_for, teardown_jobs

DEFAULT_BROKER = "redis://127.0.0.1:6379/0"
DEFAULT_QUEUE = "docmill"
TASK_NAME = "docmill.run_chunk"


def make_app(
    broker: str | None = None,
    *,
    visibility_timeout: float | None = None,
    max_tasks_per_child: int | None = None,
    queue: str = DEFAULT_QUEUE,
) -> Celery:
    """A Celery app for docmill on ``broker`` (Redis or RabbitMQ)."""
    broker = broker or os.environ.get("DOCMILL_BROKER", DEFAULT_BROKER)
    visibility = visibility_timeout or float(os.environ.get("DOCMILL_VISIBILITY_TIMEOUT", 3600))
    app = Celery("docmill", broker=broker, set_as_current=False)
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,  # outcomes travel through the run's Redis list, not the backend
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_default_queue=queue,
        worker_prefetch_multiplier=1,  # a chunk is already a batch; do not hoard more
        worker_max_tasks_per_child=max_tasks_per_child or int(os.environ.get("DOCMILL_MAX_TASKS", 1000)),
        worker_send_task_events=True,  # Flower and `celery events` see every chunk
        task_send_sent_event=True,
        broker_connection_retry_on_startup=True,
        broker_transport_options=_transport_options(visibility),
        worker_hijack_root_logger=False,
    )
    app.task(
        name=TASK_NAME,
        bind=True,
        Request="docmill.distributed.app:ChunkRequest",
        autoretry_for=(RedisConnectionError, RedisTimeoutError),  # pushing the outcomes failed
        retry_backoff=True,
        retry_backoff_max=60,
        max_retries=5,
    )(_run_chunk)
    return app


def _transport_options(visibility: float) -> dict[str, Any]:
    """Redis broker options; restores of unacknowledged tasks are checked at a tenth of the timeout."""
    check = max(1, int(visibility / 10))
    return {
        "visibility_timeout": visibility,
        "unacked_restore_interval": min(10, check),
        "unacked_restore_throttle": 1 if visibility < 100 else 10,
    }


class ChunkRequest(Request):  # type: ignore[misc]
    """A task request that, when its worker process dies, notes how in the run's Redis keys.

    Runs in the worker's main process, which sees the child's exit status; the redelivered chunk
    reads it to explain a poison document ("killed by SIGKILL", "exited with code 7").
    """

    def on_failure(self, exc_info: Any, send_failed_event: bool = True, return_ok: bool = False) -> None:
        reason = _loss(getattr(exc_info.exception, "exc", exc_info.exception))
        if reason is not None:
            with contextlib.suppress(Exception):  # a note for the next delivery, never a new failure
                kwargs = self.kwargs
                channel_for(kwargs["store"], kwargs["run"]).lost(kwargs["chunk"], reason)
        super().on_failure(exc_info, send_failed_event=send_failed_event, return_ok=return_ok)


def _loss(exc: BaseException) -> str | None:
    """How a pool process died, from what billiard reports: WorkerLostError, or SystemExit(status)."""
    if isinstance(exc, WorkerLostError):
        return tasks.describe_loss(str(exc))
    if isinstance(exc, SystemExit) and isinstance(exc.code, int):  # billiard >= 4.3 reports the exit
        if exc.code < 0:
            with contextlib.suppress(ValueError):
                return f"killed by {signal.Signals(-exc.code).name}"
            return f"killed by signal {-exc.code}"
        return f"exited with code {exc.code}"
    return None


def _run_chunk(self: Any, **kwargs: Any) -> str:
    return tasks.run_chunk(task_id=str(self.request.id or ""), **kwargs)


def _teardown(**_: Any) -> None:
    teardown_jobs()


worker_process_shutdown.connect(_teardown)


app = make_app()
