"""How good is `docmill plan`? Project the man-page corpus from a 10 % sample, then run it all.

For each strategy: `measure_profile` on every 10th document (the same code as `docmill plan
--sample`), `project` to the full corpus on this machine, then the real pipeline (DirectorySource →
ExtractText) over the whole corpus with that strategy at one worker per core, in a fresh
interpreter (cold, as a user's run starts; timed from the strategy's start to its last outcome,
without journal or sinks, which the projection does not model either). Repeated, with
samples and full runs interleaved so that drifting machine load hits both alike. Goal: projected
wall time within ±15 % of the measured one.

    python benchmarks/bench_plan_check.py [--repeat 3] [--rounds 3] [--strategies sequential,processes]

`--rounds` passes over the corpus make the full run long enough to time on a shared machine.

The corpus is read from $DOCMILL_SHARED_DATA/manpages (default ../shared/data/manpages).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from docmill.bench.plan import PlanInputs, Profile, project
from docmill.bench.profile import measure_profile, repeated, timed_run
from docmill.bench.workloads import REAL_COMPLEXITY, REAL_WORKLOAD, build_job
from docmill.clock import SYSTEM_CLOCK

GOAL = 0.15


def corpus_dir() -> Path:
    env = os.environ.get("DOCMILL_SHARED_DATA")
    base = Path(env) if env else Path(__file__).resolve().parents[2] / "shared" / "data"
    folder = base / "manpages"
    if not folder.is_dir():
        raise SystemExit(f"man-page corpus not found at {folder} (set DOCMILL_SHARED_DATA)")
    return folder


def copy_sample(corpus: Path, into: Path, every: int = 10) -> int:
    files = sorted(p for p in corpus.rglob("*") if p.is_file())
    for path in files[::every]:
        shutil.copy(path, into / path.relative_to(corpus).as_posix().replace("/", "__"))
    return len(files)


def measured_wall(strategy: str, workers: int, corpus: Path, rounds: int) -> float:
    """Wall seconds of the full run in a fresh interpreter: cold, as a user's `docmill run` starts."""
    command = [
        sys.executable,
        __file__,
        "--measure",
        strategy,
        str(workers),
        str(corpus),
        "--rounds",
        str(rounds),
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=True, timeout=900)
    return float(done.stdout.strip().splitlines()[-1])


def measure_here(strategy: str, workers: int, corpus: Path, rounds: int) -> None:
    job = build_job(corpus, REAL_WORKLOAD, REAL_COMPLEXITY)
    refs = repeated(list(job.source), rounds)
    run = timed_run(strategy, workers, job, refs, SYSTEM_CLOCK)
    failed = sum(1 for o in run.outcomes if not o.status.is_success)
    print(f"{failed} of {len(refs)} failed", file=sys.stderr)
    print(run.usage.wall_seconds)


def projected_wall(profile: Profile, strategy: str, n_docs: int) -> float:
    inputs = PlanInputs(docs=n_docs, llm=False, hosts=1)
    return project(profile, profile.scaling[strategy], inputs).wall_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--strategies", default="sequential,processes,queue,batches")
    parser.add_argument("--rounds", type=int, default=3, help="passes over the corpus in the full run")
    parser.add_argument(
        "--measure", nargs=3, metavar=("STRATEGY", "WORKERS", "CORPUS"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.measure:
        measure_here(args.measure[0], int(args.measure[1]), Path(args.measure[2]), args.rounds)
        return
    strategies = args.strategies.split(",")
    corpus, cores = corpus_dir(), len(os.sched_getaffinity(0))
    projected: dict[str, list[float]] = {s: [] for s in strategies}
    measured: dict[str, list[float]] = {s: [] for s in strategies}
    with tempfile.TemporaryDirectory(prefix="docmill-plan-check-") as tmp:
        n_docs = copy_sample(corpus, Path(tmp)) * args.rounds
        for rep in range(args.repeat):
            profile = measure_profile(Path(tmp), strategies=[s for s in strategies if s != "sequential"])
            for strategy in strategies:
                if strategy in profile.scaling:
                    projected[strategy].append(projected_wall(profile, strategy, n_docs))
                workers = 1 if strategy == "sequential" else cores
                measured[strategy].append(measured_wall(strategy, workers, corpus, args.rounds))
            print(f"repetition {rep + 1}/{args.repeat} done; load average {os.getloadavg()[0]:.2f}")
    sample = profile.sample_docs
    print(
        f"\n{n_docs} documents ({args.rounds} passes over the man pages), sample {sample} (every 10th), "
        f"{cores} cores; medians of {args.repeat}"
    )
    print("| strategy | projected (s) | measured (s) | error | within ±15 % |")
    print("|---|---|---|---|---|")
    for strategy in strategies:
        if not projected[strategy]:
            print(f"| {strategy} | not measured: {profile.skipped.get(strategy, '?')} | | | |")
            continue
        p, m = statistics.median(projected[strategy]), statistics.median(measured[strategy])
        error = (p - m) / m
        print(f"| {strategy} | {p:.2f} | {m:.2f} | {error:+.1%} | {'yes' if abs(error) <= GOAL else 'no'} |")


if __name__ == "__main__":
    main()
