"""The read-only JSON API over a journal (the page is its first client; the spec is ``openapi.py``)."""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import replace
from functools import partial
from typing import Any

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from docmill.clock import SYSTEM_CLOCK, Clock
from docmill.journal.base import DocumentRecord, Journal, Query
from docmill.serve import params, views
from docmill.serve.gateway import Gateway
from docmill.serve.params import JSON, BadParam, error

SCAN_PAGE = 1000
SCAN_LIMIT = 100_000  # rows examined at most when filtering failures by error type
MAX_RUN_ID = 2**63 - 1
Handler = Callable[[Request], Awaitable[Response]]


class Api:
    """Handlers bound to one journal gateway."""

    def __init__(self, gateway: Gateway, *, clock: Clock = SYSTEM_CLOCK) -> None:
        self.gateway = gateway
        self.clock = clock

    def routes(self) -> list[Route]:
        """The API's routes, each wrapped so that a ``BadParam`` becomes a 422."""
        table: list[tuple[str, Handler]] = [
            ("/api/runs", self.runs),
            ("/api/runs/{run_id:int}", self.run),
            ("/api/runs/{run_id:int}/summary", self.summary),
            ("/api/runs/{run_id:int}/throughput", self.throughput),
            ("/api/runs/{run_id:int}/errors", self.error_types),
            ("/api/documents", self.documents),
            ("/api/documents/{path:path}", self.document),
            ("/api/failures", self.failures),
            ("/api/export.csv", self.export_csv),
            ("/api/export.jsonl", self.export_jsonl),
            ("/healthz", self.healthz),
        ]
        return [Route(path, _validated(handler), methods=["GET", "HEAD"]) for path, handler in table]

    async def runs(self, request: Request) -> Response:
        records = await self.gateway.call(lambda j: j.runs())
        now = self.clock.wall()
        return JSON({"runs": [views.run_json(r, None, now=now) for r in records]})

    async def run(self, request: Request) -> Response:
        run_id = _path_run_id(request)
        found = await self.gateway.call(lambda j: (j.run(run_id), j.summary(run_id)))
        if found[0] is None:
            return error(404, f"no run {run_id}")
        body = views.run_json(found[0], found[1], now=self.clock.wall())
        return JSON({**body, "summary": views.summary_json(found[1])})

    async def summary(self, request: Request) -> Response:
        run_id = _path_run_id(request)
        found = await self.gateway.call(lambda j: (j.run(run_id), j.summary(run_id)))
        if found[0] is None:
            return error(404, f"no run {run_id}")
        return JSON(views.summary_json(found[1]))

    async def throughput(self, request: Request) -> Response:
        run_id = _path_run_id(request)
        buckets = params.integer(request, "buckets", 60, lo=1, hi=1000)
        assert buckets is not None
        found = await self.gateway.call(lambda j: (j.run(run_id), j.throughput(run_id, buckets=buckets)))
        if found[0] is None:
            return error(404, f"no run {run_id}")
        return JSON(views.throughput_json(found[1]))

    async def error_types(self, request: Request) -> Response:
        run_id = _path_run_id(request)
        query = Query(run_id=run_id, status=views.FAILURE_STATUSES)
        rows = await self.gateway.call(lambda j: list(_scan(j, query)))
        counts = Counter(r.error_type or r.status for r in rows)
        return JSON({"error_types": dict(counts.most_common()), "scanned": len(rows)})

    async def documents(self, request: Request) -> Response:
        return await self._page(request, _query(request))

    async def failures(self, request: Request) -> Response:
        query = _query(request, default_status=views.FAILURE_STATUSES)
        error_type = params.text(request, "error_type")
        if error_type is None:
            return await self._page(request, query)
        rows = await self.gateway.call(lambda j: list(_scan(j, replace(query, limit=SCAN_PAGE, offset=0))))
        matching = [r for r in rows if (r.error_type or r.status) == error_type]
        items = matching[query.offset : query.offset + query.limit]
        return JSON(_page_body(items, len(matching), query))

    async def _page(self, request: Request, query: Query) -> Response:
        rows, total = await self.gateway.call(lambda j: (j.documents(query), j.count(query)))
        return JSON(_page_body(rows, total, query))

    async def document(self, request: Request) -> Response:
        path = params.check_text("path", request.path_params["path"])
        run_id = params.run_id(request)
        found = await self.gateway.call(lambda j: j.document(path, run_id=run_id))
        if found is None:
            return error(404, "no such document")
        return JSON(views.document_json(found))

    async def export_csv(self, request: Request) -> Response:
        query = replace(_query(request), limit=SCAN_PAGE, offset=0)
        return _download(_csv_lines(self._rows(query)), "text/csv; charset=utf-8", _filename(query, "csv"))

    async def export_jsonl(self, request: Request) -> Response:
        query = replace(_query(request), limit=SCAN_PAGE, offset=0)
        lines = _jsonl_lines(self._rows(query))
        return _download(lines, "application/x-ndjson; charset=utf-8", _filename(query, "jsonl"))

    async def _rows(self, query: Query) -> AsyncIterator[dict[str, Any]]:
        """Every matching row, one journal page at a time (memory stays bounded)."""
        offset = 0
        while True:
            page_query = replace(query, offset=offset)
            rows = await self.gateway.call(partial(_documents, query=page_query))
            for row in rows:
                yield views.export_row(row)
            if len(rows) < query.limit:
                return
            offset += len(rows)

    async def healthz(self, request: Request) -> Response:
        runs = await self.gateway.call(lambda j: len(j.runs()))
        return JSON({"status": "ok", "runs": runs})


