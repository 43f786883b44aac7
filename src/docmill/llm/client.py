"""LLMClient: one chat call to a provider, paced by the shared limits, errors mapped in one place.

Layers of one call, outermost first (sync ``complete`` and async ``acomplete`` are thin drivers
around the same ``_prepare`` and ``_finish``)::

    ConcurrencyGate.hold → ProviderLimits.acquire(estimate) → Slot.send → httpx send (no retries
    of its own) within the tail-aware timeout (``LatencyTracker``: multiplier × the recent p99, the
    configured timeout as ceiling; async calls in flight are re-timed as replies come in; at the
    tail of a run, ``hedger`` sends a twin of an awaited call outstanding past p95, ``docmill.llm.hedge``)
    → _finish: 429 → pause every caller + RateLimitedError(retry_after); 5xx, timeouts, dropped
      connections, garbled bodies → UpstreamError (refused connections, DNS failures →
      UnreachableError); 401/403 → AuthRefusedError; other 4xx → PermanentError; 200 → settle the
      token estimate with the real usage. Every reply's rate-limit headers (OpenAI or Anthropic,
      ``docmill.limits.headers``) teach the limits and what is left; with no limits known yet the
      gate starts with one probe request, and a 429 with none announced teaches the pace.

Retrying is the caller's business (``LLMClassifier`` with a ``RetryPolicy``). The API key lives
only in this object's memory and in the header the provider reads it from (``Authorization``;
Anthropic's ``x-api-key``); it is never pickled (clients are
built per worker in ``setup()``) and is scrubbed from every error message.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import json
import weakref
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from docmill.clock import SYSTEM_CLOCK, Clock
from docmill.errors import AuthRefusedError, PermanentError, RateLimitedError, UnreachableError, UpstreamError
from docmill.limits.adaptive import ConcurrencyGate
from docmill.limits.headers import parse_duration as parse_duration  # re-exported: part of this API
from docmill.limits.headers import parse_time, read_headers
from docmill.limits.provider import ProviderLimits
from docmill.llm.hedge import DEFAULT_QUANTILE, Hedger, Sent
from docmill.llm.latency import LatencyTracker
from docmill.llm.prompt import Message, count_prompt_tokens
from docmill.llm.providers import Completion, Provider, get_provider
from docmill.llm.replies import error_detail, scrub

DEFAULT_RETRY_AFTER = 1.0  # seconds to pause on a 429 that does not say how long


@dataclass(frozen=True, slots=True)
class LLMReply:
    """One successful call: the completion and what it took."""

    text: str
    tokens_in: int
    tokens_out: int
    finish_reason: str | None
    latency: float
    concurrency: int


class LLMClient:
    """Chat calls to one provider endpoint. Thread-safe; use ``acomplete`` from one event loop."""

    def __init__(
        self,
        base_url: str,
        *,
        provider: str | Provider = "openai",
        api_key: str | None = None,
        limits: ProviderLimits | None = None,
        gate: ConcurrencyGate | None = None,
        timeout: float = 60.0,
        transport: httpx.BaseTransport | httpx.AsyncBaseTransport | None = None,
        clock: Clock = SYSTEM_CLOCK,
        latency: LatencyTracker | None = None,
        hedge: float = DEFAULT_QUANTILE,
    ) -> None:
        self.provider = get_provider(provider) if isinstance(provider, str) else provider
        self.url = _url(self.provider, base_url)
        self.limits = limits or ProviderLimits()
        self.gate = gate or ConcurrencyGate(clock=clock)
        if not self.limits.known:  # nothing configured nor learned yet: one probe request first
            self.gate.probe()
        self.clock = clock
        self.latency = latency or LatencyTracker(ceiling=timeout, clock=clock)
        self.hedger = Hedger(self.latency, self.limits, quantile=hedge, clock=clock)
        self._in_flight: dict[asyncio.Timeout, tuple[asyncio.AbstractEventLoop, float]] = {}
        self._secret = api_key or None
        headers = _headers(self.provider, api_key)
        sync = transport if isinstance(transport, httpx.BaseTransport) else None
        self._http = httpx.Client(headers=headers, timeout=timeout, transport=sync)
        self._pools: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient] = (
            weakref.WeakKeyDictionary()
        )
        self._async_options: dict[str, Any] = {"headers": headers, "timeout": timeout}
        if isinstance(transport, httpx.AsyncBaseTransport):
            self._async_options["transport"] = transport

    def _prepare(
        self, messages: Sequence[Message], model: str, max_tokens: int, schema: Mapping[str, Any] | None
    ) -> tuple[httpx.Request, int]:
        body = self.provider.body(messages, model=model, max_tokens=max_tokens, schema=schema)
        estimate = count_prompt_tokens(messages) + max_tokens
        return self._http.build_request("POST", self.url, json=body), estimate

    def complete(
        self,
        messages: Sequence[Message],
        *,
        model: str,
        max_tokens: int = 100,
        schema: Mapping[str, Any] | None = None,
    ) -> LLMReply:
        """One call, blocking. Raises RateLimitedError, UpstreamError or PermanentError."""
        request, estimate = self._prepare(messages, model, max_tokens, schema)
        with self.gate.hold() as slot:
            ticket = self.limits.acquire(estimate)
            if slot.send():  # a 429 cut the limit: those already inside go one at a time...
                self.limits.confirm(estimate, ticket)  # ...and none before its pause ends
            started = self.clock.monotonic()
            request.extensions["timeout"] = httpx.Timeout(self.latency.timeout()).as_dict()
            with self._mapped():
                response = self._http.send(request)
                response.read()
        return self._finish(response, estimate, started, slot.limit)

    async def acomplete(
        self,
        messages: Sequence[Message],
        *,
        model: str,
        max_tokens: int = 100,
        schema: Mapping[str, Any] | None = None,
        sent: Sent | None = None,
    ) -> LLMReply:
        """One call, awaited; ``sent`` is told when it goes on the wire (``Hedger``)."""
        request, estimate = self._prepare(messages, model, max_tokens, schema)
        http = self._async_http()
        async with self.gate.ahold() as slot:
            ticket = await self.limits.aacquire(estimate)
            if await slot.asend():
                await self.limits.aconfirm(estimate, ticket)
            started = self.clock.monotonic()
            if sent is not None:
                sent(started)
            with self._mapped():
                async with self._deadline(started):
                    response = await http.send(request)
                    await response.aread()
        return self._finish(response, estimate, started, slot.limit)

    @contextlib.asynccontextmanager
    async def _deadline(self, started: float) -> AsyncIterator[None]:
        """Abandon the call past the tail-aware timeout; re-timed by ``_retime`` as replies arrive."""
        loop = asyncio.get_running_loop()
        async with asyncio.timeout_at(loop.time() + self.latency.remaining(started)) as cm:
            self._in_flight[cm] = (loop, started)
            try:
                yield
            finally:
                del self._in_flight[cm]

    def _retime(self) -> None:
        """The timeout changed: move the deadlines of the calls in flight with it, in every loop.

        A call that started before the first replies came in (timeout = the ceiling) is cut at the
        new, shorter limit instead of waiting out the ceiling. Each deadline is moved by its own
        event loop (a thread that waits on a hung call sees no reply of its own).
        """
        for cm, (owner, started) in list(self._in_flight.items()):
            with contextlib.suppress(RuntimeError):  # that loop is closed: its call is gone
                owner.call_soon_threadsafe(self._reschedule, cm, started)

    def _reschedule(self, cm: asyncio.Timeout, started: float) -> None:
        if cm in self._in_flight and not cm.expired():  # on its loop: it cannot end meanwhile
            cm.reschedule(asyncio.get_running_loop().time() + max(0.0, self.latency.remaining(started)))

    def _async_http(self) -> httpx.AsyncClient:
        """The async connection pool of the running event loop (pools cannot change loops).

        One per loop, kept while the loop lives: the threads strategy runs a loop per thread, and
        a pool rebuilt whenever another thread called last cost a new connection (and an SSL
        context) per call.
        """
        loop = asyncio.get_running_loop()
        pool = self._pools.get(loop)
        if pool is None:
            pool = self._pools[loop] = httpx.AsyncClient(**self._async_options)
        return pool

    @contextlib.contextmanager
    def _mapped(self) -> Iterator[None]:
        """Transport failures → UpstreamError (the one place httpx errors are translated)."""
        try:
            yield
        except (httpx.TimeoutException, TimeoutError) as exc:
            if self.latency.abandoned():
                self._retime()
            limit = f"{self.latency.timeout():.3g} s"
            raise UpstreamError(
                f"no reply from {self.url} within {limit}: abandoned ({type(exc).__name__})"
            ) from exc
        except httpx.ConnectError as exc:
            raise UnreachableError(self._scrub(f"nothing answers at {self.url}: {exc}")) from exc
        except httpx.HTTPError as exc:
            raise UpstreamError(
                self._scrub(f"request to {self.url} failed: {type(exc).__name__}: {exc}")
            ) from exc

    def _finish(self, response: httpx.Response, estimate: int, started: float, concurrency: int) -> LLMReply:
        latency = self.clock.monotonic() - started
        if self.latency.observe(latency):
            self._retime()
        self.limits.answered(started, throttled=response.status_code == 429, now=started + latency)
        if response.status_code != 200:
            self._observe(response)
            if response.status_code == 429:
                self._throttled(response, latency)
            raise self._status_error(response)
        completion = self._completion(response)
        self.limits.settle(estimate, completion.tokens_in + completion.tokens_out)
        self._observe(response)  # after settling: the provider's count already has the real usage
        self.gate.record(latency, throttled=False, informed=self.limits.known)
        return LLMReply(
            completion.text,
            completion.tokens_in,
            completion.tokens_out,
            completion.finish_reason,
            latency,
            concurrency,
        )

    def _observe(self, response: httpx.Response) -> None:
        """Learn the limits the reply announces (OpenAI or Anthropic headers) and what is left."""
        self.limits.observe(read_headers(response.headers, now=self.clock.wall()))

    def _throttled(self, response: httpx.Response, latency: float) -> None:
        wait = retry_after(response.headers, now=self.clock.wall())
        self.limits.pause_for(DEFAULT_RETRY_AFTER if wait is None else wait)
        self.gate.record(latency, throttled=True)
        raise RateLimitedError(f"rate limited by the provider: {self._detail(response)}", retry_after=wait)

    def _status_error(self, response: httpx.Response) -> Exception:
        status, detail = response.status_code, self._detail(response)
        if status >= 500 or status in (408, 409):
            return UpstreamError(f"provider error {status}: {detail}", status=status)
        if status in (401, 403):
            return AuthRefusedError(f"provider refused the request ({status}): {detail}")
        return PermanentError(f"provider refused the request ({status}): {detail}")

    def _completion(self, response: httpx.Response) -> Completion:
        try:
            payload = json.loads(response.content)
        except ValueError as exc:
            raise UpstreamError(f"malformed reply body ({len(response.content)} bytes): {exc}") from exc
        return self.provider.completion(payload)

    def _detail(self, response: httpx.Response) -> str:
        return error_detail(response, self._secret)

    def _scrub(self, text: str) -> str:
        return scrub(text, self._secret)

    def close(self) -> None:
        self._http.close()

    async def aclose(self) -> None:
        pool = self._pools.pop(asyncio.get_running_loop(), None)
        if pool is not None:
            await pool.aclose()

    def __repr__(self) -> str:
        return f"LLMClient({self.url!r}, limits={self.limits!r})"

    def __reduce__(self) -> Any:
        raise TypeError("LLMClient holds an API key and open connections: build one per worker in setup()")


def _url(provider: Provider, base_url: str) -> str:
    """Where the provider's calls go (a provider without ``url``: ``base_url`` + its path)."""
    url = getattr(provider, "url", None)
    return str(url(base_url)) if callable(url) else base_url.rstrip("/") + provider.path


