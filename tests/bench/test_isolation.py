"""A measurement in a forked child: results come back, crashes and hangs become errors."""

from __future__ import annotations

import os
import signal
import time

import pytest

from docmill.bench.isolation import in_child
from docmill.errors import BrokenExecutorError, WorkerCrashedError


def _add(a: int, b: int) -> int:
    return a + b


def _kill_self() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def _raise() -> None:
    raise ValueError("bad   input\nhere")


def _hang() -> None:
    time.sleep(60)


def test_result_comes_back() -> None:
    assert in_child(_add, 2, 3) == 5


def test_a_crash_is_reported_with_its_signal() -> None:
    with pytest.raises(WorkerCrashedError, match="SIGKILL"):
        in_child(_kill_self)


def test_an_exception_is_reported_on_one_line() -> None:
    with pytest.raises(BrokenExecutorError, match="ValueError: bad input here"):
        in_child(_raise)


def test_a_hang_is_killed_after_the_timeout() -> None:
    started = time.monotonic()
    with pytest.raises(BrokenExecutorError, match="no result within 0.5 s"):
        in_child(_hang, timeout=0.5)
    assert time.monotonic() - started < 10
