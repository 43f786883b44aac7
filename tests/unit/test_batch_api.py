"""``BatchAPI``: retries on 429/5xx/dropped connections, refusals mapped, the key scrubbed, listing
followed page by page, and the pieces of a batch file (packing limits, reading output lines)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from docmill.batch.lines import Packer, answer_body, failure, parse_lines
from docmill.document import DocumentRef
from docmill.errors import AuthRefusedError, PermanentError, UpstreamError
from docmill.journal.batch_store import BatchMember
from docmill.llm.batch_api import BatchAPI
from docmill.retry import RetryPolicy


def api(handler: Any, **options: Any) -> tuple[BatchAPI, list[float]]:
    waits: list[float] = []
    client = BatchAPI(
        "http://provider/v1",
        api_key="sk-secret",
        transport=httpx.MockTransport(handler),
        retry=RetryPolicy(max_attempts=3, initial=0.1, maximum=1.0),
        sleep=waits.append,
        **options,
    )
    return client, waits


def test_transient_failures_are_retried_then_given_up() -> None:
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        if len(calls) == 1:
            return httpx.Response(429, json={"error": {"message": "slow down"}})
        if len(calls) == 2:
            raise httpx.ConnectError("reset")
        return httpx.Response(200, json={"id": "batch_1", "status": "in_progress"})

    client, waits = api(handler)
    assert client.retrieve("batch_1")["status"] == "in_progress"
    assert calls == ["/v1/batches/batch_1"] * 3 and len(waits) == 2

    broken, _ = api(lambda request: httpx.Response(503, json={"error": {"message": "down"}}))
    with pytest.raises(UpstreamError, match="503"):
        broken.retrieve("batch_1")


def test_refusals_are_not_retried_and_the_key_is_scrubbed() -> None:
    client, waits = api(lambda r: httpx.Response(401, json={"error": {"message": "bad key sk-secret"}}))
    with pytest.raises(AuthRefusedError) as refused:
        client.retrieve("b")
    assert "sk-secret" not in str(refused.value) and "***" in str(refused.value) and waits == []
    missing, _ = api(lambda r: httpx.Response(404, json={"error": {"message": "No such batch"}}))
    with pytest.raises(PermanentError, match="No such batch"):
        missing.retrieve("b")


def test_upload_create_and_find_through_every_page() -> None:
    seen: list[httpx.Request] = []
    pages = {
        None: {"data": [{"id": "b3", "input_file_id": "f3"}], "last_id": "b3", "has_more": True},
        "b3": {"data": [{"id": "b2", "input_file_id": "f2"}], "last_id": "b2", "has_more": False},
    }

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path == "/v1/files":
            return httpx.Response(200, json={"id": "file-9", "object": "file"})
        if request.method == "POST":
            return httpx.Response(200, json={"id": "b9", **json.loads(request.content)})
        return httpx.Response(200, json=pages[request.url.params.get("after")])

    client, _ = api(handler)
    assert client.upload(b'{"custom_id": "doc-0"}\n') == "file-9"
    assert b'name="purpose"' in seen[0].content and b"batch" in seen[0].content
    created = client.create("file-9", metadata={"docmill_batch": "1"})
    assert (created["endpoint"], created["completion_window"]) == ("/v1/chat/completions", "24h")
    assert seen[1].headers["authorization"] == "Bearer sk-secret"
    assert client.find("f2") == {"id": "b2", "input_file_id": "f2"} and client.find("nope") is None


def member(i: int) -> BatchMember:
    return BatchMember("", DocumentRef(f"d{i}", f"/d{i}"), f"s{i}")


def test_packing_keeps_within_the_request_and_byte_limits() -> None:
    packer = Packer(max_requests=3, max_bytes=400)
    line = packer.line({"model": "m", "messages": [{"role": "user", "content": "x" * 100}]})
    assert json.loads(line)["custom_id"] == "doc-0" and json.loads(line)["url"] == "/v1/chat/completions"
    assert packer.fits(line)
    packer.add(member(0), line, 30)
    packer.add(member(1), packer.line({"n": 1}), 30)
    assert not packer.fits(b"y" * 300)  # the bytes would pass 400
    packer.add(member(2), packer.line({"n": 2}), 30)
    assert packer.full and not packer.fits(b"{}")
    content, members, tokens = packer.take()
    assert len(content.splitlines()) == 3 and len(members) == 3 and tokens == 90 and len(packer) == 0


def test_output_and_error_lines_read_as_answers_failures_or_unfinished() -> None:
    ok = {"custom_id": "doc-0", "response": {"status_code": 200, "body": {"choices": []}}, "error": None}
    server = {"custom_id": "doc-1", "response": {"status_code": 500, "body": {"error": {"message": "oops"}}}}
    expired = {"custom_id": "doc-2", "response": None, "error": {"code": "batch_expired", "message": "late"}}
    lines = parse_lines(b"\n".join(json.dumps(x).encode() for x in (ok, server, expired)) + b"\nnot json\n")
    assert sorted(lines) == ["doc-0", "doc-1", "doc-2"]
    assert answer_body(lines["doc-0"]) == {"choices": []} and answer_body(lines["doc-1"]) is None
    assert failure(lines["doc-1"], "completed") == ("failed", "batch line failed (500): oops")
    assert failure(lines["doc-2"], "expired") == ("unfinished", "batch_expired")
    assert failure(None, "cancelled")[0] == "unfinished"
