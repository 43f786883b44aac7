"""The emulator's Batch API: ``/v1/files`` and ``/v1/batches``, shaped as OpenAI documents them.

* ``POST /v1/files`` (multipart: ``purpose=batch``, ``file``) → a file object; ``GET
  /v1/files/{id}`` → the object, ``GET /v1/files/{id}/content`` → its bytes, ``DELETE`` removes it.
* ``POST /v1/batches`` ``{input_file_id, endpoint, completion_window, metadata}`` → a batch object;
  ``GET /v1/batches/{id}``, ``POST /v1/batches/{id}/cancel``, ``GET /v1/batches?limit=&after=``
  (newest first, a cursor page).

A batch's life is computed from the clock each time it is looked at: ``validating`` for the first
5 % of ``batch_seconds``, ``in_progress`` (``request_counts.completed`` rising) until 90 %,
``finalizing``, then ``completed`` with an output file (one line per answered request: ``{id,
custom_id, response: {status_code, request_id, body}, error: null}``) and, when some failed, an
error file (``response`` with the error status, or null, and ``error: {code, message}``). A batch
whose work does not fit ``batch_window`` seconds, and each of the first ``batch_expire_first``
batches, ends ``expired``; a cancelled one ``cancelling`` then ``cancelled``. Either way the share
done so far is answered and the rest goes to the error file (``batch_expired``,
``batch_cancelled``), as a provider keeps what it completed. An input file that is not valid
(bad JSON, a repeated ``custom_id``, another URL or method than the endpoint, too many lines)
fails the batch at validation with ``errors``.

Each line draws the emulator's faults: ``fail_500``/``fail_503`` and the transport faults
(``drop``, ``hang``, ``malformed``, ``truncated``) fail the line with a 5xx, ``bad_label`` answers
a label outside the set; answers are ``Emulator.compose``'s, the very bodies online calls get.
Lines are outside the rate limits. ``/emulator/stats`` counts ``batches`` (created) and
``batch_requests`` (lines received in them).
"""

from __future__ import annotations

import email.parser
import email.policy
import json
import math
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from docmill.llm import emulator_schema
from docmill.llm.emulator_replies import Reply, invalid, max_tokens
from docmill.llm.prompt import count_prompt_tokens

if TYPE_CHECKING:
    from docmill.llm.emulator import Emulator

ENDPOINT = "/v1/chat/completions"
WINDOWS = {"24h": 86_400.0}
MAX_REQUESTS = 50_000
MAX_BYTES = 200 * 1024 * 1024
OPEN = ("validating", "in_progress", "finalizing", "cancelling")
_PHASES = ((0.05, "validating"), (0.9, "in_progress"), (1.0, "finalizing"))
_LINE_FAULTS = {
    "fail_500": 500,
    "fail_503": 503,
    "drop": 502,
    "hang": 504,
    "malformed": 500,
    "truncated": 500,
}


@dataclass(slots=True)
class _File:
    meta: dict[str, Any]
    content: bytes


