"""``/metrics``: the recent runs in Prometheus text exposition format (version 0.0.4)."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from functools import partial
from typing import Any

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from docmill.clock import SYSTEM_CLOCK, Clock
from docmill.journal.base import Journal, RunRecord, Summary
from docmill.serve import views
from docmill.serve.gateway import Gateway

RECENT_RUNS = 20  # runs exported; older ones are history, not monitoring
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# name → (type, help)
FAMILIES: dict[str, tuple[str, str]] = {
    "docmill_run_info": ("gauge", "A run (value 1) with its strategy and state."),
    "docmill_run_documents": ("gauge", "Documents recorded by the run, by status."),
    "docmill_run_done": ("gauge", "Documents finished by the run."),
    "docmill_run_total": ("gauge", "Documents the run set out to process."),
    "docmill_run_docs_per_second": ("gauge", "The run's throughput."),
    "docmill_run_pages_per_second": ("gauge", "The run's throughput in PDF pages and image frames."),
    "docmill_run_cost_usd": ("gauge", "Money spent on LLM calls by the run."),
    "docmill_run_llm_requests": ("gauge", "LLM requests made by the run."),
    "docmill_run_llm_tokens": ("gauge", "LLM tokens used by the run, by direction."),
}


def _samples(run: RunRecord, summary: Summary, now: float) -> Iterator[tuple[str, dict[str, str], float]]:
    body = views.run_json(run, summary, now=now)
    labels = {"run": str(run.id)}
    yield "docmill_run_info", {**labels, "strategy": run.strategy, "state": body["state"]}, 1
    for status, count in sorted(summary.by_status.items()):
        yield "docmill_run_documents", {**labels, "status": status}, count
    progress = body["progress"]
    yield "docmill_run_done", labels, progress["done"]
    if progress["total"] is not None:
        yield "docmill_run_total", labels, progress["total"]
    yield "docmill_run_docs_per_second", labels, progress["docs_per_second"]
    if progress["pages_per_second"] is not None:
        yield "docmill_run_pages_per_second", labels, progress["pages_per_second"]
    yield from _llm_samples(body["stats"], labels)


def _llm_samples(
    stats: Mapping[str, Any], labels: dict[str, str]
) -> Iterator[tuple[str, dict[str, str], float]]:
    raw = stats.get("llm")
    llm: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
    cost = _first(stats.get("cost"), llm.get("cost"))
    if cost is not None:
        yield "docmill_run_cost_usd", labels, cost
    requests = _first(llm.get("requests"), stats.get("requests"))
    if requests is not None:
        yield "docmill_run_llm_requests", labels, requests
    for direction in ("in", "out"):
        tokens = _first(llm.get(f"tokens_{direction}"), stats.get(f"tokens_{direction}"))
        if tokens is not None:
            yield "docmill_run_llm_tokens", {**labels, "direction": direction}, tokens


def _first(*values: Any) -> float | None:
    for value in values:
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
            return float(value)
    return None


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _line(name: str, labels: Mapping[str, str], value: float) -> str:
    inner = ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items())
    return f"{name}{{{inner}}} {float(value)!r}"


def render(runs: list[tuple[RunRecord, Summary]], now: float) -> str:
    """The exposition text for ``runs``, grouped by metric family as the format requires."""
    grouped: dict[str, list[str]] = {name: [] for name in FAMILIES}
    for run, summary in runs:
        for name, labels, value in _samples(run, summary, now):
            grouped[name].append(_line(name, labels, value))
    lines = ["# HELP docmill_up 1 when the journal could be read.", "# TYPE docmill_up gauge", "docmill_up 1"]
    for name, samples in grouped.items():
        kind, help_text = FAMILIES[name]
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}", *samples]
    return "\n".join(lines) + "\n"


def _recent(journal: Journal) -> list[RunRecord]:
    return sorted(journal.runs(), key=lambda r: r.id, reverse=True)[:RECENT_RUNS]


def _summary(journal: Journal, *, run_id: int) -> Summary:
    return journal.summary(run_id)


def endpoint(gateway: Gateway, clock: Clock = SYSTEM_CLOCK) -> Any:
    """The ``/metrics`` handler."""

    async def metrics(request: Request) -> Response:
        runs = await gateway.call(_recent)
        summaries = [
            await gateway.cached(("summary", run.id), partial(_summary, run_id=run.id)) for run in runs
        ]
        return PlainTextResponse(
            render(list(zip(runs, summaries, strict=True)), clock.wall()), media_type=CONTENT_TYPE
        )

    return metrics
