"""The entry point of a worker process: the serial loop, or the wide one of ``hybrid``.

Kept apart from ``worker`` (the serial loop and what both loops share) and ``wide`` (which builds
on it), so neither imports the other back.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pickle
import signal
from multiprocessing.connection import Connection
from typing import Any

from docmill.executors.pool.gc_pause import fewer_collections
from docmill.executors.pool.wide import WideLoop
from docmill.executors.pool.worker import Task, WorkerLimits, serve_serial
from docmill.outcome import ErrorInfo


def serve(
    task: Task, conn: Connection, slots: Any, base: int, limits: WorkerLimits, inherited: tuple[int, ...] = ()
) -> None:
    """Entry point of a worker process; ``inherited``: file descriptors to close first."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    for fd in inherited:
        with contextlib.suppress(OSError):
            os.close(fd)
    try:
        task.setup()
    except BaseException as exc:
        conn.send_bytes(pickle.dumps(("setup-failed", ErrorInfo.from_exception(exc))))
        return
    try:
        if limits.width > 1:
            with fewer_collections():
                asyncio.run(WideLoop(task, conn, slots, base, limits).serve())
        else:
            serve_serial(task, conn, slots, base, limits)
    finally:
        task.teardown()
