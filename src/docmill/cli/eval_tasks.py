"""``docmill eval`` of a run that answered tasks, against a truth CSV with a column per task."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from docmill.journal.base import Journal
from docmill.model.task_eval import MultiReport, evaluate_task, has_task_columns, read_task_truth, run_answers


def eval_tasks(journal: Journal, run_id: int | None, truth: Path, *, as_json: bool) -> bool:
    """Score each task of the run with a truth column; False (nothing printed) when there is none."""
    run, answers = run_answers(journal, run_id)
    if not answers or not has_task_columns(truth, answers):
        return False
    declared = run.config.get("tasks") or {}
    expected = read_task_truth(truth, answers)
    reports = {
        task: evaluate_task(cells, answers[task], multi=bool(declared[task].get("multi")))
        for task, cells in expected.items()
    }
    if as_json:
        typer.echo(json.dumps({"tasks": {t: r.to_json() for t, r in reports.items()}}, sort_keys=True))
    else:
        for task, report in reports.items():
            _show(task, report)
    return True


def _show(task: str, report: Any) -> None:
    from docmill.cli.train import confusion_table, report_table

    console = Console()
    if isinstance(report, MultiReport):
        console.print(_multi_table(report, f"{task}: {report.n} documents"))
        figures = f"micro-F1: {report.micro_f1:.4f}  macro-F1: {report.macro_f1:.4f}"
        typer.echo(f"{task} {figures}  exact match: {report.exact_match:.4f}  (n={report.n})")
    else:
        console.print(report_table(report, f"{task}: {report.n} documents"))
        console.print(confusion_table(report))
        typer.echo(f"{task} accuracy: {report.accuracy:.4f}  macro-F1: {report.macro_f1:.4f}  (n={report.n})")
    typer.echo(", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in report.missing.items()))


def _multi_table(report: MultiReport, caption: str) -> Table:
    table = Table("label", "precision", "recall", "F1", "support", caption=caption)
    for label, s in report.per_label.items():
        table.add_row(label, f"{s.precision:.3f}", f"{s.recall:.3f}", f"{s.f1:.3f}", str(s.support))
    return table
