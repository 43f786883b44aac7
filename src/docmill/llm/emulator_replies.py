"""The emulator's replies: what one HTTP answer is, the shapes of chat replies, window accounting.

Shared by the online routes (``docmill.llm.emulator``) and the Batch API (``emulator_batch``), so
an answer inside a batch's output file is the very body an online call would have received.
"""

from __future__ import annotations

import json
import random
import time
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from docmill.limits.headers import format_duration


@dataclass(slots=True)
class Reply:
    """What to send back. ``action``: ``send``; ``drop`` (close, no reply); ``truncate`` (half a body)."""

    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    action: str = "send"

    @classmethod
    def json(cls, status: int, payload: Any, headers: Mapping[str, str] | None = None) -> Reply:
        return cls(
            status, json.dumps(payload).encode(), {"content-type": "application/json", **(headers or {})}
        )


@dataclass(slots=True)
class Window:
    """Sliding-window accounting of one budget: [arrival, amount] entries younger than ``window``."""

    limit: int
    window: float
    entries: deque[list[float]] = field(default_factory=deque)

    def prune(self, now: float) -> None:
        while self.entries and self.entries[0][0] <= now - self.window:
            self.entries.popleft()

    def used(self) -> float:
        return sum(entry[1] for entry in self.entries)

    def wait_for(self, amount: float, now: float) -> float:
        """Seconds until ``amount`` more fits (0 if it fits now)."""
        excess = self.used() + amount - self.limit
        for arrival, value in self.entries:
            if excess <= 0:
                break
            excess -= value
            if excess <= 0:
                return arrival + self.window - now
        return 0.0 if excess <= 0 else self.window

    def reset_in(self, now: float) -> float:
        """Seconds until the budget is whole again: the newest entry leaves the window."""
        return max(0.0, self.entries[-1][0] + self.window - now) if self.entries else 0.0


def rfc3339(wall: float) -> str:
    stamp = datetime.fromtimestamp(wall, UTC).isoformat(timespec="milliseconds")
    return stamp.replace("+00:00", "Z")


def limit_headers(
    windows: Iterable[tuple[str, Window]], now: float, wall: float, style: str
) -> dict[str, str]:
    """The rate-limit headers for ``windows`` (requests, tokens) at ``now``: ``openai`` style
    (``x-ratelimit-*``, resets as durations), ``anthropic`` (``anthropic-ratelimit-*``, resets as
    RFC 3339 times from ``wall``) or ``none``."""
    headers: dict[str, str] = {}
    for kind, window in windows if style != "none" else ():
        if window.limit:
            window.prune(now)
            limit, left, reset = (
                str(window.limit),
                str(max(0, int(window.limit - window.used()))),
                window.reset_in(now),
            )
            if style == "openai":
                headers[f"x-ratelimit-limit-{kind}"] = limit
                headers[f"x-ratelimit-remaining-{kind}"] = left
                headers[f"x-ratelimit-reset-{kind}"] = format_duration(reset)
            else:
                headers[f"anthropic-ratelimit-{kind}-limit"] = limit
                headers[f"anthropic-ratelimit-{kind}-remaining"] = left
                headers[f"anthropic-ratelimit-{kind}-reset"] = rfc3339(wall + reset)
    return headers


def max_in_window(times: list[float], window: float) -> int:
    """The most events in any half-open interval [t, t + window) (``times`` ascending)."""
    best, start = 0, 0
    for end, t in enumerate(times):
        while times[start] <= t - window:
            start += 1
        best = max(best, end - start + 1)
    return best


def max_tokens(request: Mapping[str, Any], *, ollama: bool) -> int:
    if ollama:
        value = (request.get("options") or {}).get("num_predict")
    else:
        value = request.get("max_completion_tokens") or request.get("max_tokens")
    return int(value) if isinstance(value, int) and value > 0 else 256


def invalid(message: str) -> Reply:
    return Reply.json(400, {"error": {"message": message, "type": "invalid_request_error"}})


def openai_reply(
    request: Mapping[str, Any], content: str, usage: tuple[int, int], finish: str
) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-{random.getrandbits(48):012x}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": request.get("model", "emulated-small"),
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": finish}
        ],
        "usage": {"prompt_tokens": usage[0], "completion_tokens": usage[1], "total_tokens": sum(usage)},
    }


def ollama_reply(request: Mapping[str, Any], content: str, usage: tuple[int, int]) -> dict[str, Any]:
    return {
        "model": request.get("model", "emulated-small"),
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "message": {"role": "assistant", "content": content},
        "done": True,
        "done_reason": "stop",
        "prompt_eval_count": usage[0],
        "eval_count": usage[1],
    }
