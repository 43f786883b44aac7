"""The emulator's Batch API: files and batches as OpenAI shapes them, its life by the clock, faults,
expiry, cancelling, listing, validation and the stats; over real HTTP with the official client too."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping
from typing import Any

import pytest

from docmill.llm.emulator import Emulator, EmulatorConfig
from docmill.llm.emulator_server import EmulatorServer
from docmill.llm.prompt import LabelSpec, build_messages, response_schema
from docmill.testing import FakeClock

LABELS = [
    LabelSpec("invoice", "A bill requesting payment.", ("invoice", "amount due")),
    LabelSpec("recipe", "How to cook a dish.", ("oven", "simmer")),
]
TEXTS = ("invoice: amount due in 30 days", "simmer, then put it in the oven")


def request_line(i: int, *, schema: bool = True, url: str = "/v1/chat/completions") -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": "emulated-small",
        "messages": build_messages(LABELS, TEXTS[i % 2]),
        "max_tokens": 100,
    }
    if schema:
        body["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": "c", "schema": response_schema(["invoice", "recipe"]), "strict": True},
        }
    return {"custom_id": f"doc-{i}", "method": "POST", "url": url, "body": body}


def jsonl(lines: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(line) + "\n" for line in lines).encode()


class Direct:
    """The emulator without a server: requests handed to ``Emulator.handle``, time on a FakeClock."""

    def __init__(self, **config: Any) -> None:
        self.clock = FakeClock()
        self.emulator = Emulator(EmulatorConfig(latency_median=0.0, **config), clock=self.clock)

    def call(
        self, method: str, path: str, body: bytes = b"", headers: Mapping[str, str] | None = None
    ) -> Any:
        reply = asyncio.run(self.emulator.handle(method, path, dict(headers or {}), body))
        assert reply.status == 200, reply.body
        ctype = reply.headers.get("content-type", "")
        return json.loads(reply.body) if ctype == "application/json" else reply.body

    def status(self, method: str, path: str, body: bytes = b"") -> int:
        return asyncio.run(self.emulator.handle(method, path, {}, body)).status

    def upload(self, content: bytes) -> str:
        boundary = "docmillboundary"
        parts = (
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nbatch\r\n'
                f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="in.jsonl"\r\n'
                "Content-Type: application/jsonl\r\n\r\n"
            ).encode()
            + content
            + f"\r\n--{boundary}--\r\n".encode()
        )
        headers = {"content-type": f"multipart/form-data; boundary={boundary}"}
        meta = self.call("POST", "/v1/files", parts, headers)
        assert meta["object"] == "file" and meta["purpose"] == "batch" and meta["bytes"] == len(content)
        return str(meta["id"])

    def create(self, lines: list[dict[str, Any]]) -> dict[str, Any]:
        body = {"input_file_id": self.upload(jsonl(lines)), "endpoint": "/v1/chat/completions"}
        created: dict[str, Any] = self.call(
            "POST", "/v1/batches", json.dumps({**body, "completion_window": "24h"}).encode()
        )
        return created

    def get(self, batch_id: str) -> dict[str, Any]:
        found: dict[str, Any] = self.call("GET", f"/v1/batches/{batch_id}")
        return found

    def lines(self, file_id: str | None) -> list[dict[str, Any]]:
        if file_id is None:
            return []
        return [json.loads(line) for line in self.call("GET", f"/v1/files/{file_id}/content").splitlines()]


def test_a_batch_moves_through_its_states_with_the_clock_and_answers_every_line() -> None:
    direct = Direct(batch_seconds=100.0)
    batch = direct.create([request_line(i) for i in range(10)])
    assert batch["object"] == "batch" and batch["status"] == "validating"
    assert batch["request_counts"] == {"total": 10, "completed": 0, "failed": 0}
    seen = []
    for _ in range(12):
        direct.clock.advance(10.0)
        seen.append(direct.get(batch["id"])["status"])
    assert seen[:8] == ["in_progress"] * 8 and seen[8] == "finalizing" and seen[9:] == ["completed"] * 3
    done = direct.get(batch["id"])
    assert done["request_counts"] == {"total": 10, "completed": 10, "failed": 0}
    assert done["error_file_id"] is None and done["completed_at"] >= done["in_progress_at"]
    outputs = direct.lines(done["output_file_id"])
    assert [line["custom_id"] for line in outputs] == [f"doc-{i}" for i in range(10)]
    for i, line in enumerate(outputs):
        assert line["error"] is None and line["response"]["status_code"] == 200
        answer = json.loads(line["response"]["body"]["choices"][0]["message"]["content"])
        assert answer["label"] == ("invoice", "recipe")[i % 2]
        assert line["response"]["body"]["usage"]["prompt_tokens"] > 0
    stats = direct.emulator.stats()
    assert (stats["batches"], stats["batch_requests"], stats["requests"]) == (1, 10, 0)  # outside the RPM


def test_partial_failures_draw_the_fault_options_per_line() -> None:
    direct = Direct(batch_seconds=1.0, fail_500=0.3, bad_label=0.2, seed=3)
    batch = direct.create([request_line(i) for i in range(40)])
    direct.clock.advance(2.0)
    done = direct.get(batch["id"])
    counts = done["request_counts"]
    errors, outputs = direct.lines(done["error_file_id"]), direct.lines(done["output_file_id"])
    assert done["status"] == "completed" and counts["failed"] == len(errors) > 0
    assert counts["completed"] == len(outputs) and len(outputs) + len(errors) == 40
    assert {e["response"]["status_code"] for e in errors} == {500}
    assert all(e["response"]["body"]["error"]["type"] == "server_error" for e in errors)
    labels = {json.loads(o["response"]["body"]["choices"][0]["message"]["content"])["label"] for o in outputs}
    assert "not-a-label" in labels  # bad_label answers outside the set, as online


def test_the_first_batches_expire_half_done_and_the_rest_complete() -> None:
    direct = Direct(batch_seconds=5.0, batch_expire_first=1)
    first = direct.create([request_line(i) for i in range(6)])
    second = direct.create([request_line(i) for i in range(4)])
    direct.clock.advance(6.0)
    expired, completed = direct.get(first["id"]), direct.get(second["id"])
    assert expired["status"] == "expired" and expired["expired_at"] is not None
    assert [o["custom_id"] for o in direct.lines(expired["output_file_id"])] == ["doc-0", "doc-1", "doc-2"]
    errors = direct.lines(expired["error_file_id"])
    assert [(e["custom_id"], e["error"]["code"]) for e in errors] == [
        ("doc-3", "batch_expired"),
        ("doc-4", "batch_expired"),
        ("doc-5", "batch_expired"),
    ]
    assert completed["status"] == "completed"


def test_a_batch_longer_than_its_window_expires_at_the_window() -> None:
    direct = Direct(batch_seconds=100.0, batch_window=50.0)
    batch = direct.create([request_line(i) for i in range(4)])
    direct.clock.advance(49.0)
    assert direct.get(batch["id"])["status"] == "in_progress"
    direct.clock.advance(2.0)
    expired = direct.get(batch["id"])
    assert expired["status"] == "expired" and expired["request_counts"] == {
        "total": 4,
        "completed": 2,
        "failed": 2,
    }


def test_cancelling_keeps_what_was_done() -> None:
    direct = Direct(batch_seconds=10.0)
    batch = direct.create([request_line(i) for i in range(10)])
    direct.clock.advance(5.0)
    cancelling = direct.call("POST", f"/v1/batches/{batch['id']}/cancel")
    assert cancelling["status"] == "cancelling" and cancelling["cancelling_at"] is not None
    cancelled = direct.get(batch["id"])
    assert cancelled["status"] == "cancelled" and cancelled["request_counts"]["completed"] == 5
    assert {e["error"]["code"] for e in direct.lines(cancelled["error_file_id"])} == {"batch_cancelled"}
    assert direct.status("POST", f"/v1/batches/{batch['id']}/cancel") == 400  # over already


def test_listing_pages_newest_first() -> None:
    direct = Direct()
    ids = [direct.create([request_line(0)])["id"] for _ in range(3)]
    page = direct.call("GET", "/v1/batches?limit=2")
    assert [b["id"] for b in page["data"]] == ids[::-1][:2] and page["has_more"] is True
    rest = direct.call("GET", f"/v1/batches?limit=2&after={page['last_id']}")
    assert [b["id"] for b in rest["data"]] == [ids[0]] and rest["has_more"] is False


def test_an_invalid_input_file_fails_the_batch_at_validation() -> None:
    direct = Direct()
    lines = [request_line(0), request_line(0), request_line(2, url="/v1/embeddings")]
    failed = direct.create(lines)
    assert failed["status"] == "failed" and failed["failed_at"] is not None
    codes = [(e["code"], e["line"]) for e in failed["errors"]["data"]]
    assert codes == [("duplicate_custom_id", 2), ("invalid_request", 3)]
    assert direct.status("GET", "/v1/batches/batch_nope") == 404
    assert direct.status("GET", "/v1/files/file-nope/content") == 404
    body = {"input_file_id": direct.upload(jsonl([request_line(0)])), "endpoint": "/v1/embeddings"}
    assert direct.status("POST", "/v1/batches", json.dumps(body).encode()) == 400


def test_a_line_with_a_schema_openai_refuses_fails_with_400() -> None:
    direct = Direct(batch_seconds=0.0)
    line = request_line(0)
    line["body"]["response_format"]["json_schema"]["schema"] = {"type": "object", "properties": {"label": {}}}
    batch = direct.create([line, request_line(1)])
    done = direct.get(batch["id"])
    errors = direct.lines(done["error_file_id"])
    assert [e["response"]["status_code"] for e in errors] == [400] and done["request_counts"][
        "completed"
    ] == 1


def test_files_can_be_deleted_and_uploads_need_purpose_batch() -> None:
    direct = Direct()
    file_id = direct.upload(b'{"x": 1}\n')
    assert direct.call("DELETE", f"/v1/files/{file_id}")["deleted"] is True
    assert direct.status("GET", f"/v1/files/{file_id}") == 404
    assert direct.status("POST", "/v1/files", b"{}") == 400


def test_the_official_client_speaks_it_over_http() -> None:
    openai = pytest.importorskip("openai")
    with EmulatorServer(EmulatorConfig(batch_seconds=0.5, latency_median=0.0, api_key="k")) as server:
        client = openai.OpenAI(base_url=server.url + "/v1", api_key="k")
        uploaded = client.files.create(
            file=("in.jsonl", jsonl([request_line(i) for i in range(6)])), purpose="batch"
        )
        batch = client.batches.create(
            input_file_id=uploaded.id,
            endpoint="/v1/chat/completions",
            completion_window="24h",
            metadata={"a": "b"},
        )
        deadline = time.monotonic() + 20
        while (
            batch.status not in ("completed", "failed", "expired", "cancelled")
            and time.monotonic() < deadline
        ):
            time.sleep(0.1)
            batch = client.batches.retrieve(batch.id)
        assert batch.status == "completed" and batch.metadata == {"a": "b"}
        assert batch.request_counts is not None and batch.request_counts.completed == 6
        assert batch.output_file_id is not None
        output = client.files.content(batch.output_file_id).text.splitlines()
        assert len(output) == 6 and json.loads(output[0])["response"]["status_code"] == 200
        assert [b.id for b in client.batches.list()] == [batch.id]
        stats = server.stats()
        assert (stats["batches"], stats["batch_requests"]) == (1, 6)
        with pytest.raises(openai.AuthenticationError):
            openai.OpenAI(base_url=server.url + "/v1", api_key="wrong").batches.retrieve(batch.id)
