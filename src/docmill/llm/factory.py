"""The LLM classifier's parts built from the typed ``llm:`` options: rate limits (this process,
every process of the run, or every host through Redis), price, response cache, retry policy and
adaptive concurrency. Shared by ``--classifier llm``, the tasks classifier, user steps and batch runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from docmill.limits.adaptive import AIMD
from docmill.limits.provider import ProviderLimits
from docmill.llm.cache import ResponseCache
from docmill.llm.pricing import price_of
from docmill.llm.settings import LLMOptions
from docmill.retry import RetryPolicy
from docmill.settings import from_mapping

CONTEXT = ("labels", "journal")  # what the factory reads besides the llm options


def options_of(settings: Mapping[str, Any]) -> LLMOptions:
    """The typed ``llm`` options in ``settings`` (the context keys left out)."""
    return from_mapping(LLMOptions, {k: v for k, v in settings.items() if k not in CONTEXT}, "llm")


def wiring(options: LLMOptions, settings: Mapping[str, Any], *, model: str | None = None) -> dict[str, Any]:
    """The classifier's keyword arguments besides labels and connection: limits, price (the
    configured one, else the built-in price of ``model``, else of ``options.model``), cache, …"""
    price = price_of(options.price_input_per_1m, options.price_output_per_1m, model or options.model)
    return {
        "limits": limits_of(options),
        "price": price,
        "cache": cache_of(options.cache, settings.get("journal")),
        "retry": RetryPolicy(max_attempts=options.max_attempts, initial=0.5, maximum=30.0),
        "invalid_retries": options.invalid_retries,
        "concurrency": AIMD(limit=options.concurrency, maximum=options.max_concurrency),
        "outage_seconds": options.outage_seconds,
    }


def limits_of(options: LLMOptions) -> ProviderLimits:
    """``limiter:`` ``shared`` (every process of this run), ``local`` (this process), or a
    ``redis://`` URL: one budget for every host whose runs name the same provider and model."""
    per, margin, kind = options.rate_window, options.rate_margin, options.limiter
    if kind in ("shared", "local"):
        shared = kind == "shared"
        return ProviderLimits.from_rates(options.rpm, options.tpm, per=per, margin=margin, shared=shared)
    from docmill.limits.redis_bucket import redis_provider_limits

    name = options.limiter_name or f"{options.base_url}|{options.model}"
    return redis_provider_limits(kind, name, rpm=options.rpm, tpm=options.tpm, per=per, margin=margin)


def cache_of(value: str | bool | None, journal: Any) -> ResponseCache | None:
    """``cache:`` a path, ``false``/``none`` for no cache; ``auto``: ``docmill-cache.db`` beside a
    SQLite journal (none beside a PostgreSQL one)."""
    if value in (None, False, True, "none", "off", "false"):
        return None if value is not True else cache_of("auto", journal)
    if value == "auto":
        if not journal or "://" in str(journal):
            return None
        return ResponseCache(Path(str(journal)).parent / "docmill-cache.db")
    return ResponseCache(str(value))
