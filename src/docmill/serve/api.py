"""The read-only JSON API over a journal (the page is its first client; the spec is ``openapi.py``)."""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from dataclasses import replace
from itertools import islice
from typing import Any

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from docmill.clock import SYSTEM_CLOCK, Clock
from docmill.export.columns import COLUMNS as EXPORT_COLUMNS
from docmill.journal.base import DocumentRecord, Journal, Query
from docmill.serve import params, views
from docmill.serve.gateway import Gateway
from docmill.serve.params import JSON, BadParam, error

SCAN_PAGE = 1000
SCAN_LIMIT = 100_000  # failures examined at most when counting them by error type
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
        run = await self.gateway.call(lambda j: j.run(run_id))
        if run is None:
            return error(404, f"no run {run_id}")
        summary = await self.gateway.cached(("summary", run_id), lambda j: j.summary(run_id))
        body = views.run_json(run, summary, now=self.clock.wall())
        return JSON({**body, "summary": {**views.summary_json(summary), **await self._tasks(run_id)}})

    async def summary(self, request: Request) -> Response:
        run_id = _path_run_id(request)
        if await self.gateway.call(lambda j: j.run(run_id)) is None:
            return error(404, f"no run {run_id}")
        summary = await self.gateway.cached(("summary", run_id), lambda j: j.summary(run_id))
        return JSON({**views.summary_json(summary), **await self._tasks(run_id)})

    async def _tasks(self, run_id: int) -> dict[str, Any]:
        """``by_task``: each task's label counts, for a run whose labels file declares tasks;
        ``cost_by_step``: what the classifier and each of your own steps spent, when a step did;
        ``cost_by_task``: each task's requests and cost, or the one request serving them all;
        ``batches``: the provider batches of the run's source and pipeline (``docmill status``'s)."""
        from docmill.batch.report import batch_summary
        from docmill.model.task_costs import task_costs
        from docmill.model.tasks import task_counts
        from docmill.processors.steps import step_costs

        counts = await self.gateway.cached(("tasks", run_id), lambda j: task_counts(j, j.run(run_id)))
        costs = await self.gateway.cached(("step-costs", run_id), lambda j: step_costs(j, j.run(run_id)))
        by_task = await self.gateway.cached(("task-costs", run_id), lambda j: task_costs(j, j.run(run_id)))
        batches = await self.gateway.cached(("batches", run_id), lambda j: batch_summary(j, j.run(run_id)))
        found = {"by_task": counts, "cost_by_step": costs, "cost_by_task": by_task, "batches": batches}
        return {key: value for key, value in found.items() if value}

    async def throughput(self, request: Request) -> Response:
        run_id = _path_run_id(request)
        buckets = params.integer(request, "buckets", 60, lo=1, hi=1000)
        assert buckets is not None
        if await self.gateway.call(lambda j: j.run(run_id)) is None:
            return error(404, f"no run {run_id}")
        points = await self.gateway.cached(
            ("throughput", run_id, buckets), lambda j: j.throughput(run_id, buckets=buckets)
        )
        return JSON(views.throughput_json(points))

    async def error_types(self, request: Request) -> Response:
        run_id = _path_run_id(request)
        query = Query(run_id=run_id, status=views.FAILURE_STATUSES)
        counts = await self.gateway.cached(("errors", run_id), lambda j: _error_counts(j, query))
        return JSON({"error_types": dict(counts.most_common()), "scanned": counts.total()})

    async def documents(self, request: Request) -> Response:
        return await self._page(request, _query(request))

    async def failures(self, request: Request) -> Response:
        query = replace(
            _query(request, default_status=views.FAILURE_STATUSES),
            error_type=params.text(request, "error_type"),
            order=params.choice(request, "sort", ("recent", "path")),
        )
        return await self._page(request, query)

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
        chunks = _csv_chunks(self._pages(query))
        return _download(chunks, "text/csv; charset=utf-8", _filename(query, "csv"))

    async def export_jsonl(self, request: Request) -> Response:
        query = replace(_query(request), limit=SCAN_PAGE, offset=0)
        chunks = _jsonl_chunks(self._pages(query))
        return _download(chunks, "application/x-ndjson; charset=utf-8", _filename(query, "jsonl"))

    async def _pages(self, query: Query) -> AsyncIterator[list[dict[str, Any]]]:
        """Every matching row, one chunk at a time (memory stays bounded)."""
        rows_iter = await self.gateway.call(lambda j: j.iter_documents(query))
        while True:
            rows = await self.gateway.call(lambda j: list(islice(rows_iter, SCAN_PAGE)))
            yield [views.export_row(row) for row in rows]
            if len(rows) < SCAN_PAGE:
                return

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


def _error_counts(journal: Journal, query: Query) -> Counter[str]:
    return Counter(r.error_type or r.status for r in _scan(journal, query))


def _scan(journal: Journal, query: Query) -> Iterator[DocumentRecord]:
    """Rows matching ``query``, at most ``SCAN_LIMIT`` of them."""
    return islice(journal.iter_documents(query), SCAN_LIMIT)


def _filename(query: Query, ext: str) -> str:
    return f"docmill-run-{query.run_id}.{ext}" if query.run_id else f"docmill-export.{ext}"


def _download(body: AsyncIterator[str], media_type: str, filename: str) -> StreamingResponse:
    headers = {"content-disposition": f'attachment; filename="{filename}"'}
    return StreamingResponse(_encoded(body), media_type=media_type, headers=headers)


async def _encoded(lines: AsyncIterator[str]) -> AsyncIterator[bytes]:
    async for line in lines:
        yield line.encode("utf-8", "surrogateescape")  # undecodable file names keep their bytes


async def _csv_chunks(pages: AsyncIterator[list[dict[str, Any]]]) -> AsyncIterator[str]:
    """One chunk per journal page; the header alone when nothing matches."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=EXPORT_COLUMNS, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    async for page in pages:
        writer.writerows({k: "" if v is None else v for k, v in row.items()} for row in page)
        yield _drain(buffer)
    if buffer.tell():
        yield _drain(buffer)


def _drain(buffer: io.StringIO) -> str:
    value = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return value


async def _jsonl_chunks(pages: AsyncIterator[list[dict[str, Any]]]) -> AsyncIterator[str]:
    async for page in pages:
        yield "".join(json.dumps(views.clean_json(row), ensure_ascii=False) + "\n" for row in page)
