"""ProviderLimits: a provider's two budgets, requests and tokens per window, used together.

Before a call: ``acquire(estimate)`` takes one request and the estimated tokens. After it:
``settle(estimate, actual)`` refunds the difference (or charges it), and ``observe(...)`` lets the
provider's ``x-ratelimit-remaining-*`` headers pull our levels down to what it sees. On a 429,
``pause_for(retry_after)`` stops every caller on both budgets. A failed request keeps its charge:
providers count failed requests too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from docmill.clock import SYSTEM_CLOCK, Clock
from docmill.limits.base import LimiterStats, NullLimiter, RateLimiter
from docmill.limits.shared import SharedTokenBucket
from docmill.limits.token_bucket import TokenBucket

# Share of the token limit kept in reserve. A refund lands about one latency after its call was
# admitted; for calls admitted just before the provider's window began, the provider has already
# forgotten the charge we are only now correcting, so our view is briefly too generous by up to
# one latency's worth of over-estimates. 0.5 % covers it at 600 RPM / 200,000 TPM
# (benchmarks/bench_llm.py --max-tokens-in 80, token-bound: one 429 in 2,000 calls without a
# reserve; none with it, at 97.7 % of the token ceiling).
TOKEN_RESERVE = 0.005

# Seconds of variation in the delay between our admitting a call and the provider counting its
# arrival (thread and event-loop wake-ups, connection set-up, the network). On a 2-core machine at
# load 9-12, admissions of 1-second-window tests reached the emulator 2 ms to 560 ms later
# (tests/integration/test_llm_limits.py); without room for that, a few calls per run bunched into
# one window and drew 429s. Pacing over ``window + margin`` costs margin / (window + margin) of the
# ceiling: 0.8 % of a 60 s window. Set ``rate_margin`` higher on a loaded host or a slow network.
DEFAULT_MARGIN = 0.5


@dataclass(frozen=True, slots=True)
class ProviderLimitStats:
    """Snapshots of both budgets."""

    requests: LimiterStats
    tokens: LimiterStats


class ProviderLimits:
    """Requests-per-window and tokens-per-window limiters acting as one."""

    def __init__(self, requests: RateLimiter | None = None, tokens: RateLimiter | None = None) -> None:
        self.requests: RateLimiter = requests or NullLimiter()
        self.tokens: RateLimiter = tokens or NullLimiter()

    @classmethod
    def from_rates(
        cls,
        rpm: float | None,
        tpm: float | None,
        *,
        per: float = 60.0,
        margin: float = DEFAULT_MARGIN,
        shared: bool = True,
        clock: Clock = SYSTEM_CLOCK,
    ) -> ProviderLimits:
        """Buckets that keep under ``rpm`` requests and ``tpm`` tokens in any ``per`` seconds.

        They stay under even when calls reach the provider up to ``margin`` seconds later than
        others. ``shared=True`` makes one budget for every process holding a copy
        (SharedTokenBucket); ``False`` keeps it to this process's threads and event loops.
        """
        kind = SharedTokenBucket if shared else TokenBucket
        requests = kind.within(rpm, per, margin=margin, clock=clock) if rpm else None
        usable = tpm - math.ceil(tpm * TOKEN_RESERVE) if tpm else 0
        tokens = kind.within(usable, per, margin=margin, clock=clock) if tpm else None
        return cls(requests, tokens)

    def acquire(self, tokens: float) -> None:
        """Block until one request carrying ``tokens`` (estimated) may be sent."""
        self.requests.acquire(1.0)
        self.tokens.acquire(tokens)

    async def aacquire(self, tokens: float) -> None:
        await self.requests.aacquire(1.0)
        await self.tokens.aacquire(tokens)

    def settle(self, estimate: float, actual: float) -> None:
        """Correct the token charge once the provider reported real usage."""
        if actual != estimate:
            self.tokens.refund(estimate - actual)

    def pause_for(self, seconds: float) -> None:
        self.requests.pause_for(seconds)
        self.tokens.pause_for(seconds)

    def observe(self, *, requests_left: float | None, tokens_left: float | None) -> None:
        """Re-synchronise with the provider's view (``x-ratelimit-remaining-*``)."""
        if requests_left is not None:
            self.requests.resync(requests_left)
        if tokens_left is not None:
            self.tokens.resync(tokens_left)

    def statistics(self) -> ProviderLimitStats:
        return ProviderLimitStats(self.requests.statistics(), self.tokens.statistics())

    def __repr__(self) -> str:
        return f"ProviderLimits(requests={self.requests!r}, tokens={self.tokens!r})"
