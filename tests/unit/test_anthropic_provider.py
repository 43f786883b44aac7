"""``provider: anthropic``: the Messages request and reply, the key in ``x-api-key``, errors mapped as
for every provider (529 retried, 429 with ``retry-after``, 401 refused and scrubbed), the check
before a run (aliases of dated snapshots, a paged model list), and the built-in price table."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from docmill.errors import AuthRefusedError, ConfigError, EndpointError, RateLimitedError, UpstreamError
from docmill.limits.provider import ProviderLimits
from docmill.llm import anthropic
from docmill.llm.anthropic import AnthropicMessages
from docmill.llm.client import LLMClient, retry_after
from docmill.llm.pricing import Price, built_in, price_of
from docmill.llm.probe import probe
from docmill.llm.prompt import build_messages, count_prompt_tokens, response_schema
from docmill.llm.providers import get_provider
from docmill.llm.settings import LLMOptions
from docmill.processors.classify_llm import LLMSettings, wiring
from docmill.settings import from_mapping

MESSAGES = build_messages([], "a document")
SCHEMA = response_schema(["a", "b"])


def test_the_body_puts_the_system_prompt_on_top_and_asks_for_the_answer_as_a_tool_call() -> None:
    body = AnthropicMessages().body(MESSAGES, model="claude-haiku-4-5", max_tokens=50, schema=SCHEMA)
    assert body["system"] == MESSAGES[0]["content"] and body["messages"] == [MESSAGES[1]]
    assert (body["model"], body["max_tokens"], body["temperature"]) == ("claude-haiku-4-5", 50, 0)
    assert body["tools"] == [
        {"name": "classification", "description": "Record the answer.", "input_schema": SCHEMA}
    ]
    assert body["tool_choice"] == {"type": "tool", "name": "classification"}
    json_only = AnthropicMessages("json_object").body(MESSAGES, model="m", max_tokens=5, schema=SCHEMA)
    assert "tools" not in json_only and json_only["system"].endswith("no code fences.")
    plain = AnthropicMessages("none").body(MESSAGES, model="m", max_tokens=5, schema=SCHEMA)
    assert "tools" not in plain and plain["system"] == MESSAGES[0]["content"]
    with pytest.raises(ConfigError, match="response_format"):
        AnthropicMessages("xml")


def test_the_url_is_under_the_api_root_and_the_key_goes_in_x_api_key() -> None:
    provider = get_provider("anthropic")
    assert isinstance(provider, AnthropicMessages)
    for base in ("https://api.anthropic.com", "https://api.anthropic.com/", "https://api.anthropic.com/v1"):
        assert provider.url(base) == "https://api.anthropic.com/v1/messages"
    assert provider.headers("sk-ant") == {"anthropic-version": "2023-06-01", "x-api-key": "sk-ant"}
    assert provider.headers(None) == {"anthropic-version": "2023-06-01"}
    with pytest.raises(ConfigError, match="anthropic, ollama, openai"):
        get_provider("cohere")


def test_a_reply_is_read_from_the_tool_call_or_the_text_blocks() -> None:
    provider = AnthropicMessages()
    called = provider.completion(
        {
            "content": [
                {"type": "text", "text": "Sure."},
                {"type": "tool_use", "id": "t", "name": "classification", "input": {"label": "a"}},
            ],
            "stop_reason": "tool_use",
            "usage": {"input_tokens": 10, "output_tokens": 4, "cache_read_input_tokens": 2},
        }
    )
    assert (json.loads(called.text), called.tokens_in, called.tokens_out) == ({"label": "a"}, 12, 4)
    assert called.finish_reason == "stop"
    text = provider.completion(
        {
            "content": [{"type": "text", "text": '{"la'}, {"type": "text", "text": 'bel": "b"}'}],
            "stop_reason": "max_tokens",
        }
    )
    assert text.text == '{"label": "b"}' and text.finish_reason == "length"  # cut off: the classifier says so
    with pytest.raises(UpstreamError, match="not an Anthropic message"):
        provider.completion({"choices": []})


def test_prompt_tokens_count_the_system_prompt_as_the_openai_form_does() -> None:
    body = AnthropicMessages().body(MESSAGES, model="m", max_tokens=5, schema=SCHEMA)
    assert anthropic.prompt_tokens(body) == count_prompt_tokens(MESSAGES)
    blocks = {**body, "system": [{"type": "text", "text": body["system"]}]}
    assert anthropic.prompt_tokens(blocks) == count_prompt_tokens(MESSAGES)


def _client(handler: Any) -> LLMClient:
    return LLMClient(
        "http://provider",
        provider="anthropic",
        api_key="sk-ant-secret",
        limits=ProviderLimits.from_rates(1000, None, per=1.0),
        transport=httpx.MockTransport(handler),
    )


def _message(text: str = '{"label": "a"}') -> dict[str, Any]:
    return {"type": "message", "content": [{"type": "text", "text": text}], "stop_reason": "end_turn",
            "usage": {"input_tokens": 7, "output_tokens": 3}}  # fmt: skip


def test_the_client_sends_anthropics_headers_and_maps_its_errors() -> None:
    seen: list[httpx.Request] = []
    replies = iter(
        [
            httpx.Response(200, json=_message()),
            httpx.Response(
                529, json={"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
            ),
            httpx.Response(
                429,
                headers={"retry-after": "3"},
                json={"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}},
            ),
            httpx.Response(
                401,
                json={
                    "type": "error",
                    "error": {"type": "authentication_error", "message": "bad key sk-ant-secret"},
                },
            ),
        ]
    )

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return next(replies)

    client = _client(handler)
    reply = client.complete(MESSAGES, model="m", max_tokens=10)
    assert (reply.text, reply.tokens_in, reply.tokens_out) == ('{"label": "a"}', 7, 3)
    request = seen[0]
    assert request.url.path == "/v1/messages" and "authorization" not in request.headers
    assert (
        request.headers["x-api-key"] == "sk-ant-secret"
        and request.headers["anthropic-version"] == "2023-06-01"
    )
    assert json.loads(request.content)["system"] == MESSAGES[0]["content"]
    with pytest.raises(UpstreamError, match="529.*Overloaded") as overloaded:
        client.complete(MESSAGES, model="m", max_tokens=10)
    assert overloaded.value.status == 529  # retryable, as a 503
    with pytest.raises(RateLimitedError) as limited:
        client.complete(MESSAGES, model="m", max_tokens=10)
    assert limited.value.retry_after == 3.0
    with pytest.raises(AuthRefusedError) as refused:
        client.complete(MESSAGES, model="m", max_tokens=10)
    assert "sk-ant-secret" not in str(refused.value) and "***" in str(refused.value)


def test_without_retry_after_a_429_waits_for_the_spent_budget_to_reset() -> None:
    headers = {
        "anthropic-ratelimit-requests-remaining": "0",
        "anthropic-ratelimit-requests-reset": "2025-01-01T00:00:07Z",
        "anthropic-ratelimit-tokens-remaining": "5000",
        "anthropic-ratelimit-tokens-reset": "2025-01-01T00:00:30Z",  # not spent: not waited for
    }
    now = 1735689600.0  # 2025-01-01T00:00:00Z
    assert retry_after(headers, now=now) == pytest.approx(7.0)
    assert retry_after({**headers, "retry-after": "2"}, now=now) == 2.0


def _settings(**extra: Any) -> LLMSettings:
    return LLMSettings(base_url="http://provider", model="claude-sonnet-4-5", provider="anthropic", **extra)


def test_the_check_before_a_run_takes_aliases_of_dated_snapshots_and_pages() -> None:
    asked: list[httpx.Request] = []

    def listing(*ids: str, more: bool = False) -> httpx.MockTransport:
        def handler(request: httpx.Request) -> httpx.Response:
            asked.append(request)
            data = [{"type": "model", "id": i, "display_name": i} for i in ids]
            return httpx.Response(200, json={"data": data, "has_more": more})

        return httpx.MockTransport(handler)

    probe(_settings(), "sk-ant", transport=listing("claude-sonnet-4-5-20250929"))
    assert asked[0].url.path == "/v1/models" and asked[0].headers["x-api-key"] == "sk-ant"
    latest = LLMSettings(base_url="http://provider", model="claude-3-7-sonnet-latest", provider="anthropic")
    probe(latest, None, transport=listing("claude-3-7-sonnet-20250219"))
    probe(_settings(), None, transport=listing("claude-haiku-4-5", more=True))  # a page: cannot tell
    with pytest.raises(EndpointError, match="unknown model 'claude-sonnet-4-5'"):
        probe(_settings(), None, transport=listing("claude-sonnet-4-5-preview", "claude-haiku-4-5"))
    refused = httpx.MockTransport(
        lambda r: httpx.Response(
            401, json={"type": "error", "error": {"message": "invalid x-api-key sk-ant"}}
        )
    )
    with pytest.raises(EndpointError, match=r"refused the key \(401\)") as error:
        probe(_settings(api_key_env="ANTHROPIC_KEY"), "sk-ant", transport=refused)
    assert "sk-ant" not in str(error.value).replace("ANTHROPIC_KEY", "")


def test_the_built_in_prices_cover_anthropic_models_and_their_snapshots() -> None:
    assert built_in("claude-haiku-4-5") == Price(1.0, 5.0)
    assert built_in("claude-3-5-haiku-20241022") == Price(0.8, 4.0)
    assert built_in("claude-opus-4-1-20250805") == Price(15.0, 75.0)
    assert built_in("claude-3-7-sonnet-latest") == Price(3.0, 15.0)
    assert built_in("gpt-4o-mini-2024-07-18") == Price(0.15, 0.60)
    assert built_in("claude-opus-4-9") is None and built_in("emulated-small") is None  # unknown: free
    assert price_of(None, None, "claude-sonnet-4-5") == Price(3.0, 15.0)
    assert price_of(2.0, None, "claude-sonnet-4-5") == Price(2.0, 0.0)  # configured wins, half of it too
    assert price_of(None, None, "llama3") == Price()
    sonnet = built_in("claude-sonnet-4-5")
    assert sonnet is not None and sonnet.scaled() == Price(1.5, 7.5)  # Message Batches: 50 %


def test_a_run_without_prices_pays_the_built_in_price_of_its_model() -> None:
    options = from_mapping(LLMOptions, {"provider": "anthropic", "model": "claude-haiku-4-5"}, "llm")
    assert options.price_input_per_1m is None
    assert wiring(options, {})["price"] == Price(1.0, 5.0)
    assert wiring(options, {}, model="claude-opus-4-5")["price"] == Price(5.0, 25.0)  # --classifier llm:MODEL
    priced = from_mapping(LLMOptions, {"model": "claude-haiku-4-5", "price_input_per_1m": 0.5}, "llm")
    assert wiring(priced, {})["price"] == Price(0.5, 0.0)
    with pytest.raises(ConfigError, match="price_output_per_1m"):
        from_mapping(LLMOptions, {"price_output_per_1m": -1}, "llm")
