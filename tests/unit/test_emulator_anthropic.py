"""The emulator's Anthropic API: Messages requests checked as Anthropic checks them, the answer as a
tool call under its schema, its errors and headers; Message Batches by the clock (counts moving,
results out of order, expiry, cancelling, listing, deleting, validation, the stats); and
``AnthropicBatches`` over real HTTP, finding a batch an earlier run created by its requests."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from typing import Any

import pytest

from docmill.batch.anthropic import AnthropicBatches
from docmill.llm.anthropic import AnthropicMessages
from docmill.llm.emulator import Emulator, EmulatorConfig
from docmill.llm.emulator_server import EmulatorServer
from docmill.llm.prompt import LabelSpec, build_messages, response_schema
from docmill.testing import FakeClock

LABELS = [
    LabelSpec("invoice", "A bill requesting payment.", ("invoice", "amount due")),
    LabelSpec("recipe", "How to cook a dish.", ("oven", "simmer")),
]
TEXTS = ("invoice: amount due in 30 days", "simmer, then put it in the oven")
HEADERS = {"anthropic-version": "2023-06-01", "host": "emulator"}


def params(i: int, *, tool: bool = True) -> dict[str, Any]:
    schema = response_schema(["invoice", "recipe"]) if tool else None
    return AnthropicMessages().body(
        build_messages(LABELS, TEXTS[i % 2]), model="emulated-small", max_tokens=100, schema=schema
    )


class Direct:
    """The emulator without a server: requests handed to ``Emulator.handle``, time on a FakeClock."""

    def __init__(self, **config: Any) -> None:
        self.clock = FakeClock()
        self.emulator = Emulator(EmulatorConfig(latency_median=0.0, rpm=0, tpm=0, **config), clock=self.clock)

    def reply(
        self, method: str, path: str, body: Any = None, headers: Mapping[str, str] | None = None
    ) -> Any:
        raw = b"" if body is None else body if isinstance(body, bytes) else json.dumps(body).encode()
        return asyncio.run(
            self.emulator.handle(method, path, dict(HEADERS if headers is None else headers), raw)
        )

    def call(self, method: str, path: str, body: Any = None) -> Any:
        reply = self.reply(method, path, body)
        assert reply.status == 200, reply.body
        return (
            json.loads(reply.body) if reply.headers.get("content-type") == "application/json" else reply.body
        )


def test_a_message_is_answered_as_a_tool_call_valid_under_its_schema() -> None:
    direct = Direct()
    reply = direct.reply("POST", "/v1/messages", params(0))
    assert reply.status == 200 and "anthropic-ratelimit-requests-limit" not in reply.headers  # rpm 0
    message = json.loads(reply.body)
    assert message["type"] == "message" and message["stop_reason"] == "tool_use"
    (call,) = message["content"]
    assert call["type"] == "tool_use" and call["name"] == "classification"
    assert call["input"]["label"] == "invoice" and set(call["input"]) == {"label", "confidence", "reason"}
    text = json.loads(direct.reply("POST", "/v1/messages", params(1, tool=False)).body)
    assert text["stop_reason"] == "end_turn" and '"label": "recipe"' in text["content"][0]["text"]
    assert direct.emulator.stats()["anthropic_requests"] == direct.emulator.stats()["requests"] == 2


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"max_tokens": None}, "max_tokens"),
        ({"messages": [{"role": "system", "content": "x"}]}, "top-level system"),
        ({"tool_choice": {"type": "tool", "name": "other"}}, "no tool named 'other'"),
        ({"tools": [{"name": "has space", "input_schema": {"type": "object"}}]}, "tools.0.name"),
        ({"temperature": 1.5}, "temperature"),
        ({"stream": True}, "stream"),
    ],
)
def test_requests_the_messages_api_refuses_get_400(change: dict[str, Any], says: str) -> None:
    body = {k: v for k, v in {**params(0), **change}.items() if v is not None}
    reply = Direct().reply("POST", "/v1/messages", body)
    error = json.loads(reply.body)
    assert (
        reply.status == 400 and error["type"] == "error" and error["error"]["type"] == "invalid_request_error"
    )
    assert says in error["error"]["message"]


def test_the_version_header_and_the_key_are_required() -> None:
    direct = Direct(api_key="sk-ant-right")
    no_version = direct.reply("POST", "/v1/messages", params(0), headers={"x-api-key": "sk-ant-right"})
    assert no_version.status == 400 and b"anthropic-version" in no_version.body
    wrong = direct.reply("POST", "/v1/messages", params(0), headers={**HEADERS, "x-api-key": "sk-bad"})
    assert wrong.status == 401 and json.loads(wrong.body)["error"]["type"] == "authentication_error"
    assert direct.reply("GET", "/v1/models", headers={**HEADERS, "x-api-key": "sk-bad"}).status == 401
    models = json.loads(
        direct.reply("GET", "/v1/models", headers={**HEADERS, "x-api-key": "sk-ant-right"}).body
    )
    assert [m["id"] for m in models["data"]] == ["emulated-small", "emulated-large"] and not models[
        "has_more"
    ]
    assert models["data"][0]["type"] == "model"
    ok = direct.reply("POST", "/v1/messages", params(0), headers={**HEADERS, "x-api-key": "sk-ant-right"})
    assert ok.status == 200


def test_faults_speak_anthropic_and_a_503_is_its_529() -> None:
    overloaded = Direct(fail_503=1.0).reply("POST", "/v1/messages", params(0))
    assert overloaded.status == 529
    assert json.loads(overloaded.body)["error"] == {"type": "overloaded_error", "message": "Overloaded"}
    failed = Direct(fail_500=1.0).reply("POST", "/v1/messages", params(0))
    assert failed.status == 500 and json.loads(failed.body)["error"]["type"] == "api_error"
    assert Direct(drop=1.0).reply("POST", "/v1/messages", params(0)).action == "drop"


def test_a_request_over_the_limit_gets_429_with_whole_seconds_and_anthropic_headers() -> None:
    direct = Direct()
    direct.emulator = Emulator(
        EmulatorConfig(rpm=1, tpm=0, window=60.0, latency_median=0.0), clock=direct.clock
    )
    first = direct.reply("POST", "/v1/messages", params(0))
    assert first.status == 200 and first.headers["anthropic-ratelimit-requests-remaining"] == "0"
    assert "x-ratelimit-limit-requests" not in first.headers  # Anthropic's headers on its own route
    direct.clock.advance(1.5)
    second = direct.reply("POST", "/v1/messages", params(0))
    assert second.status == 429 and second.headers["retry-after"] == "59"
    assert "retry-after-ms" not in second.headers and "anthropic-ratelimit-requests-reset" in second.headers
    assert json.loads(second.body)["error"]["type"] == "rate_limit_error"


def requests(n: int, *, bad: int | None = None) -> dict[str, Any]:
    made: list[dict[str, Any]] = [{"custom_id": f"r-{i}", "params": params(i)} for i in range(n)]
    if bad is not None:
        made[bad]["params"] = {**made[bad]["params"], "max_tokens": 0}
    return {"requests": made}


def test_a_batch_moves_by_the_clock_and_its_results_match_by_custom_id() -> None:
    direct = Direct(batch_seconds=10.0)
    batch = direct.call("POST", "/v1/messages/batches", requests(4, bad=3))
    assert batch["processing_status"] == "in_progress" and batch["request_counts"]["processing"] == 4
    assert batch["id"].startswith("msgbatch_") and batch["results_url"] is None
    assert direct.reply("GET", f"/v1/messages/batches/{batch['id']}/results").status == 400  # not yet
    direct.clock.advance(5.0)
    halfway = direct.call("GET", f"/v1/messages/batches/{batch['id']}")["request_counts"]
    assert halfway["processing"] == 2 and halfway["succeeded"] == 2
    direct.clock.advance(5.0)
    ended = direct.call("GET", f"/v1/messages/batches/{batch['id']}")
    assert ended["processing_status"] == "ended" and ended["ended_at"]
    assert ended["request_counts"] == {
        "processing": 0,
        "succeeded": 3,
        "errored": 1,
        "canceled": 0,
        "expired": 0,
    }
    assert ended["results_url"] == f"http://emulator/v1/messages/batches/{batch['id']}/results"
    lines = [
        json.loads(line)
        for line in direct.call("GET", f"/v1/messages/batches/{batch['id']}/results").splitlines()
    ]
    assert [line["custom_id"] for line in lines] == ["r-3", "r-2", "r-1", "r-0"]  # not in request order
    results = {line["custom_id"]: line["result"] for line in lines}
    assert results["r-0"]["message"]["content"][0]["input"]["label"] == "invoice"
    assert results["r-1"]["message"]["content"][0]["input"]["label"] == "recipe"
    assert results["r-3"]["type"] == "errored"
    assert results["r-3"]["error"]["error"]["type"] == "invalid_request_error"
    stats = direct.emulator.stats()
    assert (stats["batches"], stats["batch_requests"], stats["anthropic_batches"]) == (1, 4, 1)
    assert stats["anthropic_batch_requests"] == 4 and stats["requests"] == 0  # outside the online count


def test_expiry_cancelling_and_line_faults() -> None:
    direct = Direct(batch_seconds=10.0, batch_expire_first=1, fail_503=0.5, seed=2)
    expiring = direct.call("POST", "/v1/messages/batches", requests(6))
    direct.clock.advance(10.0)
    counts = direct.call("GET", f"/v1/messages/batches/{expiring['id']}")["request_counts"]
    assert counts["expired"] == 3 and counts["succeeded"] + counts["errored"] == 3
    body = direct.call("GET", f"/v1/messages/batches/{expiring['id']}/results")
    kinds = {json.loads(line)["result"]["type"] for line in body.splitlines()}
    assert "expired" in kinds and kinds <= {"expired", "succeeded", "errored"}
    errored = [json.loads(line)["result"] for line in body.splitlines() if b'"errored"' in line]
    assert all(r["error"]["error"]["type"] == "overloaded_error" for r in errored)
    cancelled = direct.call("POST", "/v1/messages/batches", requests(4))
    direct.clock.advance(5.0)
    assert (
        direct.call("POST", f"/v1/messages/batches/{cancelled['id']}/cancel")["processing_status"]
        == "canceling"
    )
    ended = direct.call("GET", f"/v1/messages/batches/{cancelled['id']}")
    assert ended["processing_status"] == "ended" and ended["cancel_initiated_at"]
    assert ended["request_counts"]["canceled"] == 2 and ended["request_counts"]["processing"] == 0
    assert direct.reply("POST", f"/v1/messages/batches/{cancelled['id']}/cancel").status == 400  # ended


def test_listing_pages_newest_first_and_deleting_only_ended_batches() -> None:
    direct = Direct(batch_seconds=10.0)
    made = [direct.call("POST", "/v1/messages/batches", requests(1))["id"] for _ in range(5)]
    page = direct.call("GET", "/v1/messages/batches?limit=2")
    assert [b["id"] for b in page["data"]] == made[::-1][:2] and page["has_more"]
    rest = direct.call("GET", f"/v1/messages/batches?limit=10&after_id={page['last_id']}")
    assert [b["id"] for b in rest["data"]] == made[::-1][2:] and not rest["has_more"]
    before = direct.call("GET", f"/v1/messages/batches?limit=1&before_id={made[0]}")
    assert [b["id"] for b in before["data"]] == [made[1]] and before["has_more"]
    assert direct.reply("DELETE", f"/v1/messages/batches/{made[0]}").status == 400  # in progress
    direct.clock.advance(10.0)
    assert direct.call("DELETE", f"/v1/messages/batches/{made[0]}")["type"] == "message_batch_deleted"
    assert direct.reply("GET", f"/v1/messages/batches/{made[0]}").status == 404


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"requests": []}, "between 1 and"),
        ({"requests": [{"custom_id": "a b", "params": {}}]}, "custom_id"),
        ({"requests": [{"custom_id": "a", "params": {}}, {"custom_id": "a", "params": {}}]}, "not unique"),
        ({"requests": [{"custom_id": "a"}]}, "params"),
    ],
)
def test_an_invalid_batch_is_refused_at_creation(body: dict[str, Any], says: str) -> None:
    direct = Direct()
    reply = direct.reply("POST", "/v1/messages/batches", body)
    assert reply.status == 400 and says in json.loads(reply.body)["error"]["message"]
    assert direct.emulator.stats()["batches"] == 0


def _content(*indices: int) -> bytes:
    backend = AnthropicBatches.at("http://unused", api_key=None)
    return b"".join(backend.line(f"doc-{i}", params(i)) for i in indices)


def test_the_backend_tags_its_requests_and_finds_a_batch_it_created_by_them() -> None:
    config = EmulatorConfig(latency_median=0.0, batch_seconds=0.5, api_key="sk-ant")
    with EmulatorServer(config) as server:
        backend = AnthropicBatches.at(server.url + "/v1", api_key="sk-ant")
        ours, other = _content(0, 1, 2), _content(3, 4, 5)
        ours_id, other_id = backend.stage(ours), backend.stage(other)
        assert ours_id.startswith("sha256:") and ours_id != other_id and server.stats()["batches"] == 0
        since = server.emulator.clock.wall()
        created = backend.create(ours_id, ours, metadata={})
        assert created.status == "in_progress" and created.id.startswith("msgbatch_")
        foreign = backend.create(other_id, other, metadata={})  # the same size, made after ours
        # both running: their requests cannot be seen yet; the earliest after the record is ours
        assert backend.find(ours_id, requests=3, since=since, known=set()) == created
        assert backend.find(ours_id, requests=4, since=since, known=set()) is None  # another size
        assert backend.find(ours_id, requests=3, since=since + 3600, known=set()) is None  # too old
        import time

        time.sleep(0.7)
        ended = backend.retrieve(created.id)
        assert ended.status == "completed" and ended.counts and ended.counts["succeeded"] == 3
        # ended: checked by their results' tags, whatever their order
        assert backend.find(other_id, requests=3, since=since, known=set()).id == foreign.id  # type: ignore[union-attr]
        assert backend.find(ours_id, requests=3, since=since, known={created.id}) is None
        results = backend.results(ended, ours_id)
        assert sorted(results) == ["doc-0", "doc-1", "doc-2"] and all(
            r.fate == "ok" for r in results.values()
        )
        assert backend.results(ended, other_id) == {}  # another batch's lines are never taken for ours
        backend.close()
