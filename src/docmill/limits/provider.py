"""ProviderLimits: a provider's two budgets, requests and tokens per window, used together.

Before a call: ``acquire(estimate)`` takes one request and the estimated tokens. After it:
``settle(estimate, actual)`` refunds the difference (or charges it), and ``observe(headers)`` reads
the reply's rate-limit headers (``docmill.limits.headers``): an announced limit is learned by the
budget (and re-learned when it changes), the remaining counts pull our levels down to what the
provider sees. On a 429, ``pause_for(retry_after)`` stops every caller on both budgets. A failed
request keeps its charge: providers count failed requests too.

A budget that is not configured starts unlimited and learns the provider's limit from the first
reply that announces it (the client sends one probe request first, ``docmill.limits.adaptive``).
A configured budget learns too, but stays a ceiling: a learned limit only ever lowers it.

A provider that announces nothing still says no: ``answered(sent, throttled=...)`` sees every
reply, and on a 429 the requests this process had accepted over the last window are taken as the
request limit (the window was full, and the provider counts what it accepted), so calls are paced
from then on instead of probing the limit again and again (each rejected probe would count against
the window too). That inferred limit grows by ``GROWTH`` per quiet window, in case it was low, and
is inferred again at the next 429.
"""

from __future__ import annotations

import collections
import math
import threading
from dataclasses import dataclass

from docmill.clock import SYSTEM_CLOCK, Clock
from docmill.limits.base import LimiterStats, NullLimiter, RateLimiter
from docmill.limits.headers import RateLimitHeaders
from docmill.limits.shared import SharedTokenBucket
from docmill.limits.token_bucket import BucketLimiter, TokenBucket

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

GROWTH = 1.1  # per window without a 429, an inferred (never announced) request limit grows this much


Ticket = tuple[float | None, float | None]  # the epochs the tokens and the request were granted in


def _take(budget: RateLimiter, cost: float) -> float | None:
    if isinstance(budget, BucketLimiter):
        return budget.take(cost)
    budget.acquire(cost)
    return None


async def _atake(budget: RateLimiter, cost: float) -> float | None:
    if isinstance(budget, BucketLimiter):
        return await budget.atake(cost)
    await budget.aacquire(cost)
    return None


def token_budget(tpm: float) -> float:
    """The tokens per window we pace by, ``TOKEN_RESERVE`` below the provider's limit."""
    return tpm - math.ceil(tpm * TOKEN_RESERVE)


@dataclass(frozen=True, slots=True)
class ProviderLimitStats:
    """Snapshots of both budgets."""

    requests: LimiterStats
    tokens: LimiterStats


