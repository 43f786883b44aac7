"""Graceful stop on SIGINT/SIGTERM: the first signal asks the run to stop, the second aborts.

``graceful_stop(stop, on_first)`` installs the handlers for the duration of a run (main thread only;
elsewhere it installs nothing). The first signal sets ``stop``: the runner stops pulling new refs,
lets the documents in flight finish and flushes the journal. A second signal, or ``grace`` seconds
without the run ending, raises ``KeyboardInterrupt`` in the main thread: the runner still flushes what
it holds before leaving, so the journal stays consistent either way.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Callable, Iterator
from types import FrameType

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopFlag:
    """Why a run is stopping (``None`` while it is not), set once, readable from any thread."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.reason: str | None = None

    def set(self, reason: str) -> bool:
        """Ask the run to stop; returns False if it was already stopping."""
        if self._event.is_set():
            return False
        self.reason = reason
        self._event.set()
        return True

    def is_set(self) -> bool:
        return self._event.is_set()

    def wait(self, timeout: float) -> bool:
        return self._event.wait(timeout)


@contextlib.contextmanager
def graceful_stop(stop: StopFlag, on_first: Callable[[str], None], *, grace: float = 30.0) -> Iterator[None]:
    """Within the block, the first SIGINT/SIGTERM sets ``stop``; a second one aborts."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pid = os.getpid()
    timer: list[threading.Timer] = []

    def handle(signum: int, frame: FrameType | None) -> None:
        if os.getpid() != pid:  # a forked worker inherited this handler
            _as_worker(signum)
            return
        if not stop.set("interrupted"):
            raise KeyboardInterrupt
        on_first(f"{signal.Signals(signum).name}: finishing the documents in flight (again to abort)")
        timer.append(_abort_after(grace))

    previous = {sig: signal.signal(sig, handle) for sig in _SIGNALS}
    try:
        yield
    finally:
        for t in timer:
            t.cancel()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _as_worker(signum: int) -> None:
    """In a worker: ignore Ctrl-C (the parent decides when work stops); die on SIGTERM as usual."""
    if signum == signal.SIGINT:
        return
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def _abort_after(grace: float) -> threading.Timer:
    """Send ourselves SIGINT again if the run has not ended within ``grace`` seconds."""
    timer = threading.Timer(grace, os.kill, args=(os.getpid(), signal.SIGINT))
    timer.daemon = True
    timer.start()
    return timer
