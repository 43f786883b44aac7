"""``docmill run``: build a RunConfig from docmill.yaml and the flags, and run it. No logic of its own."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from docmill.config import RunConfig
from docmill.errors import BudgetExceededError
from docmill.progress import make_reporter

_Opt = typer.Option


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
    base_url: Annotated[str | None, _Opt(help="LLM endpoint (OpenAI-compatible or Ollama).")] = None,
    model: Annotated[str | None, _Opt(help="LLM model name.")] = None,
    rpm: Annotated[float | None, _Opt(help="LLM requests per minute allowed.")] = None,
    tpm: Annotated[float | None, _Opt(help="LLM tokens per minute allowed.")] = None,
    broker: Annotated[str | None, _Opt(help="Celery strategy: broker URL (default $DOCMILL_BROKER).")] = None,
    queue: Annotated[
        str | None, _Opt(help="Celery strategy: queue its workers serve (default $DOCMILL_QUEUE).")
    ] = None,
    explain: Annotated[bool, _Opt("--explain", help="Say which strategy ran and why (auto).")] = False,
) -> None:
    """Classify every document under SOURCE; resumes where an earlier run stopped."""
    from docmill.runner import run_config

    llm = {
        k: v
        for k, v in {"base_url": base_url, "model": model, "rpm": rpm, "tpm": tpm}.items()
        if v is not None
    }
    overrides: dict[str, Any] = {
        "source": source, "strategy": "sequential" if no_parallel else strategy, "workers": workers,
        "classifier": classifier, "labels": labels, "db": db, "timeout": timeout, "max_bytes": max_bytes,
        "include": include or None, "exclude": exclude or None, "retry_failed": retry_failed or None,
        "fresh": fresh or None, "max_cost": max_cost, "commit_every": commit_every,
        "commit_seconds": commit_seconds, "quarantine_after": quarantine_after, "progress": progress,
        "broker": broker, "queue": queue,
    }  # fmt: skip
    settings = RunConfig.load(config, **overrides)
    if llm:
        settings = settings.replace(llm={**settings.llm, **llm})
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


def register(app: typer.Typer) -> None:
    app.command("run")(run_command)