def _headers(provider: Provider, api_key: str | None) -> dict[str, str]:
    """How the provider is given the key (Anthropic: ``x-api-key``; else a bearer token)."""
    headers = getattr(provider, "headers", None)
    if callable(headers):
        return dict(headers(api_key))
    return {"authorization": f"Bearer {api_key}"} if api_key else {}


def retry_after(headers: Mapping[str, str], *, now: float) -> float | None:
    """Seconds a 429 asks us to wait: ``retry-after-ms``, ``retry-after`` (seconds or HTTP date),
    else the ``x-ratelimit-reset-*`` durations (``1m30s``, ``250ms``) or Anthropic's
    ``anthropic-ratelimit-*-reset`` times; None if none is given."""
    if (ms := _number(headers.get("retry-after-ms"))) is not None:
        return max(0.0, ms / 1000)
    value = headers.get("retry-after")
    if value is not None:
        if (seconds := _number(value)) is not None:
            return max(0.0, seconds)
        with contextlib.suppress(TypeError, ValueError, IndexError):
            return max(0.0, email.utils.parsedate_to_datetime(value).timestamp() - now)
    resets = [parse_duration(headers.get(f"x-ratelimit-reset-{kind}")) for kind in ("requests", "tokens")]
    for kind in ("requests", "tokens", "input-tokens", "output-tokens"):
        at = parse_time(headers.get(f"anthropic-ratelimit-{kind}-reset"))
        remaining = _number(headers.get(f"anthropic-ratelimit-{kind}-remaining"))
        if at is not None and remaining == 0:  # the budget that is spent says when it is whole again
            resets.append(max(0.0, at - now))
    known = [r for r in resets if r is not None]
    return max(known) if known else None


def _number(text: str | None) -> float | None:
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None
