"""Waits a stopping run cuts short: the rate limiter's, the concurrency gate's, a Retry-After's.

A document waiting for the provider (a bucket's debt, a 429's pause, a free slot, a backoff
before its next attempt) has spent nothing yet, so when the run is asked to stop by a signal
(``docmill._signals.graceful_stop`` calls :func:`interrupt`) there is no reason to sit out the
wait: every such wait ends at once with :class:`~docmill.errors.RunStoppedError`, which the runner
does not record, so the next run redoes the document. Requests already on the wire are not cut;
they end as usual (within the client's timeout).

Only waits made through :func:`sleep` / :func:`asleep` here are cut. In the run's own process
they wait on an event (threads) or on a future of their event loop, so they end within
microseconds of the signal. Worker processes (``processes``, ``staged``, ``hybrid``, the ``auto``
probe) learn it from a flag file the run names in their environment (:func:`watching`): while one
is named, waits also look at it every ``CHUNK`` seconds. With another clock than the system's
(``docmill.testing.FakeClock``) waits sleep on that clock and check afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

from docmill.clock import Clock, SystemClock
from docmill.errors import RunStoppedError

ENV = "DOCMILL_STOP_FLAG"  # the flag file of the run this process works for
CHUNK = 0.2  # seconds between two looks at the flag file, when a run names one
MESSAGE = "the run is stopping: this document was waiting for the provider and is redone next run"

_event = threading.Event()
_lock = threading.RLock()  # reentrant: a signal handler may run while this thread holds it
_sleepers: set[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = set()


@contextlib.contextmanager
def watching() -> Iterator[None]:
    """For the duration of a run: name a flag file that worker processes started meanwhile watch."""
    previous = os.environ.get(ENV)
    flag = _flag_dir() / f"docmill-stop-{os.getpid()}-{uuid.uuid4().hex}"
    os.environ[ENV] = str(flag)
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(ENV, None)
        else:
            os.environ[ENV] = previous
        flag.unlink(missing_ok=True)
        resume()


def interrupt() -> None:
    """End every wait of this process (and of the workers watching its flag) now, until :func:`resume`."""
    _event.set()
    if flag := os.environ.get(ENV):
        with contextlib.suppress(OSError):
            Path(flag).touch()
    with _lock:
        sleepers = list(_sleepers)
    for loop, future in sleepers:
        with contextlib.suppress(RuntimeError):  # that loop is closed: nobody waits there any more
            loop.call_soon_threadsafe(_wake, future)


def resume() -> None:
    """Let waits last again (the run that was stopping has ended)."""
    _event.clear()


def interrupted() -> bool:
    """Whether waits are being cut short (in this process, or by the run this worker serves)."""
    if _event.is_set():
        return True
    flag = os.environ.get(ENV)
    if flag and os.path.exists(flag):
        _event.set()
        return True
    return False


def check() -> None:
    """Raise RunStoppedError if the run is stopping."""
    if interrupted():
        raise RunStoppedError(MESSAGE)


def sleep(clock: Clock, seconds: float) -> None:
    """``clock.sleep(seconds)``, cut short (RunStoppedError) when the run stops."""
    check()
    if seconds <= 0:
        return
    if not isinstance(clock, SystemClock):
        clock.sleep(seconds)
        check()
        return
    deadline = clock.monotonic() + seconds
    while (left := deadline - clock.monotonic()) > 0:
        _event.wait(min(left, CHUNK) if ENV in os.environ else left)
        check()


async def asleep(clock: Clock, seconds: float) -> None:
    """``await clock.asleep(seconds)``, cut short (RunStoppedError) when the run stops."""
    check()
    if seconds <= 0 or not isinstance(clock, SystemClock):
        await clock.asleep(max(0.0, seconds))
        check()
        return
    loop = asyncio.get_running_loop()
    future: asyncio.Future[None] = loop.create_future()
    entry = (loop, future)
    with _lock:
        _sleepers.add(entry)
    try:
        deadline = clock.monotonic() + seconds
        while (left := deadline - clock.monotonic()) > 0:
            check()  # interrupt() may have run before the registration
            await asyncio.wait((future,), timeout=min(left, CHUNK) if ENV in os.environ else left)
    finally:
        with _lock:
            _sleepers.discard(entry)
        future.cancel()
    check()


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _flag_dir() -> Path:
    shm = Path("/dev/shm")
    return shm if shm.is_dir() and os.access(shm, os.W_OK) else Path(tempfile.gettempdir())
