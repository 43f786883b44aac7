"""The API's OpenAPI 3.0 description, written by hand from the handlers in ``api.py``."""

from __future__ import annotations

from typing import Any

from docmill import __version__
from docmill.serve.params import MAX_LIMIT, MAX_OFFSET, MAX_TEXT, STATUSES

_NUM = {"type": "number", "nullable": True}
_INT = {"type": "integer", "nullable": True}
_STR = {"type": "string", "nullable": True}
_OBJ = {"type": "object", "additionalProperties": True}


def _param(name: str, schema: dict[str, Any], where: str = "query", text: str = "") -> dict[str, Any]:
    return {"name": name, "in": where, "required": where == "path", "schema": schema, "description": text}


def _text(name: str, text: str) -> dict[str, Any]:
    return _param(name, {"type": "string", "maxLength": MAX_TEXT, "pattern": "^[^\\x00]*$"}, text=text)


RUN_ID = _param("run_id", {"type": "integer", "minimum": 1, "maximum": 2**63 - 1}, "path", "Run id.")
RUN = _param(
    "run", {"type": "integer", "minimum": 1, "maximum": 2**63 - 1}, text="Only this run's documents."
)
STATUS = _param(
    "status",
    {"type": "array", "items": {"type": "string", "enum": list(STATUSES)}},
    text="Keep these statuses (repeat the parameter or separate with commas).",
)
LIMIT = _param(
    "limit", {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": 100}, text="Page size."
)
OFFSET = _param(
    "offset", {"type": "integer", "minimum": 0, "maximum": MAX_OFFSET, "default": 0}, text="Skip."
)
FILTERS = [
    RUN,
    STATUS,
    _text("label", "Exact label."),
    _text("path", "Substring of the path."),
    LIMIT,
    OFFSET,
]

PROGRESS = {
    "type": "object",
    "required": ["done", "docs_per_second", "elapsed_seconds"],
    "properties": {
        "done": {"type": "integer"},
        "total": _INT,
        "fraction": _NUM,
        "docs_per_second": _NUM,
        "pages": _INT,
        "pages_per_second": _NUM,
        "elapsed_seconds": _NUM,
        "eta_seconds": _NUM,
    },
}
COUNTS = {"type": "object", "additionalProperties": {"type": "integer"}}
_BATCH_COUNTS = ("batches", "submitted", "in_progress", "completed", "failed", "requests")
BATCHES = {  # the provider batches of the run's source and pipeline, as ``docmill status`` counts them
    "type": "object",
    "required": [*_BATCH_COUNTS, "cost", "saved"],
    "properties": {
        **{name: {"type": "integer"} for name in _BATCH_COUNTS},
        "cost": {"type": "number"},  # USD spent on batch answers
        "saved": {"type": "number"},  # USD the same tokens would have cost online, minus "cost"
    },
}
_SPENT: dict[str, Any] = {"requests": {"type": "integer"}, "cost": {"type": "number"}}  # USD
_SPEND = {"type": "object", "properties": _SPENT}
TASK_COSTS = {  # a run whose labels file declares tasks or fields (``docmill.model.task_costs``)
    "type": "object",
    "properties": {
        "tasks": {"type": "object", "additionalProperties": _SPEND},  # tasks asked on their own
        "shared": {  # the one request per document serving several tasks (not split between them)
            "type": "object",
            "properties": {**_SPENT, "asked": {"type": "array", "items": {"type": "string"}}},
        },
    },
}
SUMMARY = {
    "type": "object",
    "required": ["total", "by_status", "by_label", "failures"],
    "properties": {
        "total": {"type": "integer"},
        "by_status": COUNTS,
        "by_label": COUNTS,
        "by_task": {"type": "object", "additionalProperties": COUNTS},  # a labels file with tasks
        "cost_by_step": {"type": "object", "additionalProperties": {"type": "number"}},  # USD
        "cost_by_task": TASK_COSTS,
        "batches": BATCHES,  # only for a run that used the Batch API (``--batch``)
        "failures": {"type": "integer"},
        "first_started": _NUM,
        "last_finished": _NUM,
        "docs_per_second": _NUM,
        "pages": {"type": "integer"},
        "pages_per_second": _NUM,
    },
}
RUN_SCHEMA = {
    "type": "object",
    "required": ["id", "source", "strategy", "workers", "state", "started", "config", "stats", "progress"],
    "properties": {
        "id": {"type": "integer"},
        "source": {"type": "string"},
        "fingerprint": {"type": "string"},
        "strategy": {"type": "string"},
        "workers": {"type": "integer"},
        "total": _INT,
        "state": {"type": "string", "enum": ["running", "done", "interrupted", "failed", "stalled"]},
        "started": {"type": "number"},
        "finished": _NUM,
        "heartbeat": _NUM,
        "config": _OBJ,
        "stats": _OBJ,
        "progress": PROGRESS,
        "summary": SUMMARY,
    },
}
DOCUMENT = {
    "type": "object",
    "required": ["path", "status", "attempts"],
    "properties": {
        "path": {"type": "string"},
        "source": {"type": "string"},
        "fingerprint": {"type": "string"},
        "sha256": _STR,
        "size": _INT,
        "status": {"type": "string"},
        "label": _STR,
        "score": _NUM,
        "result": _OBJ,
        "error_type": _STR,
        "error_message": _STR,
        "attempts": {"type": "integer"},
        "failures": {"type": "integer"},
        "duplicate_of": _STR,
        "worker": _STR,
        "started": _NUM,
        "finished": _NUM,
        "seconds": _NUM,
        "run_id": _INT,
    },
}
PAGE = {
    "type": "object",
    "required": ["total", "limit", "offset", "items"],
    "properties": {
        "total": {"type": "integer"},
        "limit": {"type": "integer"},
        "offset": {"type": "integer"},
        "items": {"type": "array", "items": {"$ref": "#/components/schemas/Document"}},
    },
}
ERROR = {"type": "object", "required": ["detail"], "properties": {"detail": {"type": "string"}}}


def _json(schema: dict[str, Any], text: str) -> dict[str, Any]:
    return {"description": text, "content": {"application/json": {"schema": schema}}}


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


_ERR = _ref("Error")
_BAD = {"422": _json(_ERR, "Invalid parameter.")}
_MISSING = {"404": _json(_ERR, "Not found."), **_BAD}


def _get(
    summary: str, responses: dict[str, Any], parameters: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    return {"get": {"summary": summary, "parameters": parameters or [], "responses": responses}}


def _paths() -> dict[str, Any]:
    runs = {
        "type": "object",
        "required": ["runs"],
        "properties": {"runs": {"type": "array", "items": _ref("Run")}},
    }
    series = {
        "type": "object",
        "required": ["bucket_seconds", "points"],
        "properties": {
            "bucket_seconds": {"type": "number"},
            "points": {"type": "array", "items": {"type": "object", "additionalProperties": True}},
        },
    }
    errors = {"type": "object", "properties": {"error_types": COUNTS, "scanned": {"type": "integer"}}}
    sort = _param("sort", {"type": "string", "enum": ["recent", "path"], "default": "recent"}, text="Order.")
    failures = [*FILTERS, _text("error_type", "Exact error type (or status for crashes)."), sort]
    download = {
        "200": {"description": "Streamed rows.", "content": {"text/csv": {"schema": {"type": "string"}}}}
    }
    lines = {"200": {"description": "Streamed rows.", "content": {"application/x-ndjson": {"schema": {}}}}}
    buckets = _param("buckets", {"type": "integer", "minimum": 1, "maximum": 1000, "default": 60})
    return {
        "/api/runs": _get("All runs, newest first.", {"200": _json(runs, "Runs.")}),
        "/api/runs/{run_id}": _get(
            "One run with its summary.", {"200": _json(_ref("Run"), "Run."), **_MISSING}, [RUN_ID]
        ),
        "/api/runs/{run_id}/summary": _get(
            "Counts by status and label.", {"200": _json(_ref("Summary"), "Summary."), **_MISSING}, [RUN_ID]
        ),
        "/api/runs/{run_id}/throughput": _get(
            "Documents finished per time bucket.",
            {"200": _json(series, "Series."), **_MISSING},
            [RUN_ID, buckets],
        ),
        "/api/runs/{run_id}/errors": _get(
            "Failures by error type.", {"200": _json(errors, "Counts."), **_BAD}, [RUN_ID]
        ),
        "/api/documents": _get(
            "A page of documents.", {"200": _json(_ref("Page"), "Page."), **_BAD}, FILTERS
        ),
        "/api/documents/{path}": _get(
            "One document's record.",
            {"200": _json(_ref("Document"), "Document."), **_MISSING},
            [_param("path", {"type": "string", "minLength": 1, "maxLength": MAX_TEXT}, "path"), RUN],
        ),
        "/api/failures": _get(
            "A page of failed documents.", {"200": _json(_ref("Page"), "Page."), **_BAD}, failures
        ),
        "/api/export.csv": _get("Matching documents as CSV.", {**download, **_BAD}, FILTERS[:4]),
        "/api/export.jsonl": _get("Matching documents as JSON lines.", {**lines, **_BAD}, FILTERS[:4]),
        "/healthz": _get("The journal can be read.", {"200": _json(_OBJ, "Healthy.")}),
        "/metrics": _get(
            "Prometheus metrics.",
            {"200": {"description": "Text.", "content": {"text/plain": {"schema": {"type": "string"}}}}},
        ),
    }


def spec() -> dict[str, Any]:
    """The OpenAPI 3.0.3 document served at ``/api/openapi.json``."""
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "docmill",
            "version": __version__,
            "description": "Read-only API over a docmill journal.",
        },
        "paths": _paths(),
        "components": {
            "schemas": {
                "Run": RUN_SCHEMA,
                "Summary": SUMMARY,
                "Document": DOCUMENT,
                "Page": PAGE,
                "Error": ERROR,
            },
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
