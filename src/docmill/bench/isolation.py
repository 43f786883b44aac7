"""Run one measurement in a forked child, so it starts clean and cannot take the bench down.

Each bench case gets a fresh process: memory and threads left by the previous case (a peer's
reusable pool, an imported parser) do not count against the next one, and a strategy that
segfaults, aborts or hangs becomes a row with an error instead of ending the whole matrix.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
from collections.abc import Callable
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from typing import Any, TypeVar

from docmill.errors import BrokenExecutorError, WorkerCrashedError

T = TypeVar("T")


def _child(writer: Connection, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
    os.setpgrp()  # its own process group: a hung case is killed with every worker it started
    try:
        result: tuple[str, Any] = ("ok", fn(*args))
    except BaseException as exc:  # report anything, including SystemExit, as this child's failure
        result = ("error", f"{type(exc).__name__}: {' '.join(str(exc).split())}"[:300])
    writer.send(result)
    writer.close()


def _death(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        return f"killed by {signal.Signals(-exitcode).name}"
    return f"exited with code {exitcode}"


def in_child(fn: Callable[..., T], *args: Any, timeout: float | None = None) -> T:
    """``fn(*args)`` in a forked child; its result comes back pickled.

    Raises BrokenExecutorError when ``fn`` raised or ran past ``timeout`` seconds, and
    WorkerCrashedError when the child died without answering.
    """
    context = multiprocessing.get_context("fork")
    reader, writer = context.Pipe(duplex=False)
    process = context.Process(target=_child, args=(writer, fn, args), name="docmill-bench-case")
    process.start()
    writer.close()
    try:
        if not wait([reader, process.sentinel], timeout):
            raise BrokenExecutorError(f"no result within {timeout:g} s")
        try:
            status, value = reader.recv()
        except EOFError:
            process.join(5)
            raise WorkerCrashedError(
                f"measurement {_death(process.exitcode)}", exitcode=process.exitcode
            ) from None
        if status != "ok":
            raise BrokenExecutorError(str(value))
        return value  # type: ignore[no-any-return]
    except BaseException:
        _kill_group(process)
        raise
    finally:
        reader.close()
        process.join(10)
        _kill_group(process)


def _kill_group(process: BaseProcess) -> None:
    """SIGKILL the child's process group if the child is still there."""
    if process.is_alive() and process.pid is not None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.join()
