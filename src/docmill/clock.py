"""Injected time. Logic never calls ``time.time()``/``time.sleep()`` directly.

``SYSTEM_CLOCK`` is the real one; ``docmill.testing.FakeClock`` advances only when told to, so
limiter, retry and ETA tests never sleep.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol


class Clock(Protocol):
    """Monotonic seconds for intervals, wall seconds for records, and the two ways to wait."""

    def monotonic(self) -> float: ...
    def wall(self) -> float: ...
    def sleep(self, seconds: float) -> None: ...
    async def asleep(self, seconds: float) -> None: ...


class SystemClock:
    """The real clock."""

    def monotonic(self) -> float:
        return time.monotonic()

    def wall(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)

    async def asleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))

    def __reduce__(self) -> str:
        return "SYSTEM_CLOCK"  # pickles as a reference to the module singleton


SYSTEM_CLOCK = SystemClock()
