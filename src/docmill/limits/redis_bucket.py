"""RedisTokenBucket: one rate-limit budget shared by every process on every host of a run.

The same bucket as ``token_bucket.BucketState`` (reserve into debt, refunds, resync, a global
Retry-After pause), kept in a Redis hash and changed by one Lua script, so each operation is a
single atomic round trip. By default "now" is Redis's own ``TIME``: every host then agrees on the
clock without synchronising theirs. Pass ``redis_time=False`` to take "now" from the injected
clock instead (tests drive it with ``docmill.testing.FakeClock``); waiting always goes through the
injected clock.

The handle is a URL and a key: it pickles to any worker, which connects on first use.
"""

from __future__ import annotations

import os
from typing import Any, Self

from docmill.clock import SYSTEM_CLOCK, Clock
from docmill.errors import ConfigError, MissingDependencyError, UpstreamError
from docmill.limits.base import LimiterStats
from docmill.limits.provider import DEFAULT_MARGIN, ProviderLimits
from docmill.limits.token_bucket import BucketLimiter, within_burst

_SCRIPT = """
local key, op = KEYS[1], ARGV[1]
local rate, capacity, arg = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local now
if ARGV[5] == '' then
  local t = redis.call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1000000
else
  now = tonumber(ARGV[5])
end
local f = {'level', 'stamp', 'paused_until', 'acquired', 'refunded', 'waits', 'waited', 'pauses'}
local raw = redis.call('HMGET', key, unpack(f))
local s = {}
for i, name in ipairs(f) do s[name] = tonumber(raw[i]) or 0 end
if raw[1] == false then s.level = capacity; s.stamp = now end
if now > s.stamp then
  s.level = math.min(capacity, s.level + (now - s.stamp) * rate)
  s.stamp = now
end
local out = 0
if op == 'reserve' then
  s.level = s.level - arg
  s.acquired = s.acquired + arg
  local debt = 0
  if s.level < 0 then debt = -s.level / rate end
  out = math.max(debt, s.paused_until - now)
  if out > 0 then s.waits = s.waits + 1; s.waited = s.waited + out end
elseif op == 'pause_left' then
  out = s.paused_until - now
elseif op == 'refund' then
  s.level = math.min(capacity, s.level + arg)
  s.refunded = s.refunded + arg
elseif op == 'pause' then
  s.paused_until = math.max(s.paused_until, now + math.max(0, arg))
  s.pauses = s.pauses + 1
elseif op == 'resync' then
  s.level = math.min(s.level, arg)
end
local flat, reply = {}, {string.format('%.17g', out)}
for _, name in ipairs(f) do
  local v = string.format('%.17g', s[name])
  table.insert(flat, name); table.insert(flat, v); table.insert(reply, v)
end
redis.call('HSET', key, unpack(flat))
redis.call('PEXPIRE', key, tonumber(ARGV[6]))
table.insert(reply, string.format('%.17g', now))
return reply
"""

_IDLE_TTL_MS = 24 * 3600 * 1000  # a bucket nobody touched for a day is forgotten


class RedisTokenBucket(BucketLimiter):
    """A token bucket whose state lives in Redis under ``key`` (see the module docstring)."""

    def __init__(
        self,
        rate: float,
        per: float = 60.0,
        *,
        burst: float | None = None,
        url: str = "redis://127.0.0.1:6379/0",
        key: str = "docmill:limit:default",
        redis_time: bool = True,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        super().__init__(rate, per, burst=burst, clock=clock)
        if not key:
            raise ConfigError("a Redis limiter needs a non-empty key")
        self.url = url
        self.key = key
        self.redis_time = redis_time
        self._client: Any = None
        self._script: Any = None
        self._pid = 0

    @classmethod
    def within(
        cls,
        limit: float,
        per: float = 60.0,
        *,
        margin: float = 0.0,
        clock: Clock = SYSTEM_CLOCK,
        **options: Any,
    ) -> Self:
        """A bucket that never admits more than ``limit - 1`` units in any ``per + margin`` seconds."""
        burst = within_burst(limit, margin)
        return cls(limit - 1 - burst, per + margin, burst=burst, clock=clock, **options)

    def _apply(self, op: Any) -> Any:  # pragma: no cover - every operation runs in Lua instead
        raise NotImplementedError("RedisTokenBucket runs its operations in Redis")

    def _call(self, op: str, arg: float = 0.0) -> list[float]:
        now = "" if self.redis_time else repr(self.clock.monotonic())
        args = (op, repr(self.rate), repr(self.capacity), repr(float(arg)), now, _IDLE_TTL_MS)
        try:
            reply = self._connected()(keys=[self.key], args=args)
        except Exception as exc:  # redis.RedisError and socket errors alike
            raise UpstreamError(f"rate limiter at {self.url} unavailable: {exc}") from exc
        return [float(v) for v in reply]

    def _connected(self) -> Any:
        if self._script is None or self._pid != os.getpid():  # a forked child needs its own socket
            try:
                import redis
            except ImportError as exc:  # pragma: no cover - extra not installed
                raise MissingDependencyError("redis", "celery") from exc
            self._client = redis.Redis.from_url(self.url, socket_timeout=10, socket_connect_timeout=5)
            self._script = self._client.register_script(_SCRIPT)
            self._pid = os.getpid()
        return self._script

    def _reserve(self, cost: float) -> float:
        return self._call("reserve", cost)[0]

    def _pause_left(self) -> float:
        return self._call("pause_left")[0]

    def refund(self, cost: float) -> None:
        self._call("refund", cost)

    def pause_for(self, seconds: float) -> None:
        self._call("pause", seconds)

    def resync(self, remaining: float) -> None:
        self._call("resync", remaining)

    def statistics(self) -> LimiterStats:
        _, level, _, paused_until, acquired, refunded, waits, waited, pauses, now = self._call("stats")
        return LimiterStats(
            rate=self.rate,
            capacity=self.capacity,
            level=level,
            acquired=acquired,
            refunded=refunded,
            waits=int(waits),
            waited=waited,
            pauses=int(pauses),
            paused_for=max(0.0, paused_until - now),
        )

    def reset(self) -> None:
        """Forget the shared state (the next operation starts from a full bucket)."""
        self._connected()
        self._client.delete(self.key)

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_client": None, "_script": None, "_pid": 0}

    def __repr__(self) -> str:
        return f"RedisTokenBucket(rate={self.rate:g}/s, capacity={self.capacity:g}, key={self.key!r})"


def redis_provider_limits(
    url: str,
    name: str,
    *,
    rpm: float | None,
    tpm: float | None,
    per: float = 60.0,
    margin: float = DEFAULT_MARGIN,
) -> ProviderLimits:
    """RPM and TPM budgets shared through Redis by every worker of every host naming ``name``."""

    def bucket(limit: float, kind: str) -> RedisTokenBucket:
        key = f"docmill:limit:{name}:{kind}"
        return RedisTokenBucket.within(limit, per, margin=margin, url=url, key=key)

    requests = bucket(rpm, "requests") if rpm else None
    tokens = bucket(tpm, "tokens") if tpm else None
    return ProviderLimits(requests, tokens)
