"""What the LLM spent on each task of a run, as far as the requests say.

With ``llm.tasks_per_request: one`` every LLM task of a document has requests of its own: their
count and cost are recorded beside the task's answer (``tasks.<name>.requests``/``cost``) and the
fields' beside them (``fields_usage``), so each task's spending is known and summed here. With one
request for all (the default) the request serves every LLM task and the fields at once (the result's
``llm_asked`` names them): its cost is not split between them (any split would be made up); it is
reported once, with what it served. A request that served one task alone is that task's.

A user step's calls (``steps.<Class>``) are not the tasks': they are left out of the shared cost.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from docmill.model.tasks import recorded_fields, recorded_tasks

FIELDS = "fields"  # the fields' request, beside the tasks


def task_costs(journal: Any, run: Any) -> dict[str, Any]:
    """``{"tasks": {name: {"requests", "cost"}}, "shared": {"asked", "requests", "cost"}}`` for
    ``run`` (a ``RunRecord`` or None), each part only when there is one; ``{}`` for a run without
    tasks or fields, or whose tasks made no LLM request."""
    from docmill.journal.base import Query

    configs = [run.config] if run is not None else []
    if not (recorded_tasks(configs) or recorded_fields(configs)):
        return {}
    own: dict[str, dict[str, Any]] = {}
    shared: dict[str, Any] = {"asked": {}, "requests": 0, "cost": 0.0}
    for record in journal.iter_documents(Query(run_id=run.id)):
        _count(record.result, own, shared)
    found: dict[str, Any] = {"tasks": own} if own else {}
    if shared["requests"]:
        found["shared"] = {**shared, "asked": list(shared["asked"])}
    return found


def _count(result: Mapping[str, Any], own: dict[str, dict[str, Any]], shared: dict[str, Any]) -> None:
    """Add one document's requests and cost to the task that made them, or to the shared request."""
    answers = [(name, a) for name, a in (result.get("tasks") or {}).items() if isinstance(a, Mapping)]
    apart = [(name, a) for name, a in answers if "cost" in a]
    if isinstance(result.get("fields_usage"), Mapping):
        apart.append((FIELDS, result["fields_usage"]))
    for name, usage in apart:
        _add(own, name, usage)
    asked = [str(name) for name in result.get("llm_asked") or ()]
    if apart or not asked:
        return
    usage = _tasks_usage(result)
    if len(asked) == 1:
        _add(own, asked[0], usage)
        return
    shared["asked"].update(dict.fromkeys(asked))
    shared["requests"] += usage["requests"]
    shared["cost"] += usage["cost"]


def _tasks_usage(result: Mapping[str, Any]) -> dict[str, Any]:
    """The document's requests and cost, less those of user steps."""
    steps = [s for s in (result.get("steps") or {}).values() if isinstance(s, Mapping)]
    requests = int(result.get("requests") or 0) - sum(int(s.get("requests") or 0) for s in steps)
    cost = float(result.get("cost") or 0.0) - sum(float(s.get("cost") or 0.0) for s in steps)
    return {"requests": max(0, requests), "cost": max(0.0, cost)}


def _add(own: dict[str, dict[str, Any]], name: str, usage: Mapping[str, Any]) -> None:
    total = own.setdefault(name, {"requests": 0, "cost": 0.0})
    total["requests"] += int(usage.get("requests") or 0)
    total["cost"] += float(usage.get("cost") or 0.0)


def task_cost_line(costs: Mapping[str, Any]) -> str | None:
    """``status``'s line: each task's requests and cost, or what the one request per document served."""
    if not costs:
        return None
    parts = [
        f"{name} {used['requests']:,} requests ${used['cost']:.4f}"
        for name, used in costs.get("tasks", {}).items()
    ]
    shared = costs.get("shared")
    if shared:
        served = _listed(shared["asked"])
        parts.append(
            f"one request per document serves {served}: {shared['requests']:,} requests "
            f"${shared['cost']:.4f} (not split by task)"
        )
    return "by task: " + "; ".join(parts)


def _listed(names: list[str]) -> str:
    words = [f"the {name}" if name == FIELDS else name for name in names]
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} and {words[-1]}"


__all__ = ["FIELDS", "task_cost_line", "task_costs"]
