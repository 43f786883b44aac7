"""What a provider's reply headers say about its rate limits, in one typed value.

Two families are read, and either may be absent (then nothing is known and the client falls back
to slow start, ``docmill.limits.adaptive``):

* OpenAI style: ``x-ratelimit-limit-requests``, ``x-ratelimit-remaining-requests``,
  ``x-ratelimit-reset-requests`` and the same for ``-tokens``; resets are durations in Go's
  notation (``1s``, ``6m0s``, ``250ms``, ``1h2m3.5s``): the time until the budget is full again.
* Anthropic style: ``anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-{limit,
  remaining,reset}``, resets as RFC 3339 times. docmill keeps one token budget (prompt + reply), so
  it takes ``tokens`` when given, else ``input-tokens`` (the larger share of a classification call).

The limits are per the provider's window, which the headers do not name: docmill assumes the
configured ``rate_window`` (60 s, as both providers' per-minute limits are).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

_DURATION = re.compile(r"(?P<value>\d+(?:\.\d+)?)(?P<unit>ns|us|µs|ms|h|m|s)")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


@dataclass(frozen=True, slots=True)
class Budget:
    """One budget as the provider described it: its limit, what is left, seconds until full."""

    limit: float | None = None
    remaining: float | None = None
    reset: float | None = None


@dataclass(frozen=True, slots=True)
class RateLimitHeaders:
    """Both budgets as one reply described them (fields None when the reply did not say)."""

    requests: Budget = Budget()
    tokens: Budget = Budget()

    @property
    def told(self) -> bool:
        """Whether the reply named a limit at all."""
        return self.requests.limit is not None or self.tokens.limit is not None


NOTHING = RateLimitHeaders()


def read_headers(headers: Mapping[str, str], *, now: float) -> RateLimitHeaders:
    """The rate-limit headers of one reply (``now``: wall-clock seconds, for RFC 3339 resets).

    ``headers`` must answer lower-case names (``httpx.Headers`` answers any case).
    """
    if any(f"x-ratelimit-{part}-requests" in headers for part in ("limit", "remaining")) or any(
        f"x-ratelimit-{part}-tokens" in headers for part in ("limit", "remaining")
    ):
        return RateLimitHeaders(_openai(headers, "requests"), _openai(headers, "tokens"))
    if "anthropic-ratelimit-requests-limit" in headers or "anthropic-ratelimit-tokens-limit" in headers:
        tokens = _anthropic(headers, "tokens", now)
        if tokens.limit is None:
            tokens = _anthropic(headers, "input-tokens", now)
        return RateLimitHeaders(_anthropic(headers, "requests", now), tokens)
    if "anthropic-ratelimit-input-tokens-limit" in headers:
        return RateLimitHeaders(Budget(), _anthropic(headers, "input-tokens", now))
    return NOTHING


def _openai(headers: Mapping[str, str], kind: str) -> Budget:
    return Budget(
        _count(headers.get(f"x-ratelimit-limit-{kind}")),
        _count(headers.get(f"x-ratelimit-remaining-{kind}")),
        parse_duration(headers.get(f"x-ratelimit-reset-{kind}")),
    )


def _anthropic(headers: Mapping[str, str], kind: str, now: float) -> Budget:
    prefix = f"anthropic-ratelimit-{kind}"
    reset = parse_time(headers.get(f"{prefix}-reset"))
    return Budget(
        _count(headers.get(f"{prefix}-limit")),
        _count(headers.get(f"{prefix}-remaining")),
        None if reset is None else max(0.0, reset - now),
    )


def parse_duration(text: str | None) -> float | None:
    """``"1m30.5s"`` → 90.5, ``"250ms"`` → 0.25, ``"2"`` → 2.0; None if unreadable."""
    if not text:
        return None
    if (plain := _number(text)) is not None:
        return plain
    text = text.strip()
    parts = list(_DURATION.finditer(text))
    if not parts or "".join(p.group(0) for p in parts) != text:
        return None
    return sum(float(p["value"]) * _UNITS[p["unit"]] for p in parts)


def format_duration(seconds: float) -> str:
    """A duration as Go's ``time.Duration`` prints it (what OpenAI sends): ``59.5s``, ``6m0s``, ``250ms``."""
    seconds = max(0.0, seconds)
    if seconds == 0:
        return "0s"
    if seconds < 1:
        return f"{_trim(round(seconds * 1000, 3))}ms"
    hours, rest = divmod(seconds, 3600.0)
    minutes, secs = divmod(rest, 60.0)
    text = f"{_trim(round(secs, 3))}s"
    if hours or minutes:
        text = f"{int(minutes)}m{text}"
    if hours:
        text = f"{int(hours)}h{text}"
    return text


def parse_time(text: str | None) -> float | None:
    """An RFC 3339 time (``2025-01-02T03:04:05Z``, fractions and offsets allowed) → epoch seconds."""
    if not text:
        return None
    try:
        stamp = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    return stamp.timestamp() if stamp.tzinfo is not None else None


def _trim(value: float) -> str:
    return f"{value:.3f}".rstrip("0").rstrip(".")


def _count(text: str | None) -> float | None:
    value = _number(text)
    return value if value is not None and value >= 0 and math.isfinite(value) else None


def _number(text: str | None) -> float | None:
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None
