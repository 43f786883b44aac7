"""Rate limits: token buckets (per process or shared by processes), provider budgets, AIMD."""

from __future__ import annotations

from docmill.limits.adaptive import AIMD, ConcurrencyGate
from docmill.limits.base import LimiterStats, NullLimiter, RateLimiter
from docmill.limits.provider import ProviderLimits, ProviderLimitStats
from docmill.limits.shared import SharedTokenBucket
from docmill.limits.token_bucket import BucketLimiter, TokenBucket

__all__ = [
    "AIMD",
    "BucketLimiter",
    "ConcurrencyGate",
    "LimiterStats",
    "NullLimiter",
    "ProviderLimitStats",
    "ProviderLimits",
    "RateLimiter",
    "SharedTokenBucket",
    "TokenBucket",
]
