"""The ``llm:`` section: every setting the LLM classifier reads, as one typed, validated value.

The same keys are accepted in ``classifier: {spec: llm, …}``, which overrides ``llm:`` key by key.
``from_mapping(LLMOptions, data, "llm")`` refuses unknown keys with the nearest valid one
(``llm.rmp: unknown setting; did you mean rpm?``) and invalid values with the dotted key::

    base_url: http://127.0.0.1:8000/v1   # default: the provider's public endpoint
    model: gpt-4o-mini                   # or --classifier llm:MODEL
    provider: openai                     # openai | ollama | anthropic
    api_key_env: OPENAI_API_KEY          # the variable holding the key (never the key itself)
    timeout: 60                          # seconds per request at most (the ceiling of the next two)
    timeout_multiplier: 3                # a call is abandoned and retried past this × the recent p99
    timeout_floor: 5                     # ... but never sooner than this many seconds
    hedge: 0.95                          # at the tail, a call out past this quantile gets a twin (0: never)
    response_format: json_schema         # json_schema | json_object | none
    max_tokens_in: 2000                  # the document is cut to this many prompt tokens
    max_tokens_out: 100
    rpm: 500                             # requests per minute allowed (none = learned from replies)
    tpm: 200000                          # tokens per minute allowed
    rate_window: 60                      # seconds the rpm/tpm budgets refill over
    rate_margin: 0.5                     # seconds of clock skew the budgets absorb
    limiter: shared                      # shared | local | redis://host:6379/0
    limiter_name: null                   # redis: the budget's name (default base_url|model)
    price_input_per_1m: 0.15             # USD per million prompt tokens (unset: the built-in price)
    price_output_per_1m: 0.60            # USD per million completion tokens
    max_cost: 5.0                        # stop cleanly once this much is spent
    cache: auto                          # auto (beside the journal) | a path | false
    max_attempts: 8                      # attempts per document on 429s, 5xx and timeouts
    outage_seconds: 30                   # stop the run once calls fail the same way this long
    invalid_retries: 2                   # extra asks after a reply naming no allowed label
    concurrency: 8                       # requests in flight at start (adapts, AIMD)
    max_concurrency: 256
    mode: online                         # online | batch (the provider's Batch API: --batch)
    batch_retry: online                  # a batch line that failed: retried online, or in a batch
    batch_max_requests: 50000            # request lines per batch file at most
    batch_max_bytes: 209715200           # bytes per batch file at most (200 MB)
    batch_poll_seconds: 60               # seconds between two looks at the batches submitted
    batch_price_factor: 0.5              # batch prices as a share of the online ones
    tasks_per_request: all               # a labels file's LLM tasks: all in one request, or one each
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from docmill.settings import check

DEFAULT_MARGIN = 0.5  # the same default as docmill.limits.provider (which imports more)
_LIMITERS = ("shared", "local")
_REDIS = ("redis://", "rediss://", "unix://")


@dataclass(frozen=True, slots=True, kw_only=True)
class LLMOptions:
    """How to reach the model, how fast, at what price; see the module docstring for each key."""

    base_url: str | None = None
    model: str | None = None
    provider: Literal["openai", "ollama", "anthropic"] = "openai"
    api_key_env: str | None = None
    timeout: float = 60.0
    timeout_multiplier: float = 3.0
    timeout_floor: float = 5.0
    hedge: float = 0.95
    response_format: Literal["json_schema", "json_object", "none"] = "json_schema"
    max_tokens_in: int = 2000
    max_tokens_out: int = 100
    rpm: float | None = None
    tpm: float | None = None
    rate_window: float = 60.0
    rate_margin: float = DEFAULT_MARGIN
    limiter: str = "shared"
    limiter_name: str | None = None
    price_input_per_1m: float | None = None  # both unset: the model's built-in price (llm.pricing)
    price_output_per_1m: float | None = None
    max_cost: float | None = None
    cache: str | bool | None = "auto"
    max_attempts: int = 8
    outage_seconds: float = 30.0
    invalid_retries: int = 2
    concurrency: float = 8.0
    max_concurrency: int = 256
    mode: Literal["online", "batch"] = "online"
    batch_retry: Literal["online", "batch"] = "online"
    batch_max_requests: int = 50_000
    batch_max_bytes: int = 200 * 1024 * 1024
    batch_poll_seconds: float = 60.0
    batch_price_factor: float = 0.5
    tasks_per_request: Literal["all", "one"] = "all"

    def __post_init__(self) -> None:
        self._check_numbers()
        self._check_names()

    def _check_numbers(self) -> None:
        for name in ("timeout", "timeout_floor", "rpm", "tpm", "rate_window", "outage_seconds"):
            _positive(name, getattr(self, name))
        _positive("batch_poll_seconds", self.batch_poll_seconds)
        check(0 <= self.hedge < 1, "hedge", self.hedge, "a quantile within [0, 1); 0 never hedges")
        for name in ("max_tokens_in", "max_tokens_out", "max_attempts", "concurrency", "timeout_multiplier"):
            check(getattr(self, name) >= 1, name, getattr(self, name), "must be >= 1")
        check(self.batch_max_requests >= 1, "batch_max_requests", self.batch_max_requests, "must be >= 1")
        check(self.batch_max_bytes >= 1024, "batch_max_bytes", self.batch_max_bytes, "must be >= 1024")
        factor = self.batch_price_factor
        check(0 <= factor <= 1, "batch_price_factor", factor, "must be within [0, 1]")
        for name in ("rate_margin", "invalid_retries"):
            check(getattr(self, name) >= 0, name, getattr(self, name), "must be >= 0")
        for name in ("price_input_per_1m", "price_output_per_1m"):
            value = getattr(self, name)
            check(value is None or value >= 0, name, value, "must be >= 0")
        check(self.max_cost is None or self.max_cost >= 0, "max_cost", self.max_cost, "must be >= 0")
        enough = self.max_concurrency >= self.concurrency
        check(enough, "max_concurrency", self.max_concurrency, "must be >= concurrency")

    def _check_names(self) -> None:
        limiter_ok = self.limiter in _LIMITERS or self.limiter.startswith(_REDIS)
        check(limiter_ok, "limiter", self.limiter, "shared, local or a redis:// URL")
        for name in ("base_url", "model", "api_key_env", "limiter_name"):
            value = getattr(self, name)
            check(value is None or bool(value.strip()), name, value, "must not be empty")


def _positive(name: str, value: float | None) -> None:
    check(value is None or value > 0, name, value, "must be > 0")


__all__ = ["LLMOptions"]
