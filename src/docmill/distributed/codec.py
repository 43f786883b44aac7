"""Refs and outcomes as JSON-ready dicts: what crosses the broker and the results list."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from docmill.document import DocumentRef
from docmill.outcome import ErrorInfo, Outcome, Status, Timings


def ref_to_dict(ref: DocumentRef) -> dict[str, Any]:
    return {k: v for k, v in dataclasses.asdict(ref).items() if v is not None}


def ref_from_dict(data: Mapping[str, Any]) -> DocumentRef:
    pages = data.get("pages")  # JSON gives a list; a ref's page range is a tuple
    return DocumentRef(**{**data, "pages": None if pages is None else tuple(pages)})


def outcome_to_dict(outcome: Outcome) -> dict[str, Any]:
    return {
        "ref": ref_to_dict(outcome.ref),
        "status": outcome.status.value,
        "sha256": outcome.sha256,
        "result": None if outcome.result is None else dict(outcome.result),
        "error": None if outcome.error is None else dataclasses.asdict(outcome.error),
        "attempts": outcome.attempts,
        "timings": dataclasses.asdict(outcome.timings),
    }


def outcome_from_dict(data: Mapping[str, Any]) -> Outcome:
    error = data.get("error")
    return Outcome(
        ref=ref_from_dict(data["ref"]),
        status=Status(data["status"]),
        sha256=data.get("sha256"),
        result=data.get("result"),
        error=None if error is None else ErrorInfo(**error),
        attempts=int(data.get("attempts", 1)),
        timings=Timings(**data.get("timings", {})),
    )