class ProviderLimits:
    """Requests-per-window and tokens-per-window limiters acting as one.

    ``learn=True`` (the default): a budget not given is an unlimited ``TokenBucket`` that learns the
    provider's announced limit; ``False`` leaves it a NullLimiter (never paced).
    """

    def __init__(
        self,
        requests: RateLimiter | None = None,
        tokens: RateLimiter | None = None,
        *,
        learn: bool = True,
        per: float = 60.0,
        margin: float = DEFAULT_MARGIN,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        def default() -> RateLimiter:
            return TokenBucket.unlimited(per, margin=margin, clock=clock) if learn else NullLimiter()

        self.requests: RateLimiter = requests or default()
        self.tokens: RateLimiter = tokens or default()
        self.learn = learn
        self.per = per
        self._announced: dict[str, float] = {}  # the limits this process last passed on, per budget
        self._known = False
        self._told = False  # a reply announced a request limit: nothing to infer
        self._accepted: collections.deque[float] = collections.deque()  # send times, last window
        self._inferred = 0.0  # the request limit inferred from 429s (0: none)
        self._inferred_at = 0.0
        self._lock = threading.Lock()

    @classmethod
    def from_rates(
        cls,
        rpm: float | None,
        tpm: float | None,
        *,
        per: float = 60.0,
        margin: float = DEFAULT_MARGIN,
        shared: bool = True,
        learn: bool = True,
        clock: Clock = SYSTEM_CLOCK,
    ) -> ProviderLimits:
        """Buckets that keep under ``rpm`` requests and ``tpm`` tokens in any ``per`` seconds.

        They stay under even when calls reach the provider up to ``margin`` seconds later than
        others. ``shared=True`` makes one budget for every process holding a copy
        (SharedTokenBucket); ``False`` keeps it to this process's threads and event loops. With
        ``learn``, a budget given as None is learned from the provider's headers (in the shared
        state, so every process paces by what one of them learned); without, it is unlimited.
        """
        kind = SharedTokenBucket if shared else TokenBucket

        def bucket(limit: float | None) -> RateLimiter | None:
            if limit:
                return kind.within(limit, per, margin=margin, clock=clock)
            return kind.unlimited(per, margin=margin, clock=clock) if learn else None

        return cls(bucket(rpm), bucket(tpm and token_budget(tpm)), learn=learn, per=per, clock=clock)

    def acquire(self, tokens: float) -> Ticket:
        """Block until one request carrying ``tokens`` (estimated) may be sent; return its ticket.

        Tokens first: the request's place in the requests budget is then taken when it is about to
        be sent, so a wait for tokens never bunches the requests that follow it.
        """
        return (_take(self.tokens, tokens), _take(self.requests, 1.0))

    async def aacquire(self, tokens: float) -> Ticket:
        return (await _atake(self.tokens, tokens), await _atake(self.requests, 1.0))

    def confirm(self, tokens: float, ticket: Ticket) -> None:
        """After ``acquire``, the caller waited elsewhere: if a pause began meanwhile, wait it out
        and queue again (``BucketLimiter.confirm``), instead of going at once into a full window."""
        for budget, cost, epoch in ((self.tokens, tokens, ticket[0]), (self.requests, 1.0, ticket[1])):
            if isinstance(budget, BucketLimiter) and epoch is not None:
                budget.confirm(cost, epoch)

    async def aconfirm(self, tokens: float, ticket: Ticket) -> None:
        for budget, cost, epoch in ((self.tokens, tokens, ticket[0]), (self.requests, 1.0, ticket[1])):
            if isinstance(budget, BucketLimiter) and epoch is not None:
                await budget.aconfirm(cost, epoch)

    def settle(self, estimate: float, actual: float) -> None:
        """Correct the token charge once the provider reported real usage."""
        if actual != estimate:
            self.tokens.refund(estimate - actual)

    def pause_for(self, seconds: float) -> None:
        """Stop every caller for ``seconds`` (a 429's Retry-After), and for at least ``per / 60``.

        The floor: Retry-After says when ONE request fits again, but the provider counted the
        rejected ones too, and large providers also count per second of their minute. Coming back
        after exactly Retry-After at the full pace, every next request lands in a window still
        full of rejections and is rejected (and counted) in turn; one quiet second drains it.
        """
        seconds = max(seconds, self.per / 60)
        self.requests.pause_for(seconds)
        self.tokens.pause_for(seconds)

    def observe(
        self,
        headers: RateLimitHeaders | None = None,
        *,
        requests_left: float | None = None,
        tokens_left: float | None = None,
    ) -> None:
        """Learn the limits a reply announced; re-synchronise with what it says is left."""
        if headers is not None:
            if self.learn:
                if headers.requests.limit is not None:
                    self._told = True
                self._learn("requests", self.requests, headers.requests.limit)
                tokens = headers.tokens.limit
                self._learn("tokens", self.tokens, None if tokens is None else token_budget(tokens))
            requests_left = headers.requests.remaining if requests_left is None else requests_left
            tokens_left = headers.tokens.remaining if tokens_left is None else tokens_left
        if requests_left is not None:
            self.requests.resync(requests_left)
        if tokens_left is not None:
            self.tokens.resync(tokens_left)

    def _learn(self, name: str, budget: RateLimiter, limit: float | None) -> None:
        if limit is None or not limit > 0 or self._announced.get(name) == limit:
            return
        if isinstance(budget, BucketLimiter):
            # Requests: a burst of one. Large providers also count per second of their minute, and
            # a burst of 1 % + the rate can put more than RPM/60 in one second; one at a time
            # never does (1 + rate x 1 s < RPM/60 + 1). Tokens keep the 1 % that refunds need.
            budget.learn(limit, burst=1.0 if name == "requests" else None)
            self._announced[name] = limit

    def answered(self, sent: float, *, throttled: bool, now: float) -> None:
        """A reply came for a request sent at ``sent``: infer the request limit from 429s if need be.

        Only while no reply announced a request limit (see the module docstring).
        """
        if self._told or not self.learn or not isinstance(self.requests, BucketLimiter):
            return
        with self._lock:
            accepted = self._accepted
            while accepted and accepted[0] <= now - self.per:
                accepted.popleft()
            if not throttled:
                accepted.append(sent)
                if self._inferred and now - self._inferred_at >= self.per:
                    self._infer(max(self._inferred + 1, self._inferred * GROWTH), now)
            elif len(accepted) >= 2 and (not self._inferred or len(accepted) < self._inferred):
                self._infer(float(len(accepted)), now)

    def _infer(self, limit: float, now: float) -> None:
        self._inferred, self._inferred_at = limit, now
        self._learn("requests", self.requests, limit)

    @property
    def known(self) -> bool:
        """Whether calls are paced by a limit, configured or learned (by any process sharing it)."""
        if not self._known:
            budgets = (self.requests, self.tokens)
            self._known = any(isinstance(b, BucketLimiter) and b.known() for b in budgets)
        return self._known

    def statistics(self) -> ProviderLimitStats:
        return ProviderLimitStats(self.requests.statistics(), self.tokens.statistics())

    def __repr__(self) -> str:
        return f"ProviderLimits(requests={self.requests!r}, tokens={self.tokens!r})"

    def __getstate__(self) -> dict[str, object]:
        state = self.__dict__.copy()
        state.update(_lock=None, _accepted=collections.deque())
        return state

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()
