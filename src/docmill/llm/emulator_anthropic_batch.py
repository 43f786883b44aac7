"""The emulator's Message Batches: ``/v1/messages/batches``, shaped as Anthropic documents them.

* ``POST /v1/messages/batches`` ``{requests: [{custom_id, params}, …]}`` (1 to 100,000 requests,
  ``custom_id`` unique and ``^[a-zA-Z0-9_-]{1,64}$``, the body at most 256 MB) → a batch:
  ``{id: msgbatch_…, type: message_batch, processing_status, request_counts: {processing,
  succeeded, errored, canceled, expired}, created_at, expires_at, ended_at, cancel_initiated_at,
  archived_at, results_url}`` (times in RFC 3339).
* ``GET /v1/messages/batches/{id}``; ``GET /v1/messages/batches?limit=&after_id=&before_id=``
  (newest first, ``{data, has_more, first_id, last_id}``); ``POST …/{id}/cancel``; ``DELETE …/{id}``
  (an ended batch only); ``GET …/{id}/results`` once it has ended: JSON lines ``{custom_id, result:
  {type: succeeded, message} | {type: errored, error: {type: error, error: {type, message}}} |
  {type: canceled} | {type: expired}}``, not in the order of the requests (the client must match
  ``custom_id``, as Anthropic says).

A batch is ``in_progress`` for ``batch_seconds``, its requests answered in order as time passes
(``request_counts`` move from ``processing`` to ``succeeded``/``errored``), then ``ended``. One whose
work does not fit ``batch_window``, and each of the first ``batch_expire_first`` batches (of either
API), ends with the rest ``expired``; a cancelled one goes ``canceling``, then ``ended`` with the rest
``canceled``. Each request is checked as ``POST /v1/messages`` checks it (an invalid one is
``errored`` with ``invalid_request_error``), draws the emulator's faults (``fail_503`` →
``overloaded_error``, the others → ``api_error``; ``bad_label`` answers outside the set) and is
answered as online (``emulator_anthropic.compose``), outside the rate limits. ``/emulator/stats``
counts ``batches`` and ``batch_requests`` (with the OpenAI Batch API's), and ``anthropic_batches``
and ``anthropic_batch_requests``.
"""

from __future__ import annotations

import json
import math
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from docmill.llm.emulator_anthropic import compose, error, invalid, request_problem
from docmill.llm.emulator_replies import Reply, rfc3339

if TYPE_CHECKING:
    from docmill.llm.emulator_anthropic import AnthropicDesk

MAX_REQUESTS = 100_000
MAX_BYTES = 256 * 1024 * 1024
_CUSTOM_ID = re.compile(r"[a-zA-Z0-9_-]{1,64}")
_KINDS = ("processing", "succeeded", "errored", "canceled", "expired")


@dataclass(slots=True)
class _Batch:
    meta: dict[str, Any]
    requests: list[dict[str, Any]]
    started: float  # monotonic
    ends: float  # monotonic time it ends (done or expired)
    expires: bool
    done_share: float = 1.0  # of the requests answered when it ends
    results: list[dict[str, Any]] = field(default_factory=list)  # in request order, answered so far


