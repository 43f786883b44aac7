"""LLMClassifier over httpx.MockTransport and a fake clock: parsing, retries, cache, cost, secrets."""

from __future__ import annotations

import asyncio
import json
import pickle
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from docmill.clock import SYSTEM_CLOCK, Clock
from docmill.document import Document, DocumentRef, sha256_bytes
from docmill.errors import ConfigError, InvalidModelOutput, UpstreamError
from docmill.limits.provider import ProviderLimits
from docmill.limits.token_bucket import TokenBucket
from docmill.llm.cache import ResponseCache
from docmill.llm.pricing import Price
from docmill.model.labels import LabelSet
from docmill.processors.classify_llm import LLMClassifier, LLMSettings, from_spec
from docmill.retry import RetryPolicy
from docmill.testing import FakeClock

LABELS = LabelSet(
    names=("invoice", "letter"),
    descriptions={"invoice": "A bill requesting payment.", "letter": "Personal correspondence."},
    keywords={"invoice": ("amount due",), "letter": ("dear",)},
)
KEY = "sk-never-leak-4242"
Handler = Callable[[httpx.Request], httpx.Response]


def _reply(content: str, usage: tuple[int, int] = (100, 10)) -> httpx.Response:
    payload = {
        "choices": [{"message": {"content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": usage[0], "completion_tokens": usage[1]},
    }
    return httpx.Response(200, json=payload)


def _scripted(*responses: httpx.Response) -> tuple[Handler, list[httpx.Request]]:
    queue, seen = list(responses), []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return queue.pop(0) if len(queue) > 1 else queue[0]

    return handler, seen


def _doc(text: str = "Amount due: 40 EUR") -> Document:
    return Document(DocumentRef("a.txt", "a.txt"), sha256_bytes(text.encode()), text=text)


def _classifier(handler: Handler, clock: Clock | None = None, **kwargs: Any) -> LLMClassifier:
    clock = clock or FakeClock()
    limits = ProviderLimits(TokenBucket(100, 1.0, clock=clock), TokenBucket(100_000, 1.0, clock=clock))
    settings = kwargs.pop("settings", LLMSettings(base_url="http://llm.test/v1", model="m"))
    return LLMClassifier(
        LABELS, settings, limits=limits, transport=httpx.MockTransport(handler), clock=clock, **kwargs
    )


@pytest.fixture
def key_in_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("DOCMILL_TEST_KEY", KEY)
    yield "DOCMILL_TEST_KEY"


def test_a_good_answer_becomes_metadata_with_cost() -> None:
    handler, seen = _scripted(_reply('{"label": "invoice", "confidence": 0.9}', (1000, 50)))
    clf = _classifier(handler, price=Price(input_per_1m=2.0, output_per_1m=8.0))
    meta = clf.process(_doc()).metadata
    assert meta["label"] == "invoice" and meta["score"] == 0.9
    assert (meta["tokens_in"], meta["tokens_out"], meta["requests"], meta["cached"]) == (1000, 50, 1, False)
    assert meta["cost"] == pytest.approx((1000 * 2 + 50 * 8) / 1e6)
    assert meta["classifier"] == clf.fingerprint() and meta["concurrency"] >= 1
    prompt = json.loads(seen[0].content)["messages"][1]["content"]
    assert (
        "- invoice: A bill requesting payment. [terms: amount due]" in prompt
        and "Amount due: 40 EUR" in prompt
    )


def test_fenced_prose_and_label_case_are_tolerated() -> None:
    handler, _ = _scripted(_reply('Sure!\n```json\n{"label": " Letter "}\n```'))
    assert _classifier(handler).process(_doc()).metadata["label"] == "letter"


def test_a_label_outside_the_set_is_asked_again_then_fails_permanently() -> None:
    handler, seen = _scripted(_reply('{"label": "HACKED"}'))
    with pytest.raises(InvalidModelOutput, match="not one of the 2 allowed labels"):
        _classifier(handler, invalid_retries=2).process(_doc())
    assert len(seen) == 3


def test_an_invalid_answer_can_be_followed_by_a_valid_one() -> None:
    handler, _ = _scripted(_reply("I think it is an invoice"), _reply('{"label": "invoice"}'))
    meta = _classifier(handler).process(_doc()).metadata
    assert meta["label"] == "invoice" and meta["requests"] == 2 and meta["tokens_in"] == 200


def test_server_errors_are_retried_with_backoff_then_succeed() -> None:
    clock = FakeClock()
    handler, seen = _scripted(httpx.Response(500), httpx.Response(503), _reply('{"label": "letter"}'))
    meta = (
        _classifier(handler, clock, retry=RetryPolicy(max_attempts=5, initial=1.0, jitter=0.0))
        .process(_doc())
        .metadata
    )
    assert meta["requests"] == 3 and len(seen) == 3
    assert [s for s in clock.sleeps if s >= 1.0] == [1.0, 2.0]


@pytest.mark.parametrize("seconds", [3, 30, 150])  # 150: past the policy's maximum and a 60 s window
def test_retry_after_is_a_floor_on_the_wait(seconds: int) -> None:
    clock = FakeClock()
    throttled = httpx.Response(429, headers={"retry-after": str(seconds)})
    handler, seen = _scripted(throttled, _reply('{"label": "letter"}'))
    start = clock.monotonic()
    _classifier(handler, clock).process(_doc())
    assert len(seen) == 2
    assert clock.monotonic() - start >= seconds


def test_the_retry_budget_ends_in_the_last_error() -> None:
    handler, seen = _scripted(httpx.Response(502))
    with pytest.raises(UpstreamError):
        _classifier(handler, retry=RetryPolicy(max_attempts=3, initial=0.0, maximum=0.0)).process(_doc())
    assert len(seen) == 3


def test_cache_makes_repeats_free(tmp_path: Path) -> None:
    handler, seen = _scripted(_reply('{"label": "invoice", "confidence": 0.7}'))
    cache = ResponseCache(tmp_path / "cache.db")
    clf = _classifier(handler, SYSTEM_CLOCK, cache=cache)
    first = clf.process(_doc()).metadata
    clf.transport = None  # the copy must answer from the cache alone
    again = pickle.loads(pickle.dumps(clf)).process(_doc()).metadata  # another worker, same cache file
    assert len(seen) == 1
    assert (again["label"], again["score"], again["cached"], again["cost"], again["requests"]) == (
        "invoice",
        0.7,
        True,
        0.0,
        0,
    )
    assert first["cached"] is False


def test_cache_key_depends_on_model_and_labels(tmp_path: Path) -> None:
    handler, seen = _scripted(_reply('{"label": "invoice"}'))
    cache = ResponseCache(tmp_path / "cache.db")
    _classifier(handler, cache=cache).process(_doc())
    other = LLMSettings(base_url="http://llm.test/v1", model="bigger")
    _classifier(handler, cache=cache, settings=other).process(_doc())
    assert len(seen) == 2


def test_async_form_gives_the_same_answer() -> None:
    handler, _ = _scripted(_reply('{"label": "letter"}'))
    clf = _classifier(handler)
    assert asyncio.run(clf.aprocess(_doc())).metadata["label"] == "letter"


def test_fingerprint_follows_model_and_labels_not_endpoint() -> None:
    def fp(**changes: Any) -> str:
        settings = LLMSettings(**{"base_url": "http://a/v1", "model": "m", **changes})
        return LLMClassifier(LABELS, settings).fingerprint()

    assert fp() == fp(base_url="http://b/v1")
    assert fp() != fp(model="other") and fp() != fp(max_tokens_in=10)


def test_the_key_is_read_in_setup_and_never_pickled_nor_shown(key_in_env: str) -> None:
    handler, seen = _scripted(_reply('{"label": "letter"}'))
    settings = LLMSettings(base_url="http://llm.test/v1", model="m", api_key_env=key_in_env)
    clf = _classifier(handler, SYSTEM_CLOCK, settings=settings)
    clf.process(_doc())
    assert seen[0].headers["authorization"] == f"Bearer {KEY}"
    clf.transport = None  # a mock transport does not pickle; the real default does
    assert KEY.encode() not in pickle.dumps(clf)
    assert KEY not in repr(clf) and KEY not in repr(clf._client)


def test_a_missing_key_variable_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOPE_KEY", raising=False)
    settings = LLMSettings(base_url="http://llm.test/v1", model="m", api_key_env="NOPE_KEY")
    with pytest.raises(ConfigError, match="NOPE_KEY"):
        LLMClassifier(LABELS, settings).setup()


def _labels_file(tmp_path: Path) -> Path:
    path = tmp_path / "labels.yaml"
    path.write_text(json.dumps(LABELS.to_dict()))
    return path


def test_from_spec_builds_from_settings(tmp_path: Path) -> None:
    settings = {"labels": str(_labels_file(tmp_path)), "rpm": 600, "tpm": 1000, "price_input_per_1m": 1.5}
    clf = from_spec("gpt-test", {**settings, "cache": str(tmp_path / "c.db"), "limiter": "local"})
    assert clf.settings.model == "gpt-test" and clf.price.input_per_1m == 1.5
    assert isinstance(clf.limits.requests, TokenBucket) and clf.cache is not None
    auto = from_spec(None, {**settings, "model": "m", "journal": str(tmp_path / "j.db")})
    assert auto.cache is not None and auto.cache.path == tmp_path / "docmill-cache.db"


@pytest.mark.parametrize(
    ("arg", "settings", "message"),
    [
        (None, {}, "labels file"),
        (None, {"labels": "L"}, "needs a model"),
        ("m", {"labels": "L", "provider": "x"}, "x"),
    ],
)
def test_from_spec_rejects_incomplete_settings(
    arg: str | None, settings: dict[str, Any], message: str, tmp_path: Path
) -> None:
    settings = {**settings, "labels": str(_labels_file(tmp_path))} if "labels" in settings else settings
    with pytest.raises(ConfigError, match=message):
        from_spec(arg, settings).setup()
