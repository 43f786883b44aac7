"""``docmill status``, ``docmill export`` and ``docmill failures``: read the journal, never write it.

They work while a run is writing (WAL readers see the last committed batch) and against any journal
``open_journal`` understands (a SQLite file, a ``postgresql://`` URL). They open it read-only
(``open_journal(db, read_only=True)``), so a journal the user may only read is enough, and they leave
no file beside it.
"""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import click
import typer

from docmill.batch.report import batch_lines, batch_summary
from docmill.clock import SYSTEM_CLOCK
from docmill.errors import ConfigError
from docmill.journal import open_journal
from docmill.journal.base import DocumentRecord, Journal, Query, RunRecord
from docmill.journal.policy import FAILURES
from docmill.progress import format_seconds

_Db = Annotated[str, typer.Option("--db", help="Journal: SQLite file or postgresql:// URL.")]
_STALE = 10.0  # seconds without a heartbeat (sent every ~1 s) before status calls a run stale
_Run = Annotated[int | None, typer.Option("--run", help="A run id (default: the latest run).")]


def open_existing(db: str) -> Journal:
    """Open a journal read-only; a missing SQLite file is a one-line error, not a new empty journal."""
    return open_journal(db, read_only=True)


def check_run(journal: Journal, run_id: int | None) -> None:
    if run_id is not None and journal.run(run_id) is None:
        raise ConfigError(f"no run {run_id} in this journal")


def status_data(journal: Journal, run_id: int | None) -> dict[str, Any]:
    """Everything ``status`` shows, as one JSON-ready object."""
    run = journal.run(run_id) if run_id is not None else next(iter(journal.runs()), None)
    if run_id is not None and run is None:
        raise ConfigError(f"no run {run_id} in this journal")
    summary = journal.summary(run.id if run else None)
    stats = dict(run.stats) if run else {}
    failures = sum(n for s, n in summary.by_status.items() if s in FAILURES)
    return {
        "run": None if run is None else _run_fields(run),
        "documents": summary.total,
        "total": run.total if run else None,
        "by_status": dict(summary.by_status),
        "by_label": dict(summary.by_label),
        "by_task": _task_counts(journal, run),
        "cost_by_step": _step_costs(journal, run) if stats.get("cost") else {},
        "cost_by_task": _task_costs(journal, run),
        "failures": failures,
        "docs_per_second": stats.get("docs_per_second", round(summary.docs_per_second, 3)),
        "pages": summary.pages,
        "pages_per_second": round(summary.pages_per_second, 3),
        "cost": stats.get("cost", 0.0),
        "batches": batch_summary(journal, run),
        "live": stats,
        **_liveness(run.state if run else None, run.heartbeat if run else None, stats, summary.total),
    }  # fmt: skip


def _task_counts(journal: Journal, run: RunRecord | None) -> dict[str, dict[str, int]]:
    from docmill.model.tasks import task_counts

    return task_counts(journal, run)


def _task_costs(journal: Journal, run: RunRecord | None) -> dict[str, Any]:
    from docmill.model.task_costs import task_costs

    return task_costs(journal, run)


def _step_costs(journal: Journal, run: RunRecord | None) -> dict[str, float]:
    from docmill.processors.steps import step_costs

    return step_costs(journal, run)


def _liveness(state: str | None, heartbeat: float | None, stats: dict[str, Any], done: int) -> dict[str, Any]:
    """For a running run: seconds since its last heartbeat, and the ETA at its current rate."""
    if state != "running":
        return {"heartbeat_age": None, "eta_seconds": None}
    age = None if heartbeat is None else max(0.0, SYSTEM_CLOCK.wall() - heartbeat)
    rate, total = stats.get("docs_per_second") or 0.0, stats.get("total")
    eta = (total - done) / rate if total and rate > 0 and total >= done else None
    return {"heartbeat_age": age, "eta_seconds": eta}