def _validated(handler: Handler) -> Handler:
    async def endpoint(request: Request) -> Response:
        try:
            return await handler(request)
        except BadParam as exc:
            return error(422, str(exc))

    endpoint.__name__ = handler.__name__
    return endpoint


def _path_run_id(request: Request) -> int:
    run_id = int(request.path_params["run_id"])
    if not 1 <= run_id <= MAX_RUN_ID:
        raise BadParam(f"run id must be between 1 and {MAX_RUN_ID}")
    return run_id


def _query(request: Request, default_status: tuple[str, ...] = ()) -> Query:
    limit, offset = params.page(request)
    return Query(
        run_id=params.run_id(request),
        status=params.statuses(request, default_status),
        label=params.text(request, "label"),
        path_contains=params.text(request, "path"),
        limit=limit,
        offset=offset,
    )


def _page_body(rows: Iterable[DocumentRecord], total: int, query: Query) -> dict[str, Any]:
    items = [views.document_json(r) for r in rows]
    return {"total": total, "limit": query.limit, "offset": query.offset, "items": items}


def _documents(journal: Journal, *, query: Query) -> list[DocumentRecord]:
    return journal.documents(query)


def _scan(journal: Journal, query: Query) -> Iterable[DocumentRecord]:
    """Rows matching ``query`` page by page, at most ``SCAN_LIMIT`` of them."""
    offset = 0
    while offset < SCAN_LIMIT:
        rows = journal.documents(replace(query, limit=SCAN_PAGE, offset=offset))
        yield from rows
        if len(rows) < SCAN_PAGE:
            return
        offset += len(rows)


def _filename(query: Query, ext: str) -> str:
    return f"docmill-run-{query.run_id}.{ext}" if query.run_id else f"docmill-export.{ext}"


def _download(body: AsyncIterator[str], media_type: str, filename: str) -> StreamingResponse:
    headers = {"content-disposition": f'attachment; filename="{filename}"'}
    return StreamingResponse(_encoded(body), media_type=media_type, headers=headers)


async def _encoded(lines: AsyncIterator[str]) -> AsyncIterator[bytes]:
    async for line in lines:
        yield line.encode("utf-8", "surrogateescape")  # undecodable file names keep their bytes


async def _csv_lines(rows: AsyncIterator[dict[str, Any]]) -> AsyncIterator[str]:
    buffer = io.StringIO()
    writer: csv.DictWriter[str] | None = None
    async for row in rows:
        if writer is None:
            writer = csv.DictWriter(buffer, fieldnames=list(row), lineterminator="\n")
            writer.writeheader()
        writer.writerow({k: "" if v is None else v for k, v in row.items()})
        yield _drain(buffer)
    if writer is None:
        yield ",".join(_EXPORT_COLUMNS) + "\n"


def _drain(buffer: io.StringIO) -> str:
    value = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return value


async def _jsonl_lines(rows: AsyncIterator[dict[str, Any]]) -> AsyncIterator[str]:
    async for row in rows:
        yield json.dumps(views.clean_json(row), ensure_ascii=False) + "\n"


_EXPORT_COLUMNS = (
    "path",
    "sha256",
    "status",
    "label",
    "score",
    "error",
    "attempts",
    "duplicate_of",
    "size",
    "seconds",
)
