"""A local stand-in for an LLM provider: OpenAI chat completions, Ollama chat and Anthropic's Messages
API, with real limits.

``Emulator.handle`` turns one HTTP request into a :class:`Reply`; ``docmill.llm.emulator_server``
serves it on loopback (``docmill emulate``, or ``EmulatorServer`` in tests). It behaves like a
provider where it matters to a client:

* **Limits** over a sliding window (60 s by default): more than ``rpm`` requests or ``tpm``
  tokens → 429 with ``Retry-After`` (whole seconds) and ``retry-after-ms`` (the time until one
  more fits). Every request counts against ``rpm``, rejected and failed ones included. Tokens are
  charged at admission as prompt + ``max_tokens`` and corrected to the real usage when the reply
  is made. ``quantize`` enforces the limits per ``window / 60`` as well (per second of a minute, at
  ``ceil(rpm / 60)`` requests), as large providers do, so a burst that fits the minute still gets 429s.
* **Limit headers** on every reply, 429s included (``limit_headers``): ``openai`` sends
  ``x-ratelimit-{limit,remaining,reset}-{requests,tokens}``, resets in Go's duration notation
  (``59.731s``, ``1m0s``); ``anthropic`` sends ``anthropic-ratelimit-{requests,tokens}-{limit,
  remaining,reset}``, resets as RFC 3339 times; ``none`` sends neither (``Retry-After`` stays). A
  reset is the time until the budget is whole again: until the newest request leaves the window.
* **Latency**: lognormal around ``latency_median`` with spread ``latency_sigma``, plus
  ``per_token_latency`` per output token; at most ``max_concurrency`` requests are worked on at
  once (the rest queue, so latency rises under overload).
* **Faults**, each drawn per request with its rate: 500, 503, dropped connection, hang, malformed
  JSON body, truncated body, and a label outside the allowed set.
* **Answers**: keyword scoring of the prompt's labels (``emulator_model``), deterministic, with a
  seeded ``error_rate`` of wrong labels; shaped by the requested JSON schema (``emulator_schema``:
  it always validates, labels come from its ``enum``), and strict schemas OpenAI refuses get 400.
* **Batch API** (``emulator_batch``): ``/v1/files`` and ``/v1/batches``; a batch takes
  ``batch_seconds``, outside the rate limits, its lines drawing the same faults and answers.
* **Anthropic** (``emulator_anthropic``): ``/v1/messages`` and Message Batches
  (``/v1/messages/batches``), and ``/v1/models`` when asked with ``anthropic-version``: the same
  answers, limits and faults in Anthropic's shapes (a 503 fault is its 529 ``overloaded_error``).

``GET /emulator/stats`` reports the provider's view; ``POST /emulator/reset`` clears it.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from docmill.clock import SYSTEM_CLOCK, Clock
from docmill.errors import ConfigError
from docmill.llm import emulator_schema
from docmill.llm.emulator_replies import (
    Reply,
    Window,
    invalid,
    limit_headers,
    max_in_window,
    max_tokens,
    ollama_reply,
    openai_reply,
)
from docmill.llm.prompt import count_prompt_tokens, estimate_tokens

if TYPE_CHECKING:
    from docmill.llm.emulator_anthropic import AnthropicDesk
    from docmill.llm.emulator_batch import BatchDesk

__all__ = ["FAULTS", "Emulator", "EmulatorConfig", "Reply", "max_in_window"]
FAULTS = ("fail_500", "fail_503", "drop", "hang", "malformed", "truncated", "bad_label")
LIMIT_HEADERS = ("openai", "anthropic", "none")


@dataclass(frozen=True, slots=True)
class EmulatorConfig:
    """How the emulated provider behaves. Rates are per ``window`` seconds; 0 = unlimited."""

    rpm: int = 600
    tpm: int = 200_000
    window: float = 60.0
    latency_median: float = 1.0
    latency_sigma: float = 0.3
    per_token_latency: float = 0.0
    max_concurrency: int = 0
    error_rate: float = 0.0
    gullible: bool = False
    api_key: str | None = None
    models: tuple[str, ...] = ("emulated-small", "emulated-large")
    hang_seconds: float = 600.0
    seed: int = 0
    fail_500: float = 0.0
    fail_503: float = 0.0
    drop: float = 0.0
    hang: float = 0.0
    malformed: float = 0.0
    truncated: float = 0.0
    bad_label: float = 0.0
    limit_headers: str = "openai"  # openai | anthropic | none
    quantize: bool = False  # also enforce the limits per window / 60 (per second of a minute)
    batch_seconds: float = 30.0  # how long a batch takes to complete
    batch_window: float = 86_400.0  # a batch not done this long after it was created expires
    batch_expire_first: int = 0  # the first N batches expire at batch_seconds, half their lines done

    def __post_init__(self) -> None:
        rates = [getattr(self, name) for name in FAULTS]
        if any(not 0 <= r <= 1 for r in [*rates, self.error_rate]) or sum(rates) > 1:
            raise ConfigError("fault and error rates must be within [0, 1] and sum to at most 1")
        if self.rpm < 0 or self.tpm < 0 or self.window <= 0 or self.latency_median < 0:
            raise ConfigError("rpm, tpm and latency must be >= 0 and window > 0")
        if self.batch_seconds < 0 or self.batch_window <= 0 or self.batch_expire_first < 0:
            raise ConfigError("batch_seconds and batch_expire_first must be >= 0 and batch_window > 0")
        if self.limit_headers not in LIMIT_HEADERS:
            raise ConfigError(
                f"limit_headers must be one of {', '.join(LIMIT_HEADERS)}, got {self.limit_headers!r}"
            )


class Emulator:
    """The provider's behaviour, independent of HTTP. One instance serves one event loop."""

    def __init__(self, config: EmulatorConfig | None = None, *, clock: Clock = SYSTEM_CLOCK) -> None:
        self.config = config or EmulatorConfig()
        self.clock = clock
        self._desk: BatchDesk | None = None
        self._anthropic: AnthropicDesk | None = None
        self.reset()

    @property
    def batches(self) -> BatchDesk:
        """The Batch API's files and batches (``emulator_batch``), kept until ``reset``."""
        from docmill.llm.emulator_batch import BatchDesk

        if self._desk is None:
            self._desk = BatchDesk(self)
        return self._desk

    @property
    def anthropic(self) -> AnthropicDesk:
        """Anthropic's Messages API and Message Batches (``emulator_anthropic``), kept until ``reset``."""
        from docmill.llm.emulator_anthropic import AnthropicDesk

        if self._anthropic is None:
            self._anthropic = AnthropicDesk(self)
        return self._anthropic

    def reset(self) -> None:
        """Forget all traffic: windows, statistics and the random stream."""
        cfg = self.config
        self._requests = Window(cfg.rpm, cfg.window)
        self._tokens = Window(cfg.tpm, cfg.window)
        quantum = cfg.window / 60  # the "second" of the window's "minute"
        self._quantum = Window(math.ceil(cfg.rpm / 60), quantum) if cfg.quantize and cfg.rpm else None
        self._rng = random.Random(cfg.seed)
        self._slots = asyncio.Semaphore(cfg.max_concurrency) if cfg.max_concurrency else None
        self.arrivals: list[float] = []
        self.throttled: list[tuple[float, float]] = []  # (arrival, seconds the 429 asked to wait)
        self.counts: dict[str, int] = {
            "requests": 0,
            "ok": 0,
            "rate_limited": 0,
            "tokens_in": 0,
            "tokens_out": 0,
            "batches": 0,  # batches created (Batch API)
            "batch_requests": 0,  # request lines received across all batches
            "batch_tokens_in": 0,
            "batch_tokens_out": 0,
            "anthropic_requests": 0,  # of the requests: Anthropic's POST /v1/messages
            "anthropic_batches": 0,  # of the batches: Anthropic's Message Batches
            "anthropic_batch_requests": 0,  # of the batch requests: those of Message Batches
        }
        self._desk = None
        self._anthropic = None
        self.faults: dict[str, int] = dict.fromkeys(FAULTS, 0)
        self.in_flight = 0
        self.peak_in_flight = 0
        self.started = self.clock.monotonic()

    async def handle(self, method: str, path: str, headers: Mapping[str, str], body: bytes) -> Reply:
        """Answer one HTTP request."""
        route = (method, path.split("?")[0].rstrip("/"))
        if route[1].startswith("/v1/messages") or (
            route[1] == "/v1/models" and "anthropic-version" in headers
        ):
            return await self.anthropic.handle(method, path, headers, body)
        if route == ("GET", "/emulator/stats"):
            return Reply.json(200, self.stats(arrivals="arrivals=1" in path))
        if route == ("POST", "/emulator/reset"):
            self.reset()
            return Reply.json(200, {"reset": True})
        if route in (("GET", "/v1/models"), ("GET", "/api/tags")):  # keyed, as OpenAI's is
            return self._refused(headers) or Reply.json(200, self._models(ollama=route[1] == "/api/tags"))
        if route in (("POST", "/v1/chat/completions"), ("POST", "/api/chat")):
            return await self._chat(headers, body, ollama=route[1] == "/api/chat")
        if route[1].startswith(("/v1/files", "/v1/batches")):
            return self._refused(headers) or self.batches.handle(method, path, headers, body)
        return Reply.json(404, {"error": {"message": f"no route {method} {path}", "type": "not_found"}})

    def _refused(self, headers: Mapping[str, str]) -> Reply | None:
        """401 unless the configured key was given; echoes what it got, as careless providers do."""
        key = self.config.api_key
        given = headers.get("authorization", "").removeprefix("Bearer ")
        if key is None or given == key:
            return None
        return Reply.json(401, {"error": {"message": f"Incorrect API key provided: {given}", "type": "auth"}})

    def _models(self, *, ollama: bool) -> dict[str, Any]:
        if ollama:
            return {"models": [{"name": m, "model": m, "size": 0} for m in self.config.models]}
        return {
            "object": "list",
            "data": [{"id": m, "object": "model", "owned_by": "docmill"} for m in self.config.models],
        }

    async def _chat(self, headers: Mapping[str, str], body: bytes, *, ollama: bool) -> Reply:
        now = self.clock.monotonic()
        self.arrivals.append(now)
        self.counts["requests"] += 1
        if (refused := self._refused(headers)) is not None:
            return refused
        try:
            request = json.loads(body)
            messages = list(request["messages"])
        except (ValueError, KeyError, TypeError):
            return invalid("body must be JSON with messages")
        if not ollama and (problem := emulator_schema.strict_schema_problem(request)):
            return invalid(f"Invalid schema for response_format: {problem}")
        prompt_tokens = count_prompt_tokens(messages)
        max_out = max_tokens(request, ollama=ollama)
        throttled = self._admit(now, prompt_tokens + max_out)
        if throttled is not None:
            return throttled
        entry = self._tokens.entries[-1] if self.config.tpm else [now, 0.0]
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            return await self._work(request, messages, prompt_tokens, max_out, entry, ollama=ollama)
        finally:
            self.in_flight -= 1

    def _admit(self, now: float, tokens: int) -> Reply | None:
        """Charge the windows; a 429 reply if either budget is spent (the request counts anyway)."""
        refused = self.charge(now, tokens)
        if refused is None:
            return None
        wait, kind = refused
        headers = {"retry-after": str(math.ceil(wait))}
        if self.config.limit_headers != "anthropic":  # an OpenAI extension
            headers["retry-after-ms"] = str(math.ceil(wait * 1000))
        headers.update(self.limit_headers(now))
        error = {"message": self.throttle_message(wait, kind), "type": kind, "code": "rate_limit_exceeded"}
        return Reply.json(429, {"error": error}, headers)

    def throttle_message(self, wait: float, kind: str) -> str:
        return f"Rate limit reached for {kind} per {self.config.window:g} s. Please try again in {wait:.3f}s."

    def charge(self, now: float, tokens: int) -> tuple[float, str] | None:
        """Charge the windows with one request of ``tokens``; None if it fits, else (seconds until it
        would, the budget spent: ``requests`` or ``tokens``). A refused request counts anyway."""
        cfg = self.config
        for window in (self._requests, self._tokens, self._quantum):
            if window is not None:
                window.prune(now)
        wait_requests = self._requests.wait_for(1, now) if cfg.rpm else 0.0
        self._requests.entries.append([now, 1.0])
        if self._quantum is not None:
            wait_requests = max(wait_requests, self._quantum.wait_for(1, now))
            self._quantum.entries.append([now, 1.0])
        wait_tokens = self._tokens.wait_for(tokens, now) if cfg.tpm else 0.0
        if wait_requests <= 0 and wait_tokens <= 0:
            if cfg.tpm:
                self._tokens.entries.append([now, float(tokens)])
            return None
        self.counts["rate_limited"] += 1
        wait = max(wait_requests, wait_tokens)
        self.throttled.append((now, wait))
        return wait, "requests" if wait_requests >= wait_tokens else "tokens"

    def tokens_entry(self, now: float) -> list[float]:
        """The token window's entry of the request just admitted, to correct to its real usage."""
        return self._tokens.entries[-1] if self.config.tpm else [now, 0.0]

    async def work_latency(self, completion_tokens: int) -> None:
        """The time a reply of ``completion_tokens`` takes (within ``max_concurrency``)."""
        await self._latency(completion_tokens)

    async def transport_fault(self, fault: str, prompt_tokens: int, entry: list[float]) -> Reply:
        """A fault without a reply (``drop``, ``hang``): the same on every protocol."""
        return await self._fault(fault, prompt_tokens, entry)

    def limit_headers(self, now: float, style: str | None = None) -> dict[str, str]:
        """The rate-limit headers describing both budgets now, in ``style`` (default: the configured)."""
        windows = (("requests", self._requests), ("tokens", self._tokens))
        return limit_headers(windows, now, self.clock.wall(), style or self.config.limit_headers)

    async def _work(
        self,
        request: Mapping[str, Any],
        messages: list[Any],
        prompt_tokens: int,
        max_out: int,
        entry: list[float],
        *,
        ollama: bool,
    ) -> Reply:
        fault = self.draw_fault()
        payload, usage = self.compose(request, messages, prompt_tokens, max_out, fault, ollama=ollama)
        entry[1] = float(sum(usage))  # correct the admission charge to real usage
        await self._latency(usage[1])
        if fault is not None and fault != "bad_label":
            return await self._fault(fault, prompt_tokens, entry)
        self.counts["ok"] += 1
        self.counts["tokens_in"] += usage[0]
        self.counts["tokens_out"] += usage[1]
        return Reply.json(200, payload, self.limit_headers(self.clock.monotonic()))

    def compose(
        self,
        request: Mapping[str, Any],
        messages: list[Any],
        prompt_tokens: int,
        max_out: int,
        fault: str | None,
        *,
        ollama: bool = False,
    ) -> tuple[dict[str, Any], tuple[int, int]]:
        """The reply body to ``request`` and its (prompt, completion) tokens; online and in batches."""
        cfg = self.config
        content = emulator_schema.answer(
            request, messages, ollama=ollama, seed=cfg.seed, error_rate=cfg.error_rate,
            gullible=cfg.gullible, bad_label=fault == "bad_label",
        )  # fmt: skip
        finish = "stop"
        if estimate_tokens(content) > max_out:
            content, finish = content[: max_out * 4], "length"
        usage = (prompt_tokens, estimate_tokens(content))
        if ollama:
            return ollama_reply(request, content, usage), usage
        return openai_reply(request, content, usage, finish), usage

    def draw_fault(self) -> str | None:
        draw = self._rng.random()
        for name in FAULTS:
            draw -= getattr(self.config, name)
            if draw < 0:
                self.faults[name] += 1
                return name
        return None

    async def _latency(self, completion_tokens: int) -> None:
        cfg = self.config
        seconds = cfg.latency_median * math.exp(cfg.latency_sigma * self._rng.gauss(0.0, 1.0))
        seconds += cfg.per_token_latency * completion_tokens
        if self._slots is None:
            await self.clock.asleep(seconds)
            return
        async with self._slots:
            await self.clock.asleep(seconds)

    async def _fault(self, fault: str, prompt_tokens: int, entry: list[float]) -> Reply:
        entry[1] = float(prompt_tokens)  # the work was started: the prompt is charged
        headers = self.limit_headers(self.clock.monotonic())
        if fault in ("fail_500", "fail_503"):
            status = 500 if fault == "fail_500" else 503
            return Reply.json(
                status, {"error": {"message": "The server had an error", "type": "server_error"}}, headers
            )
        if fault == "hang":
            await self.clock.asleep(self.config.hang_seconds)
            return Reply(0, action="drop")
        if fault == "drop":
            return Reply(0, action="drop")
        body = b'{"id": "chatcmpl-x", "choices": [{"message": {"role": "assistant", "content": "{\\"lab'
        if fault == "malformed":
            return Reply(200, body, {"content-type": "application/json", **headers})
        return Reply(
            200, body + b" " * 64, {"content-type": "application/json", **headers}, action="truncate"
        )

    def stats(self, *, arrivals: bool = False) -> dict[str, Any]:
        """The provider's view: counts, the busiest window, peak concurrency (``arrivals`` on demand)."""
        result: dict[str, Any] = {
            **self.counts,
            "faults": dict(self.faults),
            "window": self.config.window,
            "max_requests_per_window": max_in_window(self.arrivals, self.config.window),
            "peak_in_flight": self.peak_in_flight,
            "in_flight": self.in_flight,
            "elapsed": self.clock.monotonic() - self.started,
            "config": asdict(self.config) | {"api_key": None},
        }
        if arrivals:
            result["arrivals"] = [t - self.started for t in self.arrivals]
            result["throttled"] = [(t - self.started, wait) for t, wait in self.throttled]
        return result