class MessageBatches:
    """The Message Batches of one emulator, and the routes serving them."""

    def __init__(self, desk: AnthropicDesk) -> None:
        self.desk = desk
        self.emulator = desk.emulator
        self.batches: dict[str, _Batch] = {}

    def handle(self, method: str, path: str, headers: Mapping[str, str], body: bytes) -> Reply:
        parts = urlsplit(path)
        route = parts.path.rstrip("/").split("/")[4:]  # after /v1/messages/batches
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        host = headers.get("host", "127.0.0.1")
        if not route and method == "POST":
            return self._create(body, host)
        if not route and method == "GET":
            return self._list(query)
        batch = self.batches.get(route[0]) if route else None
        if batch is None:
            return error(404, "not_found_error", f"no message batch {route[0] if route else ''!r}")
        if len(route) == 1 and method == "GET":
            return Reply.json(200, self._view(batch))
        if len(route) == 1 and method == "DELETE":
            return self._delete(batch)
        if route[1:] == ["cancel"] and method == "POST":
            return self._cancel(batch)
        if route[1:] == ["results"] and method == "GET":
            return self._results(batch)
        return error(404, "not_found_error", f"no route {method} {parts.path}")

    # -- routes -------------------------------------------------------------------------------------

    def _create(self, body: bytes, host: str) -> Reply:
        if len(body) > MAX_BYTES:
            return error(413, "request_too_large", f"the batch is {len(body)} bytes; at most {MAX_BYTES}")
        try:
            requests = json.loads(body)["requests"]
        except (ValueError, KeyError, TypeError):
            return invalid("requests: Field required")
        if not isinstance(requests, list) or not 1 <= len(requests) <= MAX_REQUESTS:
            return invalid(f"requests: between 1 and {MAX_REQUESTS} requests")
        seen: set[str] = set()
        for i, request in enumerate(requests):
            custom_id = request.get("custom_id") if isinstance(request, Mapping) else None
            if not isinstance(custom_id, str) or not _CUSTOM_ID.fullmatch(custom_id):
                return invalid(f"requests.{i}.custom_id: should match '^[a-zA-Z0-9_-]{{1,64}}$'")
            if not isinstance(request.get("params"), Mapping):
                return invalid(f"requests.{i}.params: Field required")
            if custom_id in seen:
                return invalid(f"requests.{i}.custom_id: {custom_id!r} is not unique within the batch")
            seen.add(custom_id)
        emulator, cfg = self.emulator, self.emulator.config
        for key in ("batches", "anthropic_batches"):
            emulator.counts[key] += 1
        for key in ("batch_requests", "anthropic_batch_requests"):
            emulator.counts[key] += len(requests)
        now, wall = emulator.clock.monotonic(), emulator.clock.wall()
        batch_id = f"msgbatch_{uuid.uuid4().hex[:24]}"
        meta: dict[str, Any] = {
            "id": batch_id, "type": "message_batch", "processing_status": "in_progress",
            "request_counts": {**dict.fromkeys(_KINDS, 0), "processing": len(requests)},
            "ended_at": None, "created_at": rfc3339(wall), "expires_at": rfc3339(wall + cfg.batch_window),
            "archived_at": None, "cancel_initiated_at": None, "results_url": None,
        }  # fmt: skip
        first = emulator.counts["batches"] <= cfg.batch_expire_first
        expires = first or cfg.batch_seconds > cfg.batch_window
        batch = _Batch(meta, list(requests), now, now + min(cfg.batch_seconds, cfg.batch_window), expires)
        if first:
            batch.done_share = 0.5
        elif expires:
            batch.done_share = cfg.batch_window / cfg.batch_seconds
        batch.meta["_host"] = host
        self.batches[batch_id] = batch
        return Reply.json(200, self._view(batch))

    def _list(self, query: Mapping[str, str]) -> Reply:
        try:
            limit = max(1, min(1000, int(query.get("limit", "20"))))
        except ValueError:
            return invalid("limit: Input should be a valid integer")
        newest = list(reversed(self.batches.values()))
        ids = [b.meta["id"] for b in newest]
        if (after := query.get("after_id")) is not None:
            rest = newest[ids.index(after) + 1 :] if after in ids else []
            page, more = rest[:limit], len(rest) > limit
        elif (before := query.get("before_id")) is not None:
            rest = newest[: ids.index(before)] if before in ids else []
            page, more = rest[-limit:], len(rest) > limit
        else:
            page, more = newest[:limit], len(newest) > limit
        data = [self._view(b) for b in page]
        first, last = (data[0]["id"], data[-1]["id"]) if data else (None, None)
        return Reply.json(200, {"data": data, "has_more": more, "first_id": first, "last_id": last})

    def _cancel(self, batch: _Batch) -> Reply:
        view = self._view(batch)
        if view["processing_status"] != "in_progress":
            status = view["processing_status"]
            return invalid(f"message batch {view['id']} is {status}: it cannot be canceled")
        now = self.emulator.clock.monotonic()
        self._answer_upto(batch, math.floor(len(batch.requests) * _progress(batch, now)))
        wall = self.emulator.clock.wall()
        batch.meta.update(processing_status="canceling", cancel_initiated_at=rfc3339(wall))
        return Reply.json(200, self._public(batch))

    def _delete(self, batch: _Batch) -> Reply:
        if self._view(batch)["processing_status"] != "ended":
            return invalid(f"message batch {batch.meta['id']} has not ended: cancel it before deleting it")
        del self.batches[batch.meta["id"]]
        return Reply.json(200, {"id": batch.meta["id"], "type": "message_batch_deleted"})

    def _results(self, batch: _Batch) -> Reply:
        if self._view(batch)["processing_status"] != "ended":
            return invalid(f"message batch {batch.meta['id']} has not ended: its results are not ready")
        lines = [
            json.dumps({"custom_id": request["custom_id"], "result": result})
            for request, result in zip(batch.requests, batch.results, strict=True)
        ]
        lines.reverse()  # "results are not guaranteed to be in the same order as requests"
        body = "".join(line + "\n" for line in lines).encode()
        return Reply(200, body, {"content-type": "application/binary"})

    # -- a batch's life -----------------------------------------------------------------------------

    def _view(self, batch: _Batch) -> dict[str, Any]:
        """The batch as of now (moved on by the clock)."""
        status, now = batch.meta["processing_status"], self.emulator.clock.monotonic()
        if status == "canceling":
            self._end(batch, "canceled")
        elif status == "in_progress":
            if now >= batch.ends:
                self._end(batch, "expired")
            else:
                self._answer_upto(batch, math.floor(len(batch.requests) * _progress(batch, now)))
        return self._public(batch)

    def _end(self, batch: _Batch, unfinished: str) -> None:
        """Answer the share done, mark the rest ``unfinished`` (expired or canceled), end the batch."""
        if unfinished == "expired" and not batch.expires:
            done = len(batch.requests)
        elif unfinished == "expired":
            done = math.floor(len(batch.requests) * batch.done_share)
        else:
            done = len(batch.results)
        self._answer_upto(batch, done)
        batch.results.extend({"type": unfinished} for _ in batch.requests[len(batch.results) :])
        self._count(batch)
        host = batch.meta["_host"]
        batch.meta.update(
            processing_status="ended",
            ended_at=rfc3339(self.emulator.clock.wall()),
            results_url=f"http://{host}/v1/messages/batches/{batch.meta['id']}/results",
        )

    def _answer_upto(self, batch: _Batch, done: int) -> None:
        for request in batch.requests[len(batch.results) : done]:
            batch.results.append(self._answer(request["params"]))
        self._count(batch)

    def _answer(self, params: Mapping[str, Any]) -> dict[str, Any]:
        emulator = self.emulator
        if (problem := request_problem(params)) is not None:
            return _errored("invalid_request_error", problem)
        fault = emulator.draw_fault()
        if fault == "fail_503":
            return _errored("overloaded_error", "Overloaded")
        if fault is not None and fault != "bad_label":
            return _errored("api_error", "Internal server error")
        message, usage = compose(emulator, params, fault)
        emulator.counts["batch_tokens_in"] += usage[0]
        emulator.counts["batch_tokens_out"] += usage[1]
        return {"type": "succeeded", "message": message}

    def _count(self, batch: _Batch) -> None:
        counts = dict.fromkeys(_KINDS, 0)
        for result in batch.results:
            counts[result["type"]] += 1
        counts["processing"] = len(batch.requests) - len(batch.results)
        batch.meta["request_counts"] = counts

    @staticmethod
    def _public(batch: _Batch) -> dict[str, Any]:
        return {k: v for k, v in batch.meta.items() if not k.startswith("_")}


def _progress(batch: _Batch, now: float) -> float:
    span = batch.ends - batch.started
    share = batch.done_share if batch.expires else 1.0
    return 1.0 if span <= 0 else min(1.0, (now - batch.started) / span) * share


def _errored(kind: str, message: str) -> dict[str, Any]:
    return {"type": "errored", "error": {"type": "error", "error": {"type": kind, "message": message}}}
