"""``docmill run``: build a RunConfig from docmill.yaml and the flags, and run it. No logic of its own.

Each flag that sets a setting is spelled once, in ``FLAGS``: its parameter name → the dotted key of
the setting (``rpm`` → ``llm.rpm``). A test checks that every key exists in ``RunConfig``'s schema,
with the flag's type, and that every parameter of ``run_command`` is a flag of the table or one of
``NOT_SETTINGS``. The settings are checked (``docmill.settings``) before any work starts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from docmill.config import RunConfig
from docmill.errors import AllFailedError, BudgetExceededError, RunStoppedError
from docmill.progress import make_reporter

_Opt = typer.Option

FLAGS: dict[str, str] = {
    "source": "source", "strategy": "strategy", "workers": "workers", "classifier": "classifier",
    "labels": "labels", "db": "db", "timeout": "timeout", "max_bytes": "max_bytes", "include": "include",
    "exclude": "exclude", "retry_failed": "retry_failed", "fresh": "fresh", "max_cost": "max_cost",
    "commit_every": "journal.commit_every", "commit_seconds": "journal.commit_seconds",
    "quarantine_after": "journal.quarantine_after", "progress": "progress", "base_url": "llm.base_url",
    "model": "llm.model", "rpm": "llm.rpm", "tpm": "llm.tpm", "broker": "broker", "queue": "queue",
    "ocr": "extract.ocr", "ocr_lang": "extract.ocr_lang", "ocr_dpi": "extract.ocr_dpi",
    "ocr_page_seconds": "extract.ocr_page_seconds", "ocr_min_chars": "extract.ocr_min_chars",
    "step": "steps",
}  # fmt: skip
NOT_SETTINGS = ("config", "no_parallel", "explain", "batch")  # parameters of the command, not of the run


def run_command(
    source: Annotated[
        str | None, typer.Argument(help="Folder, .jsonl file, or @paths.txt (a list of files).")
    ] = None,
    config: Annotated[Path | None, _Opt("--config", help="YAML settings (default ./docmill.yaml).")] = None,
    strategy: Annotated[str | None, _Opt("--strategy", "-s", help="Parallelization strategy.")] = None,
    workers: Annotated[int | None, _Opt("--workers", "-w", help="Degree of parallelism.")] = None,
    no_parallel: Annotated[bool, _Opt("--no-parallel", help="One document at a time (sequential).")] = False,
    classifier: Annotated[
        str | None, _Opt("--classifier", "-c", help="keywords | model:FILE | llm | none")
    ] = None,
    labels: Annotated[str | None, _Opt(help="Labels file (default SOURCE/labels.yaml).")] = None,
    db: Annotated[str | None, _Opt(help="Journal: a SQLite file or postgresql:// URL.")] = None,
    timeout: Annotated[float | None, _Opt(help="Seconds allowed per document.")] = None,
    max_bytes: Annotated[int | None, _Opt(help="Skip (fail) files larger than this.")] = None,
    include: Annotated[list[str] | None, _Opt(help="Glob of files to take (repeatable).")] = None,
    exclude: Annotated[list[str] | None, _Opt(help="Glob of files to leave out (repeatable).")] = None,
    retry_failed: Annotated[bool, _Opt("--retry-failed", help="Retry quarantined documents too.")] = False,
    fresh: Annotated[
        bool, _Opt("--fresh", help="Forget earlier results for this source and pipeline.")
    ] = False,
    max_cost: Annotated[float | None, _Opt(help="Stop cleanly once this much (USD) is spent.")] = None,
    commit_every: Annotated[int | None, _Opt(help="Journal batch size (documents).")] = None,
    commit_seconds: Annotated[float | None, _Opt(help="Journal batch age limit (seconds).")] = None,
    quarantine_after: Annotated[int | None, _Opt(help="Failures before a document is set aside.")] = None,
    progress: Annotated[str | None, _Opt(help="auto | rich | log | none")] = None,
    base_url: Annotated[str | None, _Opt(help="LLM endpoint (OpenAI, Ollama or Anthropic).")] = None,
    model: Annotated[str | None, _Opt(help="LLM model name.")] = None,
    rpm: Annotated[float | None, _Opt(help="LLM requests per minute allowed.")] = None,
    tpm: Annotated[float | None, _Opt(help="LLM tokens per minute allowed.")] = None,
    broker: Annotated[str | None, _Opt(help="Celery strategy: broker URL (default $DOCMILL_BROKER).")] = None,
    queue: Annotated[
        str | None, _Opt(help="Celery strategy: queue its workers serve (default $DOCMILL_QUEUE).")
    ] = None,
    ocr: Annotated[str | None, _Opt(help="auto | always | never: OCR scanned pages and images.")] = None,
    ocr_lang: Annotated[str | None, _Opt(help="Tesseract languages, e.g. eng+deu.")] = None,
    ocr_dpi: Annotated[int | None, _Opt(help="Resolution pages are rendered at for OCR.")] = None,
    ocr_page_seconds: Annotated[float | None, _Opt(help="Seconds allowed per OCRed page.")] = None,
    ocr_min_chars: Annotated[
        int | None, _Opt(help="A PDF page with fewer characters in its text layer is OCRed.")
    ] = None,
    step: Annotated[
        list[str] | None, _Opt(help="Your own step after the classifier: module:Class (repeatable).")
    ] = None,
    explain: Annotated[bool, _Opt("--explain", help="Say which strategy ran and why (auto).")] = False,
    batch: Annotated[
        bool, _Opt("--batch", help="LLM: through the provider's Batch API, at its price (llm.mode: batch).")
    ] = False,
) -> None:
    """Classify every document under SOURCE; resumes where an earlier run stopped."""
    from docmill.runner import run_config

    given = {name: value for name, value in locals().items() if name in FLAGS}  # the parameters: FLAGS' keys
    if no_parallel:
        given["strategy"] = "sequential"
    changes = overrides(given)
    if batch:
        changes.setdefault("llm", {})["mode"] = "batch"
    settings = RunConfig.load(config, **changes)
    result = run_config(settings, reporter=make_reporter(settings.progress))
    if explain:
        typer.echo(f"strategy: {result.strategy}", err=True)
        if result.explanation:
            typer.echo(result.explanation, err=True)
    if result.stopped == "interrupted":
        raise typer.Exit(130)
    if result.stopped == "max-cost":
        raise BudgetExceededError(
            f"spending limit ${settings.cost_limit:g} reached (spent ${result.stats.cost:.4f}); "
            "run again with a higher --max-cost to finish"
        )
    if result.stopped == "endpoint":
        raise RunStoppedError(f"run stopped: {result.reason}; run again once it is back to finish")
    stats = result.stats
    if stats.done and not stats.ok:
        raise AllFailedError(f"all {stats.done} documents failed; see: docmill failures --db {settings.db}")


def overrides(flags: dict[str, Any]) -> dict[str, Any]:
    """The flags given (not None, not empty, not False) as settings: ``{"llm": {"rpm": 5}, …}``."""
    settings: dict[str, Any] = {}
    for name, value in flags.items():
        if value is None or value is False or value == []:
            continue
        section, _, key = FLAGS[name].rpartition(".")
        (settings.setdefault(section, {}) if section else settings)[key] = value
    return settings


def register(app: typer.Typer) -> None:
    app.command("run")(run_command)
