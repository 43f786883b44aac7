"""``docmill train`` (labelled corpus → model file) and ``docmill eval`` (journal labels vs truth)."""

from __future__ import annotations

import csv
import json
import statistics
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from docmill.model.evaluation import Report

if TYPE_CHECKING:
    from docmill.model.training import Corpus

_Opt = typer.Option
_Truth = Annotated[
    Path, _Opt("--truth", "-t", help="CSV with path,label columns (paths relative to the corpus).")
]


def train_command(
    corpus: Annotated[Path, typer.Argument(help="Folder of labelled documents.")],
    truth: _Truth,
    output: Annotated[Path, _Opt("--output", "-o", help="Model file to write.")] = Path("docmill.model"),
    holdout: Annotated[
        float, _Opt(help="Fraction held out (stratified) to score the model; 0 = none.")
    ] = 0.2,
    seed: Annotated[int, _Opt(help="Seed of the split and the model.")] = 0,
    cv: Annotated[int, _Opt(help="Also report k-fold cross-validation over the corpus (0 = skip).")] = 0,
    strategy: Annotated[
        str, _Opt("--strategy", "-s", help="Strategy used to extract the text.")
    ] = "processes",
    workers: Annotated[int | None, _Opt("--workers", "-w", help="Extraction workers.")] = None,
    holdout_truth: Annotated[
        Path | None, _Opt(help="Write the held-out documents as a truth CSV (to `docmill eval` them later).")
    ] = None,
) -> None:
    """Train the tf-idf + linear model on CORPUS labelled by --truth; print held-out accuracy and macro-F1."""
    from docmill.model import training
    from docmill.model.evaluation import read_truth

    console = Console(stderr=True)
    labels = read_truth(truth)
    data = training.load_corpus(corpus, labels, strategy=strategy, workers=workers)
    _say_corpus(console, data)
    trained = training.train(data, holdout=holdout, seed=seed)
    training.save(trained, data, output, seed=seed)
    if holdout_truth is not None:
        _write_truth(holdout_truth, training.holdout_rows(trained, data))
    if trained.report is not None:
        Console().print(report_table(trained.report, f"held out: {len(trained.test_paths)} documents"))
        typer.echo(_figures("held-out", trained.report))
    if cv:
        reports = training.cross_validate(data, folds=cv, seed=seed)
        typer.echo(_cv_line(cv, reports))
    typer.echo(f"model: {output} ({len(trained.train_paths)} training documents)")


def eval_command(
    truth: _Truth,
    db: Annotated[str, _Opt("--db", help="Journal: SQLite file or postgresql:// URL.")] = "docmill.db",
    run: Annotated[int | None, _Opt("--run", help="A run id (default: the latest run).")] = None,
    as_json: Annotated[bool, _Opt("--json", help="Print one JSON object.")] = False,
) -> None:
    """Score the labels of a run (the latest by default) against a truth CSV; a run that answered
    tasks, against a truth CSV with a column per task (``topic`` or ``label_topic``), each task."""
    from docmill.cli.eval_tasks import eval_tasks
    from docmill.cli.inspect import open_existing
    from docmill.model.evaluation import evaluate, journal_predictions, read_truth

    journal = open_existing(db)
    try:
        if eval_tasks(journal, run, truth, as_json=as_json):
            return
        expected = read_truth(truth)
        predicted = journal_predictions(journal, run_id=run)
    finally:
        journal.close()
    report = evaluate(expected, predicted)
    if as_json:
        typer.echo(json.dumps(report.to_json(), sort_keys=True))
        return
    Console().print(report_table(report, f"{report.n} documents"))
    Console().print(confusion_table(report))
    typer.echo(_figures("eval", report))
    typer.echo(", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in report.missing.items()))


def report_table(report: Report, caption: str) -> Table:
    """Per-label precision, recall, F1 and support."""
    table = Table("label", "precision", "recall", "F1", "support", caption=caption)
    for label, s in report.per_label.items():
        table.add_row(label, f"{s.precision:.3f}", f"{s.recall:.3f}", f"{s.f1:.3f}", str(s.support))
    return table


def confusion_table(report: Report) -> Table:
    """Rows: true label; columns: predicted label."""
    table = Table("true \\ predicted", *report.labels, title="confusion")
    for label, row in zip(report.labels, report.confusion, strict=True):
        table.add_row(label, *(str(n) if n else "·" for n in row))
    return table


def _figures(name: str, report: Report) -> str:
    return f"{name} accuracy: {report.accuracy:.4f}  macro-F1: {report.macro_f1:.4f}  (n={report.n})"


def _cv_line(folds: int, reports: list[Report]) -> str:
    acc = [r.accuracy for r in reports]
    f1 = [r.macro_f1 for r in reports]
    return (
        f"{folds}-fold cross-validation accuracy: {statistics.mean(acc):.4f} ± {statistics.pstdev(acc):.4f}"
        f"  macro-F1: {statistics.mean(f1):.4f} ± {statistics.pstdev(f1):.4f}"
    )


def _say_corpus(console: Console, data: Corpus) -> None:
    console.print(f"corpus: {len(data.paths)} documents, {len(set(data.labels))} labels", highlight=False)
    if data.unlabelled:
        console.print(f"ignored: {data.unlabelled} file(s) not in the truth file", highlight=False)
    for path, why in list(data.skipped.items())[:5]:
        console.print(f"skipped: {path}: {why}", highlight=False, markup=False)
    if len(data.skipped) > 5:
        console.print(f"skipped: … {len(data.skipped) - 5} more", highlight=False)


def _write_truth(path: Path, rows: Iterable[tuple[str, str]]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "label"])
        writer.writerows(rows)


def register(app: typer.Typer) -> None:
    app.command("train")(train_command)
    app.command("eval")(eval_command)
