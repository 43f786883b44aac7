"""``docmill bench`` (measure strategies) and ``docmill plan`` (project a run to N documents)."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

from docmill.errors import ConfigError

if TYPE_CHECKING:
    from docmill.bench.harness import MatrixSpec, ProgressHook
    from docmill.bench.session import BenchResult

    Launch = Callable[[ProgressHook, float | None], BenchResult]

T = TypeVar("T")


def _split(text: str | None, cast: Callable[[str], T], option: str) -> tuple[T, ...] | None:
    """``"1,2,4"`` → (1, 2, 4); a bad item is a one-line ConfigError naming the option."""
    if text is None:
        return None
    try:
        return tuple(cast(item.strip()) for item in text.split(",") if item.strip())
    except ValueError as exc:
        raise ConfigError(f"{option}: cannot read {text!r} ({exc})") from exc


def _size_kb(text: str) -> int:
    """``10``, ``10k``, ``10KB``, ``1MB`` → KiB."""
    value = text.lower().removesuffix("b")
    if value.endswith("m"):
        return int(float(value[:-1]) * 1024)
    return int(float(value.removesuffix("k")))


def bench(
    quick: Annotated[
        bool, typer.Option("--quick", help="A small matrix that finishes in under 2 minutes.")
    ] = False,
    strategies: Annotated[
        str | None, typer.Option(help="Comma list; default: every registered strategy.")
    ] = None,
    workers: Annotated[str | None, typer.Option(help="Comma list of worker counts [1,2,4,8].")] = None,
    sizes: Annotated[str | None, typer.Option(help="Document sizes, e.g. 10k,100k,500k.")] = None,
    complexity: Annotated[str | None, typer.Option(help="light,medium,heavy")] = None,
    workloads: Annotated[
        str | None, typer.Option(help="cpu,io,mixed (and io-sim: latency without HTTP).")
    ] = None,
    repeat: Annotated[int | None, typer.Option(help="Repetitions per case [3].")] = None,
    docs: Annotated[int | None, typer.Option(help="Documents per case (default: calibrated).")] = None,
    cell_seconds: Annotated[
        float | None, typer.Option(help="Sequential seconds per case when calibrating.")
    ] = None,
    peers: Annotated[bool, typer.Option(help="Add multiprocessing.Pool, joblib and mpire rows.")] = True,
    warmup: Annotated[
        bool | None, typer.Option("--warmup/--no-warmup", help="Unmeasured run before each case.")
    ] = None,
    corpus: Annotated[Path | None, typer.Option(help="Benchmark this real folder (extraction).")] = None,
    classifier: Annotated[str | None, typer.Option(help="With --corpus: classifier spec to add.")] = None,
    labels: Annotated[Path | None, typer.Option(help="Labels file for --classifier.")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the synthetic documents.")] = 0,
    out: Annotated[Path, typer.Option(help="Results folder; a run writes OUT/<run-id>/.")] = Path("results"),
    max_minutes: Annotated[
        float | None, typer.Option(help="Start no case after this many minutes; report what was measured.")
    ] = None,
    resume: Annotated[
        Path | None,
        typer.Option(help="Finish the stopped run results/<run-id>: measure the cases its raw.csv lacks."),
    ] = None,
) -> None:
    """Measure every strategy over a matrix of workers, sizes, complexities and workloads."""
    from docmill.bench.harness import MatrixSpec
    from docmill.bench.session import QUICK, default_strategies, resolve_strategies

    if max_minutes is not None and max_minutes <= 0:
        raise ConfigError(f"--max-minutes must be > 0, got {max_minutes:g}")
    if resume is not None:
        matrix = (strategies, workers, sizes, complexity, workloads, repeat, docs, cell_seconds, corpus)
        if quick or any(v is not None for v in (*matrix, classifier, labels, warmup)):
            raise ConfigError("--resume: the matrix is the stopped run's (run.json); give no matrix options")
        _resume_with_progress(resume, max_minutes)
        return
    names = _split(strategies, str, "--strategies") or tuple(default_strategies(peers=peers))
    chosen, skipped = resolve_strategies(names)
    fields = dict(QUICK) if quick else {}
    given = {
        "workers": _split(workers, int, "--workers"),
        "sizes_kb": _split(sizes, _size_kb, "--sizes"),
        "complexities": _split(complexity, str, "--complexity"),
        "workloads": _split(workloads, str, "--workloads"),
        "repeat": repeat,
        "docs": docs,
        "cell_seconds": cell_seconds,
        "corpus": str(corpus) if corpus else None,
        "classifier": classifier,
        "warmup": warmup,
    }
    fields.update({k: v for k, v in given.items() if v is not None})
    settings = {"labels": str(labels)} if labels else {}
    spec = MatrixSpec(strategies=chosen, seed=seed, settings=settings, **fields)
    _run_with_progress(spec, out, skipped, max_minutes)


def _label(case: object, row: object) -> str:
    from docmill.bench.harness import BenchCase, BenchRow

    assert isinstance(case, BenchCase) and isinstance(row, BenchRow)
    rate = "failed" if row.error else f"{row.docs_per_s:,.1f} docs/s"
    return f"{case.workload} {case.size_kb}KB {case.complexity} {case.strategy}×{case.workers}: {rate}"


def _run_with_progress(
    spec: MatrixSpec, out: Path, skipped: dict[str, str], max_minutes: float | None
) -> None:
    from docmill.bench.session import run_bench

    def launch(hook: ProgressHook, end: float | None) -> BenchResult:
        return run_bench(spec, out, skipped=skipped, on_row=hook, deadline=end)

    result = _with_progress(spec, 0, max_minutes, launch)
    _finished(result.folder, skipped, len(result.rows), spec.n_cases())


def _resume_with_progress(folder: Path, max_minutes: float | None) -> None:
    from docmill.bench.session import load_run, resume_bench

    spec, skipped, rows = load_run(folder)
    result = _with_progress(
        spec, len(rows), max_minutes, lambda hook, end: resume_bench(folder, on_row=hook, deadline=end)
    )
    _finished(result.folder, skipped, len(result.rows), spec.n_cases())


def _with_progress(spec: MatrixSpec, already: int, max_minutes: float | None, launch: Launch) -> BenchResult:
    """``launch(on_row, deadline)`` with a bar on a terminal; elsewhere (a file, a CI log) one
    flushed line per case. ``already``: cases measured by the run being resumed."""
    import sys

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from docmill.bench.harness import BenchCase, BenchRow
    from docmill.bench.session import expected_seconds
    from docmill.clock import SYSTEM_CLOCK

    total = spec.n_cases()
    left = max(0, total - already)
    limit = f"; stopping after {max_minutes:g} min" if max_minutes else ""
    expected = expected_seconds(spec) * left / max(1, total)
    about = f"{expected / 60:.0f} min" if expected >= 90 else f"{expected:.0f} s"
    resumed = f" ({already} measured before)" if already else ""
    typer.echo(f"bench: {total} cases{resumed}, expected about {about}{limit}")
    deadline = SYSTEM_CLOCK.monotonic() + 60 * max_minutes if max_minutes else None
    done = [already]

    def line(case: BenchCase, row: BenchRow) -> None:
        done[0] += 1
        typer.echo(f"[{done[0]}/{total}] {_label(case, row)}")
        sys.stdout.flush()

    if not sys.stdout.isatty():
        return launch(line, deadline)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, transient=False) as progress:
        task = progress.add_task("bench", total=total, completed=already)

        def advance(case: BenchCase, row: BenchRow) -> None:
            progress.update(task, advance=1, description=_label(case, row))

        return launch(advance, deadline)


def _finished(folder: Path, skipped: dict[str, str], measured: int, total: int) -> None:
    for name, why in skipped.items():
        typer.echo(f"skipped {name}: {why}", err=True)
    if measured < total:
        typer.echo(f"measured {measured} of {total} cases (finish with --resume {folder})", err=True)
    typer.echo(f"wrote {folder}/report.md, raw.csv, summary.csv, plots/")


def plan(
    docs: Annotated[int, typer.Option(help="Documents to project to.")],
    sample: Annotated[Path | None, typer.Option(help="Measure the real pipeline on this folder.")] = None,
    from_run: Annotated[Path | None, typer.Option("--from", help="Read costs from results/<run-id>.")] = None,
    deadline: Annotated[str | None, typer.Option(help="e.g. 7d, 12h, 90m.")] = None,
    rpm: Annotated[float | None, typer.Option(help="LLM requests per minute allowed.")] = None,
    tpm: Annotated[float | None, typer.Option(help="LLM tokens per minute allowed.")] = None,
    price_in: Annotated[float, typer.Option(help="USD per 1M input tokens.")] = 0.0,
    price_out: Annotated[float, typer.Option(help="USD per 1M output tokens.")] = 0.0,
    budget: Annotated[float | None, typer.Option(help="USD available.")] = None,
    llm: Annotated[
        bool | None,
        typer.Option(
            "--llm/--no-llm",
            help="Count one LLM request per document [yes; with --classifier: whether it is llm].",
        ),
    ] = None,
    latency: Annotated[float, typer.Option(help="Seconds per LLM request.")] = 1.0,
    hosts: Annotated[int, typer.Option(help="Hosts to project for.")] = 1,
    hosts_cores: Annotated[int | None, typer.Option(help="Cores per host [this machine's].")] = None,
    hosts_memory_gb: Annotated[float | None, typer.Option(help="Memory per host [this machine's].")] = None,
    strategies: Annotated[str | None, typer.Option(help="Strategies to measure with --sample.")] = None,
    classifier: Annotated[
        str | None, typer.Option(help="The run's classifier: local ones are measured, llm is modelled.")
    ] = None,
    labels: Annotated[Path | None, typer.Option(help="Labels file for --classifier.")] = None,
    cell: Annotated[str | None, typer.Option(help="With --from: workload:size:complexity to use.")] = None,
    pages_per_doc: Annotated[
        float | None, typer.Option(help="Project documents of this many pages (page costs from --sample).")
    ] = None,
    batch_turnaround: Annotated[
        str, typer.Option(help="LLM through the Batch API: the provider's turnaround, at most (24h).")
    ] = "24h",
    batch_queue_tokens: Annotated[
        float | None, typer.Option(help="Tokens the provider lets wait in batches at once (your tier).")
    ] = None,
    tasks_per_request: Annotated[
        str, typer.Option(help="With a --labels file of tasks: all (one request) or one (per task).")
    ] = "all",
) -> None:
    """Project wall time, workers/hosts, LLM rate and cost of a run over DOCS documents."""
    from docmill.bench.plan import PlanInputs, parse_duration, plan_report
    from docmill.bench.plan_tasks import asked, measured_with, request_line
    from docmill.bench.profile import measure_profile, profile_from_run

    if (sample is None) == (from_run is None):
        raise ConfigError("give exactly one of --sample DIR or --from results/<run-id>")
    turnaround = parse_duration(batch_turnaround)
    requests = asked(labels, classifier, llm, tasks_per_request)  # the labels file's tasks count
    inputs = PlanInputs(  # validated before any measuring starts
        docs=docs,
        deadline_s=parse_duration(deadline) if deadline else None,
        rpm=rpm,
        tpm=tpm,
        price_in=price_in,
        price_out=price_out,
        budget=budget,
        llm=requests.requests > 0,
        requests_per_doc=max(1, requests.requests),
        prompt_tokens=requests.prompt_tokens,
        output_tokens=requests.output_tokens,
        llm_latency_s=latency,
        hosts=hosts,
        cores=hosts_cores,
        memory_gb=hosts_memory_gb,
        pages_per_doc=pages_per_doc,
    )
    if sample is not None:
        names = _split(strategies, str, "--strategies")
        with tempfile.TemporaryDirectory(prefix="docmill-plan-") as folder:
            local, settings = measured_with(labels, classifier, requests, Path(folder))
            profile = measure_profile(
                sample, strategies=names, classifier=local, settings=settings, cores=hosts_cores
            )
    else:
        assert from_run is not None
        profile = profile_from_run(from_run, cell=cell)
    typer.echo(plan_report(profile, inputs))
    if line := request_line(requests, tasks_per_request):
        typer.echo(line)
    from docmill.bench.plan_batch import compare, comparison_lines

    found = compare(profile, inputs, turnaround_s=turnaround, queue_tokens=batch_queue_tokens)
    typer.echo("\n".join(comparison_lines(found)))


def register(app: typer.Typer) -> None:
    app.command()(bench)
    app.command()(plan)


__all__: Sequence[str] = ["bench", "plan", "register"]
