"""Query-string validation for the API: every bad value is a 422 with a one-line reason."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from docmill.outcome import Status
from docmill.serve.views import clean_json

MAX_LIMIT = 1000
MAX_TEXT = 1000
MAX_OFFSET = 10**9
STATUSES = tuple(s.value for s in Status)


class BadParam(Exception):
    """A query parameter is missing, malformed or out of range (HTTP 422)."""


class JSON(Response):
    """JSON that is always valid: no NaN, non-ASCII escaped (lone surrogates in paths survive)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return json.dumps(clean_json(content), allow_nan=False, separators=(",", ":")).encode("ascii")


def error(status: int, detail: str) -> JSON:
    """The API's error body: ``{"detail": "..."}``."""
    return JSON({"detail": detail}, status_code=status)


def integer(request: Request, name: str, default: int | None, *, lo: int, hi: int) -> int | None:
    """An integer parameter in ``[lo, hi]``."""
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw.strip(), 10)
    except ValueError:
        raise BadParam(f"{name} must be an integer, got {raw[:40]!r}") from None
    if not lo <= value <= hi:
        raise BadParam(f"{name} must be between {lo} and {hi}, got {value}")
    return value


def text(request: Request, name: str) -> str | None:
    """A free-text parameter: bounded length, no NUL."""
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    check_text(name, raw)
    return raw


def choice(request: Request, name: str, allowed: tuple[str, ...]) -> str:
    """One of ``allowed`` (the first is the default)."""
    raw = request.query_params.get(name) or allowed[0]
    if raw not in allowed:
        raise BadParam(f"{name} must be one of {', '.join(allowed)}, got {raw[:40]!r}")
    return raw


def check_text(name: str, raw: str) -> str:
    """``raw`` if it is an acceptable string value for ``name``."""
    if len(raw) > MAX_TEXT:
        raise BadParam(f"{name} is longer than {MAX_TEXT} characters")
    if "\x00" in raw:
        raise BadParam(f"{name} must not contain NUL characters")
    return raw


def statuses(request: Request, default: tuple[str, ...] = ()) -> tuple[str, ...]:
    """``status`` given once per value or comma-separated; each must be a known status."""
    values = [v for raw in request.query_params.getlist("status") for v in raw.split(",") if v.strip()]
    if not values:
        return default
    unknown = sorted({v.strip() for v in values} - set(STATUSES))
    if unknown:
        raise BadParam(f"unknown status {unknown[0][:40]!r}; choose from {', '.join(STATUSES)}")
    return tuple(dict.fromkeys(v.strip() for v in values))


def page(request: Request, default_limit: int = 100) -> tuple[int, int]:
    """``(limit, offset)`` with ``1 ≤ limit ≤ MAX_LIMIT`` and ``offset ≥ 0``."""
    limit = integer(request, "limit", default_limit, lo=1, hi=MAX_LIMIT)
    offset = integer(request, "offset", 0, lo=0, hi=MAX_OFFSET)
    assert limit is not None and offset is not None
    return limit, offset


def run_id(request: Request) -> int | None:
    """The optional ``run`` filter."""
    return integer(request, "run", None, lo=1, hi=2**63 - 1)