@dataclass(slots=True)
class _Batch:
    meta: dict[str, Any]
    lines: list[dict[str, Any]]
    started: float  # monotonic
    work: float  # seconds until done
    ends: float  # monotonic time it ends (done or expired)
    expires: bool
    done_share: float = 1.0  # of the lines answered when it ends
    cancelled_at: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class BatchDesk:
    """The files and batches of one emulator, and the HTTP routes serving them."""

    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator
        self.files: dict[str, _File] = {}
        self.batches: dict[str, _Batch] = {}

    # -- routes -------------------------------------------------------------------------------------

    def handle(self, method: str, path: str, headers: Mapping[str, str], body: bytes) -> Reply:
        parts = urlsplit(path)
        route = parts.path.rstrip("/").split("/")[2:]  # after /v1: ["files", id, "content"], …
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        if route == ["files"] and method == "POST":
            return self._upload(headers, body)
        if route[:1] == ["files"] and len(route) in (2, 3):
            return self._file(method, route[1], content=len(route) == 3 and route[2] == "content")
        if route == ["batches"] and method == "POST":
            return self._create(body)
        if route == ["batches"] and method == "GET":
            return self._list(query)
        if route[:1] == ["batches"] and len(route) == 2 and method == "GET":
            found = self.batches.get(route[1])
            return _missing("batch", route[1]) if found is None else Reply.json(200, self._view(found))
        if route[:1] == ["batches"] and route[2:] == ["cancel"] and method == "POST":
            return self._cancel(route[1])
        return Reply.json(404, {"error": {"message": f"no route {method} {path}", "type": "not_found"}})

    def _upload(self, headers: Mapping[str, str], body: bytes) -> Reply:
        fields = _multipart(headers.get("content-type", ""), body)
        if fields is None or "file" not in fields:
            return invalid("expected multipart/form-data with a file and a purpose")
        purpose = fields.get("purpose", (b"", None))[0].decode("utf-8", "replace")
        if purpose != "batch":
            return invalid(f"purpose must be 'batch' here, got {purpose!r}")
        content, name = fields["file"]
        if len(content) > MAX_BYTES:
            return invalid(f"file is {len(content)} bytes; at most {MAX_BYTES} are accepted")
        return Reply.json(200, self._store(content, name or "input.jsonl", "batch").meta)

    def _file(self, method: str, file_id: str, *, content: bool) -> Reply:
        found = self.files.get(file_id)
        if found is None:
            return _missing("file", file_id)
        if method == "DELETE" and not content:
            del self.files[file_id]
            return Reply.json(200, {"id": file_id, "object": "file", "deleted": True})
        if method != "GET":
            return Reply.json(404, {"error": {"message": f"no route {method}", "type": "not_found"}})
        if content:
            return Reply(200, found.content, {"content-type": "application/octet-stream"})
        return Reply.json(200, found.meta)

    def _create(self, body: bytes) -> Reply:
        try:
            request = json.loads(body)
            file_id, endpoint = str(request["input_file_id"]), str(request["endpoint"])
            window = str(request.get("completion_window", "24h"))
        except (ValueError, KeyError, TypeError):
            return invalid("body must be JSON with input_file_id, endpoint and completion_window")
        source = self.files.get(file_id)
        if source is None:
            return _missing("file", file_id)
        if endpoint != ENDPOINT or window not in WINDOWS:
            return invalid(f"endpoint must be {ENDPOINT} and completion_window one of {sorted(WINDOWS)}")
        emulator, cfg = self.emulator, self.emulator.config
        lines, problems = _parse_input(source.content, endpoint)
        emulator.counts["batches"] += 1
        emulator.counts["batch_requests"] += len(lines)
        now, wall = emulator.clock.monotonic(), int(emulator.clock.wall())
        expires = emulator.counts["batches"] <= cfg.batch_expire_first or cfg.batch_seconds > cfg.batch_window
        work = cfg.batch_seconds
        meta: dict[str, Any] = {
            "id": f"batch_{uuid.uuid4().hex[:24]}", "object": "batch", "endpoint": endpoint,
            "errors": None, "input_file_id": file_id, "completion_window": window, "status": "validating",
            "output_file_id": None, "error_file_id": None, "created_at": wall, "in_progress_at": None,
            "expires_at": wall + int(cfg.batch_window), "finalizing_at": None, "completed_at": None,
            "failed_at": None, "expired_at": None, "cancelling_at": None, "cancelled_at": None,
            "request_counts": {"total": len(lines), "completed": 0, "failed": 0},
            "metadata": request.get("metadata") or None, "model": _model(lines),
        }  # fmt: skip
        batch = _Batch(meta, lines, now, work, now + min(work, cfg.batch_window), expires)
        if cfg.batch_expire_first and emulator.counts["batches"] <= cfg.batch_expire_first:
            batch.done_share = 0.5
        elif cfg.batch_seconds > cfg.batch_window:
            batch.done_share = cfg.batch_window / cfg.batch_seconds
        if problems:
            meta.update(status="failed", failed_at=wall, errors={"object": "list", "data": problems})
        self.batches[meta["id"]] = batch
        return Reply.json(200, self._view(batch))

    def _list(self, query: Mapping[str, str]) -> Reply:
        try:
            limit = max(1, min(100, int(query.get("limit", "20"))))
        except ValueError:
            return invalid("limit must be an integer")
        newest = list(reversed(self.batches.values()))
        after = query.get("after")
        if after is not None:
            ids = [b.meta["id"] for b in newest]
            newest = newest[ids.index(after) + 1 :] if after in ids else []
        page = [self._view(b) for b in newest[:limit]]
        first, last = (page[0]["id"], page[-1]["id"]) if page else (None, None)
        return Reply.json(
            200,
            {
                "object": "list",
                "data": page,
                "first_id": first,
                "last_id": last,
                "has_more": len(newest) > limit,
            },
        )

    def _cancel(self, batch_id: str) -> Reply:
        batch = self.batches.get(batch_id)
        if batch is None:
            return _missing("batch", batch_id)
        self._view(batch)  # bring it up to date first
        if batch.meta["status"] not in ("validating", "in_progress", "finalizing"):
            return invalid(f"batch {batch_id} is {batch.meta['status']}: it cannot be cancelled")
        now = self.emulator.clock.monotonic()
        batch.cancelled_at = now
        batch.done_share = _progress(batch, now)
        batch.meta.update(status="cancelling", cancelling_at=int(self.emulator.clock.wall()))
        return Reply.json(200, batch.meta)

    # -- a batch's life -----------------------------------------------------------------------------

    def _view(self, batch: _Batch) -> dict[str, Any]:
        """The batch object as of now (its status moved on by the clock)."""
        meta, now = batch.meta, self.emulator.clock.monotonic()
        status = meta["status"]
        if status == "cancelling":
            self._end(batch, "cancelled", "batch_cancelled")
        elif status in ("validating", "in_progress", "finalizing"):
            if now >= batch.ends:
                self._end(batch, "expired" if batch.expires else "completed", "batch_expired")
            else:
                self._move(batch, now)
        return meta

    def _move(self, batch: _Batch, now: float) -> None:
        progress = _progress(batch, now)
        status = next(name for edge, name in _PHASES if progress < edge)
        wall = int(self.emulator.clock.wall())
        if status != "validating":
            batch.meta["in_progress_at"] = batch.meta["in_progress_at"] or wall
        if status == "finalizing":
            batch.meta["finalizing_at"] = batch.meta["finalizing_at"] or wall
        batch.meta["status"] = status
        counts = batch.meta["request_counts"]
        counts["completed"] = math.floor(counts["total"] * min(progress, 1.0) * (status != "validating"))

    def _end(self, batch: _Batch, status: str, unfinished: str) -> None:
        """Answer the share done, put the rest in the error file, and close the batch as ``status``."""
        done = len(batch.lines) if status == "completed" else math.floor(len(batch.lines) * batch.done_share)
        outputs: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        for index, line in enumerate(batch.lines):
            if index < done:
                self._answer(line, outputs, errors)
            else:
                message = f"This request could not be executed before the batch was {status}."
                errors.append(_line(line, None, {"code": unfinished, "message": message}))
        wall = int(self.emulator.clock.wall())
        meta = batch.meta
        meta["status"] = status
        meta["in_progress_at"] = meta["in_progress_at"] or wall
        if status == "completed":
            meta["finalizing_at"] = meta["finalizing_at"] or wall
        meta[f"{status}_at"] = wall
        meta["request_counts"].update(completed=len(outputs), failed=len(errors))
        if outputs:
            meta["output_file_id"] = self._store(
                _jsonl(outputs), f"{meta['id']}_output.jsonl", "batch_output"
            ).meta["id"]
        if errors:
            meta["error_file_id"] = self._store(
                _jsonl(errors), f"{meta['id']}_error.jsonl", "batch_output"
            ).meta["id"]

    def _answer(
        self, line: dict[str, Any], outputs: list[dict[str, Any]], errors: list[dict[str, Any]]
    ) -> None:
        emulator = self.emulator
        request = line["body"]
        messages = list(request.get("messages") or [])
        if problem := emulator_schema.strict_schema_problem(request):
            error = {
                "message": f"Invalid schema for response_format: {problem}",
                "type": "invalid_request_error",
            }
            errors.append(_line(line, {"status_code": 400, "body": {"error": error}}, None))
            return
        fault = emulator.draw_fault()
        if fault in _LINE_FAULTS:
            error = {"message": "The server had an error processing your request", "type": "server_error"}
            errors.append(_line(line, {"status_code": _LINE_FAULTS[fault], "body": {"error": error}}, None))
            return
        prompt = count_prompt_tokens(messages)
        payload, usage = emulator.compose(request, messages, prompt, max_tokens(request, ollama=False), fault)
        emulator.counts["batch_tokens_in"] += usage[0]
        emulator.counts["batch_tokens_out"] += usage[1]
        outputs.append(_line(line, {"status_code": 200, "body": payload}, None))

    def _store(self, content: bytes, name: str, purpose: str) -> _File:
        file_id = f"file-{uuid.uuid4().hex[:24]}"
        meta = {
            "id": file_id, "object": "file", "bytes": len(content),
            "created_at": int(self.emulator.clock.wall()), "filename": name, "purpose": purpose,
            "status": "processed", "expires_at": None, "status_details": None,
        }  # fmt: skip
        self.files[file_id] = stored = _File(meta, content)
        return stored


