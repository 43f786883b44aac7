"""LLMClient against httpx.MockTransport: protocols, error mapping, pacing, token settlement."""

from __future__ import annotations

import asyncio
import email.utils
import json
import pickle
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from docmill.errors import PermanentError, RateLimitedError, UpstreamError
from docmill.limits.provider import ProviderLimits
from docmill.limits.token_bucket import TokenBucket
from docmill.llm.client import LLMClient, parse_duration, retry_after
from docmill.llm.prompt import count_prompt_tokens
from docmill.testing import FakeClock

MESSAGES = [{"role": "system", "content": "classify"}, {"role": "user", "content": "some text"}]
KEY = "sk-secret-0123456789"
Handler = Callable[[httpx.Request], httpx.Response]


def _openai(
    content: str = '{"label": "a"}', usage: tuple[int, int] = (20, 5), **headers: str
) -> httpx.Response:
    payload = {
        "choices": [{"message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": usage[0], "completion_tokens": usage[1], "total_tokens": sum(usage)},
    }
    return httpx.Response(200, json=payload, headers=headers)


def _client(handler: Handler, clock: FakeClock | None = None, **kwargs: Any) -> LLMClient:
    clock = clock or FakeClock()
    limits = kwargs.pop("limits", None) or ProviderLimits(
        TokenBucket(100, 1.0, clock=clock), TokenBucket(10_000, 1.0, clock=clock)
    )
    return LLMClient(
        "http://llm.test/v1", transport=httpx.MockTransport(handler), limits=limits, clock=clock, **kwargs
    )


def test_openai_request_body_and_reply() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return _openai()

    reply = _client(handler, api_key=KEY).complete(
        MESSAGES, model="m", max_tokens=50, schema={"type": "object"}
    )
    body = json.loads(seen[0].content)
    assert seen[0].url == "http://llm.test/v1/chat/completions"
    assert seen[0].headers["authorization"] == f"Bearer {KEY}"
    assert body["max_tokens"] == 50 and body["response_format"]["type"] == "json_schema"
    assert (reply.text, reply.tokens_in, reply.tokens_out) == ('{"label": "a"}', 20, 5)


def test_ollama_protocol() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        payload = {"message": {"content": '{"label": "a"}'}, "prompt_eval_count": 11, "eval_count": 3}
        return httpx.Response(200, json=payload)

    reply = _client(handler, provider="ollama").complete(MESSAGES, model="llama3", max_tokens=40)
    body = json.loads(seen[0].content)
    assert seen[0].url.path == "/v1/api/chat"
    assert body["stream"] is False and body["options"]["num_predict"] == 40 and body["format"] == "json"
    assert (reply.tokens_in, reply.tokens_out) == (11, 3)


def test_429_pauses_every_caller_and_raises_with_retry_after() -> None:
    clock = FakeClock()
    client = _client(lambda r: httpx.Response(429, headers={"retry-after-ms": "2500"}), clock)
    with pytest.raises(RateLimitedError) as info:
        client.complete(MESSAGES, model="m")
    assert info.value.retry_after == 2.5
    assert client.limits.statistics().requests.paused_for == pytest.approx(2.5)
    assert client.gate.controller.current == 1  # re-enter with one request...
    assert client.gate.controller.ssthresh == 4  # ...and the threshold halved


def test_429_without_retry_after_still_pauses_a_default() -> None:
    client = _client(lambda r: httpx.Response(429, json={"error": {"message": "slow down"}}))
    with pytest.raises(RateLimitedError, match="slow down") as info:
        client.complete(MESSAGES, model="m")
    assert info.value.retry_after is None
    assert client.limits.statistics().tokens.paused_for == pytest.approx(1.0)


@pytest.mark.parametrize("status", [500, 502, 503, 408])
def test_server_errors_are_retryable_upstream_errors(status: int) -> None:
    with pytest.raises(UpstreamError) as info:
        _client(lambda r: httpx.Response(status, text="boom")).complete(MESSAGES, model="m")
    assert info.value.status == status and info.value.retryable


def test_other_4xx_are_permanent_and_never_show_the_key() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, json={"error": {"message": f"Incorrect API key provided: {KEY}"}})

    with pytest.raises(PermanentError) as info:
        _client(handler, api_key=KEY).complete(MESSAGES, model="m")
    assert KEY not in str(info.value) and "***" in str(info.value)


@pytest.mark.parametrize(
    "exc", [httpx.ReadTimeout("slow"), httpx.RemoteProtocolError("dropped"), httpx.ConnectError("refused")]
)
def test_transport_errors_become_upstream_errors(exc: Exception) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc

    with pytest.raises(UpstreamError) as info:
        _client(handler).complete(MESSAGES, model="m")
    assert info.value.__cause__ is exc


def test_malformed_body_is_an_upstream_error() -> None:
    handler = lambda r: httpx.Response(200, content=b'{"choices": [{"mess')  # noqa: E731
    with pytest.raises(UpstreamError, match="malformed"):
        _client(handler).complete(MESSAGES, model="m")


def test_token_estimate_is_settled_with_real_usage() -> None:
    client = _client(lambda r: _openai(usage=(30, 10)))
    client.complete(MESSAGES, model="m", max_tokens=100)
    estimate = count_prompt_tokens(MESSAGES) + 100
    stats = client.limits.statistics().tokens
    assert stats.acquired == estimate and stats.refunded == estimate - 40


def test_a_failed_request_keeps_its_charge() -> None:
    client = _client(lambda r: httpx.Response(500))
    with pytest.raises(UpstreamError):
        client.complete(MESSAGES, model="m")
    stats = client.limits.statistics()
    assert stats.requests.acquired == 1 and stats.tokens.refunded == 0


def test_remaining_headers_resynchronise_the_buckets() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        headers = {"x-ratelimit-remaining-requests": "3", "x-ratelimit-remaining-tokens": "70"}
        return _openai('{"label": "a"}', (20, 5), **headers)

    client = _client(handler)
    client.complete(MESSAGES, model="m")
    stats = client.limits.statistics()
    assert stats.requests.level == pytest.approx(3) and stats.tokens.level <= 70


def test_async_form_behaves_the_same() -> None:
    async def main() -> tuple[str, int]:
        client = _client(lambda r: _openai(usage=(7, 2)))
        reply = await client.acomplete(MESSAGES, model="m")
        await client.aclose()
        return reply.text, reply.tokens_in

    assert asyncio.run(main()) == ('{"label": "a"}', 7)


def test_client_refuses_to_be_pickled() -> None:
    with pytest.raises(TypeError, match="setup"):
        pickle.dumps(_client(lambda r: _openai(), api_key=KEY))


def test_retry_after_forms() -> None:
    now = 1_700_000_000.0
    assert retry_after({"retry-after-ms": "1500"}, now=now) == 1.5
    assert retry_after({"retry-after": "120"}, now=now) == 120.0
    date = email.utils.formatdate(now + 90, usegmt=True)
    assert retry_after({"retry-after": date}, now=now) == pytest.approx(90, abs=1)
    assert (
        retry_after({"x-ratelimit-reset-requests": "1m30s", "x-ratelimit-reset-tokens": "6ms"}, now=now) == 90
    )
    assert retry_after({}, now=now) is None


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("1s", 1.0), ("250ms", 0.25), ("1m30.5s", 90.5), ("2h", 7200.0), ("3", 3.0), ("soon", None)],
)
def test_parse_duration(text: str, seconds: float | None) -> None:
    assert parse_duration(text) == seconds