def status_lines(data: dict[str, Any]) -> list[str]:
    """``status`` for people: a few plain lines."""
    run = data["run"]
    if run is None:
        return ["the journal holds no run yet"]
    total = data["total"]
    position = f"{data['documents']}/{total}" if total else str(data["documents"])
    state = run["state"]
    age = data["heartbeat_age"]
    if age is not None and age > _STALE:
        state += f" (no heartbeat for {format_seconds(age)}: killed, or stuck)"
    eta = f" · ETA {format_seconds(data['eta_seconds'])}" if data["eta_seconds"] is not None else ""
    lines = [
        f"run {run['id']} · {state} · {_strategy(run, data['live'])} · {run['source']}",
        f"documents {position} · {data['docs_per_second']:.1f} docs/s · failures {data['failures']}{eta}",
        "status: " + (", ".join(f"{k} {v}" for k, v in sorted(data["by_status"].items())) or "-"),
    ]
    if data.get("pages"):
        lines.append(f"pages {data['pages']:,} · {data['pages_per_second']:.2f} pages/s")
    if data["by_label"] and not data.get("by_task"):  # with tasks: the first task's line says it
        lines.append("labels: " + ", ".join(f"{k} {v}" for k, v in sorted(data["by_label"].items())))
    for task, counts in (data.get("by_task") or {}).items():
        lines.append(f"{task}: " + (", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "-"))
    if data["cost"]:
        by_step = ", ".join(f"{k} ${v:.4f}" for k, v in (data.get("cost_by_step") or {}).items())
        lines.append(f"spent ${data['cost']:.4f}" + (f" ({by_step})" if by_step else ""))
    lines += _task_cost_lines(data.get("cost_by_task") or {})
    return lines + batch_lines(data.get("batches"))


def _task_cost_lines(costs: dict[str, Any]) -> list[str]:
    from docmill.model.task_costs import task_cost_line

    line = task_cost_line(costs)
    return [line] if line else []


def _strategy(run: dict[str, Any], live: dict[str, Any]) -> str:
    """The strategy as asked, and as it ran when that says more (what auto chose)."""
    asked = f"{run['strategy']} ×{run['workers']}"
    ran = str((live.get("executor") or {}).get("describe", ""))
    if run["strategy"] != "auto" or not ran.startswith("auto(") or ran == "auto(undecided)":
        return asked
    return f"{asked} → {ran[len('auto(') : -1]}"


def status_command(
    db: _Db = "docmill.db",
    run: _Run = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    watch: Annotated[
        bool, typer.Option("--watch", help="Refresh until the run ends (Ctrl-C to leave).")
    ] = False,
    interval: Annotated[float, typer.Option(help="Seconds between refreshes with --watch.")] = 1.0,
    runs: Annotated[bool, typer.Option("--runs", help="List every run, newest first.")] = False,
) -> None:
    """Counts by status and label, speed and failures of the latest (or given) run."""
    journal = open_existing(db)
    try:
        if runs:
            _show_runs(journal, as_json)
        elif watch:
            _watch(journal, run, as_json, interval)
        else:
            _show(status_data(journal, run), as_json)
    finally:
        journal.close()


def _show_runs(journal: Journal, as_json: bool) -> None:
    records = journal.runs()
    if as_json:
        rows = [{**_run_fields(r), "stats": dict(r.stats)} for r in records]
        typer.echo(json.dumps({"runs": rows}, default=str, ensure_ascii=False))
        return
    for r in records:
        done = r.stats.get("done", 0)
        typer.echo(f"{r.id}\t{r.state}\t{r.strategy} ×{r.workers}\t{done} processed\t{r.source}")


def _run_fields(run: RunRecord) -> dict[str, Any]:
    names = (
        "id",
        "source",
        "fingerprint",
        "strategy",
        "workers",
        "state",
        "started",
        "finished",
        "heartbeat",
    )
    return {name: getattr(run, name) for name in names} | {"total": run.total}


def _show(data: dict[str, Any], as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(data, default=str, ensure_ascii=False))
    else:
        typer.echo("\n".join(status_lines(data)))


def _watch(journal: Journal, run: int | None, as_json: bool, interval: float) -> None:
    """Re-read the journal every ``interval`` seconds until the run is no longer ``running``."""
    clear = not as_json and sys.stdout.isatty()
    while True:
        data = status_data(journal, run)
        if clear:
            click.clear()
        _show(data, as_json)
        if data["run"] is None or data["run"]["state"] != "running":
            return
        if not as_json and not clear:
            typer.echo("")
        SYSTEM_CLOCK.sleep(interval)


def export_command(
    output: Annotated[str, typer.Option("--output", "-o", help="File to write, or - for stdout.")],
    fmt: Annotated[str, typer.Option("--format", "-f", help="csv | jsonl | parquet")] = "csv",
    db: _Db = "docmill.db",
    run: _Run = None,
    status: Annotated[list[str] | None, typer.Option(help="Only these statuses (repeatable).")] = None,
    label: Annotated[str | None, typer.Option(help="Only this label.")] = None,
) -> None:
    """Write the results (path, sha256, status, label, score, error, …, label_<task> for each task of a
    labels file with tasks) as CSV, JSON Lines or Parquet."""
    from docmill.export import export, run_columns

    journal = open_existing(db)
    try:
        check_run(journal, run)
        query = Query(run_id=run, status=tuple(status or ()), label=label)
        columns = run_columns(r.config for r in journal.runs() if run is None or r.id == run)
        n = export(journal.iter_documents(query), fmt, output, columns)
    finally:
        journal.close()
    if output != "-":
        typer.echo(f"wrote {n} rows to {output}", err=True)


def failures_command(
    db: _Db = "docmill.db",
    run: _Run = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Add attempts and worker.")] = False,
) -> None:
    """Every failed, quarantined or crashed document with its reason, one line each."""
    journal = open_existing(db)
    try:
        check_run(journal, run)
        query = Query(run_id=run, status=tuple(sorted(FAILURES)))
        n = 0
        for n, record in enumerate(journal.iter_documents(query), start=1):  # noqa: B007 - n counts
            typer.echo(failure_line(record, verbose=verbose))
    finally:
        journal.close()
    print(f"{n} document(s) failed", file=sys.stderr)  # noqa: T201


def failure_line(record: DocumentRecord, *, verbose: bool = False) -> str:
    """``path<TAB>status<TAB>ErrorType: message`` (one line, whatever the message held)."""
    reason = f"{record.error_type}: {record.error_message}" if record.error_type else "(no reason recorded)"
    line = "\t".join([record.path, record.status, " ".join(reason.split())])
    if verbose:
        line += f"\tattempts={record.attempts} failures={record.failures} worker={record.worker or '-'}"
    return line


def register(app: typer.Typer) -> None:
    app.command("status")(status_command)
    app.command("export")(export_command)
    app.command("failures")(failures_command)