def _progress(batch: _Batch, now: float) -> float:
    return 1.0 if batch.work <= 0 else (now - batch.started) / batch.work


def _line(
    line: Mapping[str, Any], response: dict[str, Any] | None, error: dict[str, Any] | None
) -> dict[str, Any]:
    if response is not None:
        response["request_id"] = f"req_{uuid.uuid4().hex[:24]}"
    return {
        "id": f"batch_req_{uuid.uuid4().hex[:24]}",
        "custom_id": line["custom_id"],
        "response": response,
        "error": error,
    }


def _jsonl(rows: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(row) + "\n" for row in rows).encode()


def _model(lines: list[dict[str, Any]]) -> str | None:
    return str(lines[0]["body"].get("model")) if lines else None


def _parse_input(content: bytes, endpoint: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The request lines of an input file, and the problems that fail the batch at validation."""
    lines: list[dict[str, Any]] = []
    problems: list[dict[str, Any]] = []
    seen: set[str] = set()
    for number, raw in enumerate(content.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            line = json.loads(raw)
            custom_id, body = str(line["custom_id"]), line["body"]
            wrong = line.get("method") != "POST" or line.get("url") != endpoint or not isinstance(body, dict)
        except (ValueError, KeyError, TypeError):
            problems.append(_problem("invalid_json_line", "not a JSON request line", number))
            continue
        if wrong:
            problems.append(_problem("invalid_request", f"method must be POST and url {endpoint}", number))
        elif custom_id in seen:
            problems.append(_problem("duplicate_custom_id", f"custom_id {custom_id!r} is repeated", number))
        seen.add(custom_id)
        lines.append({"custom_id": custom_id, "body": body})
    if len(lines) > MAX_REQUESTS:
        problems.append(_problem("too_many_requests", f"{len(lines)} requests; at most {MAX_REQUESTS}", None))
    if not lines and not problems:
        problems.append(_problem("empty_file", "the input file holds no request", None))
    return lines, problems


def _problem(code: str, message: str, line: int | None) -> dict[str, Any]:
    return {"code": code, "message": message, "param": None, "line": line}


def _missing(kind: str, ident: str) -> Reply:
    return Reply.json(
        404, {"error": {"message": f"No such {kind}: {ident}", "type": "invalid_request_error", "code": None}}
    )


def _multipart(content_type: str, body: bytes) -> dict[str, tuple[bytes, str | None]] | None:
    """The fields of a multipart/form-data body: name → (bytes, filename)."""
    if not content_type.lower().startswith("multipart/form-data"):
        return None
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode("latin-1")
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    if not message.is_multipart():
        return None
    fields: dict[str, tuple[bytes, str | None]] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if isinstance(name, str) and isinstance(payload, bytes):
            fields[name] = (payload, part.get_filename())
    return fields
