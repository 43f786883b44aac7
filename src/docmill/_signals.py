"""Stopping on a signal: gracefully within a run, and with exit status 130 whenever it happens.

Two pieces, both main-thread only (elsewhere they install nothing):

``graceful_stop(stop, on_first)`` holds for the duration of a run. The first SIGINT/SIGTERM/SIGHUP
sets ``stop``: the runner stops pulling new refs, lets the documents in flight finish and flushes
the journal. Documents that are only *waiting* (for the LLM provider's rate limit, a Retry-After
pause or their next attempt) are not made to wait it out: the signal ends those waits at once
(``docmill.limits.interrupt``), they are not recorded, and the next run redoes them. A second
signal, or ``grace`` seconds without the run ending, raises ``KeyboardInterrupt`` in the main
thread, once: later signals are noted and ignored, and none is raised while the runner is writing
its last batch and the run's end (``stop.finishing``), so the journal stays consistent.

``ProcessExit`` is installed by the ``docmill`` entry point for the whole process. Outside a run the
first signal raises ``KeyboardInterrupt`` (the command ends with 130); once the command has returned,
a signal only turns the exit status into 130. It stays in force during the interpreter's teardown,
which would otherwise restore the default actions and let a late Ctrl-C kill the process (status -2).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from types import FrameType

from docmill.limits import interrupt

INTERRUPTED = 130  # the shell's status for "ended by Ctrl-C", used for every interrupted ending
_process: ProcessExit | None = None  # the entry point's, once installed


def handled_signals() -> tuple[signal.Signals, ...]:
    """SIGINT, SIGTERM, and SIGHUP unless the process was started to ignore it (``nohup``)."""
    hup: signal.Signals | None = getattr(signal, "SIGHUP", None)
    if hup is None or signal.getsignal(hup) is signal.SIG_IGN:
        return (signal.SIGINT, signal.SIGTERM)
    return (signal.SIGINT, signal.SIGTERM, hup)


class StopFlag:
    """Why a run is stopping (``None`` while it is not), set once, readable from any thread.

    ``finishing`` is True within ``shield()``, while the runner writes the run's last batch and its
    end: a signal then never interrupts it.
    """

    def __init__(self) -> None:
        self._event = threading.Event()
        self.reason: str | None = None
        self.finishing = False

    @contextlib.contextmanager
    def shield(self) -> Iterator[None]:
        """Within the block no signal raises: the runner writes the run's last batch and its end."""
        self.finishing = True
        try:
            yield
        finally:
            self.finishing = False

    def set(self, reason: str) -> bool:
        """Ask the run to stop; returns False if it was already stopping."""
        if self._event.is_set():
            return False
        self.reason = reason
        self._event.set()
        return True

    def is_set(self) -> bool:
        """Whether the run was asked to stop."""
        return self._event.is_set()

    def wait(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for a stop; returns whether it came."""
        return self._event.wait(timeout)


class _Graceful:
    """The handler a run installs: first signal stops, second aborts once, later ones are ignored."""

    def __init__(self, stop: StopFlag, on_first: Callable[[str], None], grace: float) -> None:
        self.stop, self.on_first, self.grace = stop, on_first, grace
        self.pid = os.getpid()
        self.aborted = False
        self.timer: threading.Timer | None = None

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        if os.getpid() != self.pid:  # a forked worker inherited this handler
            _as_worker(signum)
            return
        if _process is not None:
            _process.signalled = True  # the command has been interrupted, whatever comes next
        if self.stop.set("interrupted"):
            # Waits for the provider end now (nothing was spent on them yet). From a thread: the
            # handler may have interrupted this very thread inside a lock that interrupt() takes.
            threading.Thread(target=interrupt.interrupt, name="docmill-interrupt", daemon=True).start()
            self._first(signum)
        elif not (self.aborted or self.stop.finishing):
            self.aborted = True
            raise KeyboardInterrupt

    def _first(self, signum: int) -> None:
        with contextlib.suppress(OSError):  # the terminal may be gone (SIGHUP)
            self.on_first(
                f"{signal.Signals(signum).name}: finishing the documents in flight (again to abort)"
            )
        self.timer = _abort_after(self.grace)

    def cancel(self) -> None:
        """Stop the grace timer (the run has ended)."""
        if self.timer is not None:
            self.timer.cancel()


@contextlib.contextmanager
def graceful_stop(stop: StopFlag, on_first: Callable[[str], None], *, grace: float = 30.0) -> Iterator[None]:
    """Within the block, the first signal sets ``stop``; a second one aborts (see the module doc)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    handler = _Graceful(stop, on_first, grace)
    previous = {sig: signal.signal(sig, handler) for sig in handled_signals()}
    try:
        with interrupt.watching():  # worker processes started by the run watch its flag
            yield
    finally:
        handler.cancel()
        for sig, old in previous.items():
            signal.signal(sig, old)


class ProcessExit:
    """The ``docmill`` process's exit status under signals: 130 for any interrupted ending.

    ``install()`` before the command runs; ``status(code)`` when it has returned ``code``.
    """

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.signalled = False
        self.leaving = False
        self.code = 0

    @classmethod
    def install(cls) -> ProcessExit:
        """Handle the signals from now on; registered with ``atexit`` first, so its hook runs last."""
        global _process
        handler = cls()
        if threading.current_thread() is threading.main_thread():
            _process = handler
            for sig in handled_signals():
                signal.signal(sig, handler.handle)
            atexit.register(handler.last)
        return handler

    def handle(self, signum: int, frame: FrameType | None) -> None:
        """Stop the command on the first signal while it works (as Ctrl-C does); else note it.

        If the command handles Ctrl-C itself (a server's graceful shutdown), the signal is passed on
        to it as SIGINT; otherwise ``KeyboardInterrupt`` is raised.
        """
        if os.getpid() != self.pid:
            _as_worker(signum)
            return
        first = not self.signalled
        self.signalled = True
        if not first or self.leaving:
            return
        if signal.getsignal(signal.SIGINT) != self.handle:
            signal.raise_signal(signal.SIGINT)
            return
        raise KeyboardInterrupt

    def status(self, code: int) -> int:
        """The command returned ``code``: from now on a signal is only noted. Returns the exit status."""
        self.leaving = True
        self.code = INTERRUPTED if self.signalled else code
        return self.code

    def last(self) -> None:
        """The last exit hook: ignore the signals from here on; leave with 130 if one came meanwhile."""
        for sig in handled_signals():
            signal.signal(sig, signal.SIG_IGN)
        if self.signalled and self.code != INTERRUPTED and os.getpid() == self.pid:
            for stream in (sys.stdout, sys.stderr):
                with contextlib.suppress(Exception):
                    stream.flush()
            os._exit(INTERRUPTED)


def _as_worker(signum: int) -> None:
    """In a worker: ignore Ctrl-C (the parent decides when work stops); die on the others as usual."""
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
