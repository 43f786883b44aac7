"""A circuit breaker for a run: stop when every call keeps failing the same way for a while.

When the endpoint is gone (connection refused, DNS failure) or the key was revoked (401/403), no
document can succeed, and failing each one in turn costs minutes and leaves a journal full of
failures a user must retry. The breaker watches the calls of one process: once calls have failed
with the same kind of outage, with no answer from the endpoint in between, for ``window`` seconds
(and at least ``min_failures`` times), it opens and stays open; the caller then raises
``RunStoppedError`` and the runner stops cleanly without recording the documents in flight. Any
answer from the endpoint (even a 503) ends a streak. Time is injected (``clock``).
"""

from __future__ import annotations

from dataclasses import dataclass

from docmill.clock import SYSTEM_CLOCK, Clock
from docmill.errors import AuthRefusedError, UnreachableError

OUTAGES: tuple[tuple[type[Exception], str], ...] = (
    (UnreachableError, "the endpoint is unreachable"),
    (AuthRefusedError, "the provider refuses the key"),
)


def outage_kind(error: BaseException) -> str | None:
    """What kind of outage ``error`` shows, or None if it is about this call alone."""
    return next((kind for cls, kind in OUTAGES if isinstance(error, cls)), None)


@dataclass(slots=True)
class Breaker:
    """Open once the same outage has lasted ``window`` seconds and ``min_failures`` calls."""

    window: float = 30.0
    min_failures: int = 3
    clock: Clock = SYSTEM_CLOCK
    _kind: str | None = None
    _since: float = 0.0
    _failures: int = 0
    _reason: str | None = None

    def failed(self, kind: str, detail: str) -> None:
        """A call failed with outage ``kind``; ``detail`` is its error message."""
        now = self.clock.monotonic()
        if kind != self._kind:
            self._kind, self._since, self._failures = kind, now, 0
        self._failures += 1
        lasted = now - self._since
        if self._reason is None and lasted >= self.window and self._failures >= self.min_failures:
            self._reason = f"{kind} for {lasted:.0f} s ({self._failures} calls): {detail}"

    def answered(self) -> None:
        """The endpoint answered (whatever it said): the streak ends. An open breaker stays open."""
        self._kind, self._failures = None, 0

    def open(self) -> str | None:
        """Why calls should stop, once open; None while closed."""
        return self._reason
