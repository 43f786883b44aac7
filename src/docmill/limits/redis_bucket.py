"""RedisTokenBucket: one rate-limit budget shared by every process on every host of a run.

The same bucket as ``token_bucket.BucketState`` (reserve into debt, refunds, resync, a global Retry-
After pause, the limit learned from the provider), kept in a Redis hash and changed by one Lua
script, so each operation is a single atomic round trip. By default "now" is Redis's own ``TIME``:
every host then agrees on the clock without synchronising theirs. Pass ``redis_time=False`` to take
"now" from the injected clock instead (tests drive it with ``docmill.testing.FakeClock``); waiting
always goes through the injected clock.

The handle is a URL and a key: it pickles to any worker, which connects on first use.
"""

from __future__ import annotations

import math
import os
from typing import Any, Self

from docmill.clock import SYSTEM_CLOCK, Clock
from docmill.errors import ConfigError, MissingDependencyError, UpstreamError
from docmill.limits.base import LimiterStats
from docmill.limits.provider import DEFAULT_MARGIN, ProviderLimits, token_budget
from docmill.limits.token_bucket import BucketLimiter, BucketState, learned_pace, within_burst

_SCRIPT = """
local key, op = KEYS[1], ARGV[1]
local crate, ccap = tonumber(ARGV[2]), tonumber(ARGV[3])
local arg, arg2 = tonumber(ARGV[4]), tonumber(ARGV[7])
local now
if ARGV[5] == '' then
  local t = redis.call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1000000
else
  now = tonumber(ARGV[5])
end
local f = {'level', 'stamp', 'paused_until', 'acquired', 'refunded', 'waits', 'waited', 'pauses',
           'learned_rate', 'learned_capacity'}
local raw = redis.call('HMGET', key, unpack(f))
local s = {}
for i, name in ipairs(f) do s[name] = tonumber(raw[i]) or 0 end
if raw[1] == false then s.level = ccap; s.stamp = now end
-- rate and capacity in force: the configured ones (0 = none) lowered by the learned ones (0 = none)
local function effective()
  local r, c = crate, ccap
  if s.learned_rate > 0 and (r == 0 or s.learned_rate < r) then r = s.learned_rate end
  if s.learned_capacity > 0 and (c == 0 or s.learned_capacity < c) then c = s.learned_capacity end
  return r, c
end
local rate, capacity = effective()
if now > s.stamp then
  if rate > 0 then s.level = math.min(capacity, s.level + (now - s.stamp) * rate) end
  s.stamp = now
end
local function reserve(cost, again)
  local wait = math.max(0, s.stamp - now)
  if rate > 0 then
    s.level = s.level - cost
    if s.level < 0 then wait = wait + (-s.level) / rate end
  end
  if not again then s.acquired = s.acquired + cost end
  if wait > 0 then s.waits = s.waits + 1; s.waited = s.waited + wait end
  return wait
end
local out = 0
if op == 'reserve' then
  out = reserve(arg, false)
elseif op == 'recheck' then
  if s.pauses ~= arg2 then out = reserve(arg, true) end
elseif op == 'refund' then
  if rate > 0 then s.level = math.min(capacity, s.level + arg) end
  s.refunded = s.refunded + arg
elseif op == 'pause' then
  s.paused_until = math.max(s.paused_until, now + math.max(0, arg))
  s.stamp = math.max(s.stamp, s.paused_until)
  s.level = 1
  if rate > 0 then s.level = math.min(capacity, 1) end
  s.pauses = s.pauses + 1
elseif op == 'resync' then
  if rate > 0 then s.level = math.min(s.level, arg) end
elseif op == 'learn' then
  local before = rate
  s.learned_rate = arg
  s.learned_capacity = arg2
  rate, capacity = effective()
  if before == 0 and rate > 0 then
    s.level = capacity
    s.stamp = math.max(s.stamp, now)
  elseif rate > 0 then
    s.level = math.min(s.level, capacity)
  end
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
_PAUSES, _LEARNED_RATE = 8, 9  # positions in the script's reply: out, then the fields in order


def _finite(value: float) -> str:
    """A rate or capacity for the script: 0 stands for "no limit" (Lua 5.1 reads no "inf")."""
    return repr(value) if math.isfinite(value) else "0"


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

    def _call(self, op: str, arg: float = 0.0, arg2: float = 0.0) -> list[float]:
        now = "" if self.redis_time else repr(self.clock.monotonic())
        rate, capacity = (_finite(v) for v in (self.rate, self.capacity))
        args = (op, rate, capacity, repr(float(arg)), now, _IDLE_TTL_MS, repr(float(arg2)))
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

    def _reserve(self, cost: float) -> tuple[float, float]:
        reply = self._call("reserve", cost)
        return reply[0], reply[_PAUSES]

    def _recheck(self, cost: float, epoch: float) -> tuple[float, float]:
        reply = self._call("recheck", cost, epoch)
        return reply[0], reply[_PAUSES]

    def refund(self, cost: float) -> None:
        self._call("refund", cost)

    def pause_for(self, seconds: float) -> None:
        self._call("pause", seconds)

    def resync(self, remaining: float) -> None:
        self._call("resync", remaining)

    def learn(self, limit: float, *, burst: float | None = None) -> None:
        if limit > 0 and math.isfinite(limit):
            self._call("learn", *learned_pace(limit, self.per, burst))

    def known(self) -> bool:
        return math.isfinite(self.rate) or self._call("stats")[_LEARNED_RATE] > 0

    def statistics(self) -> LimiterStats:
        reply = self._call("stats")
        _, level, _, paused_until, acquired, refunded, waits, waited, pauses, learned, burst, now = reply
        state = BucketState(level, 0.0, learned_rate=learned, learned_capacity=burst)
        rate, capacity = state.effective(self.rate, self.capacity)
        return LimiterStats(
            rate=rate,
            capacity=capacity,
            level=level if math.isfinite(rate) else math.inf,
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
    """RPM and TPM budgets shared through Redis by every worker of every host naming ``name``.

    A budget not configured is learned from the provider's headers; what one worker learns is in
    the shared hash, so every other worker paces by it from its next request.
    """

    def bucket(limit: float | None, kind: str) -> RedisTokenBucket:
        key = f"docmill:limit:{name}:{kind}"
        if not limit:
            return RedisTokenBucket.unlimited(per, margin=margin, url=url, key=key)
        return RedisTokenBucket.within(limit, per, margin=margin, url=url, key=key)

    return ProviderLimits(bucket(rpm, "requests"), bucket(tpm and token_budget(tpm), "tokens"))
