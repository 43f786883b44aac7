"""A resume that skips everything: a run over a JSONL file whose every record is already recorded.

    python benchmarks/bench_resume.py [--records 1000000] [--strategy sequential] [--repeat 3]
                                      [--baseline SRC_DIR] [--keep DIR]

Builds the records (``bench_tiny.make_records``) and a journal of them once (one ``docmill.run``
with ``queue`` × 2), then times ``docmill.run`` over the same file again — nothing left to do — in a
child process per case, each on a fresh copy of that journal. ``--baseline SRC_DIR`` runs the same
cases from another checkout's ``src`` (``git archive HEAD src | tar -x -C /tmp/base``), interleaved
with this tree's, so before and after share the machine's load. Prints wall seconds and the
child's CPU seconds (getrusage: a busy machine moves it far less than the wall time).
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

sys.path.insert(0, str(Path(__file__).parent))
from bench_tiny import make_records

_CHILD = """
import resource, sys, time
import docmill
started = time.perf_counter()
result = docmill.run(sys.argv[1], classifier="none", strategy=sys.argv[2], db=sys.argv[3])
usage = resource.getrusage(resource.RUSAGE_SELF)
print(time.perf_counter() - started, usage.ru_utime + usage.ru_stime, result.stats.skipped)
"""


def child(data: Path, db: Path, strategy: str, src: str | None) -> tuple[float, float, int]:
    env = dict(os.environ)
    if src is not None:
        env["PYTHONPATH"] = src
    argv = [sys.executable, "-c", _CHILD, str(data), strategy, str(db)]
    wall, cpu, skipped = subprocess.run(
        argv, env=env, check=True, capture_output=True, text=True
    ).stdout.split()
    return float(wall), float(cpu), int(skipped)


def build(folder: Path, records: int) -> tuple[Path, Path]:
    data, journal = folder / "records.jsonl", folder / "journal.db"
    if not journal.exists():
        make_records(data, records)
        child(data, journal, "queue", None)
    return data, journal


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--strategy", default="sequential")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--baseline", default=None, help="another checkout's src/ to run beside this one")
    parser.add_argument("--keep", default=None, help="build (or reuse) the records and journal here")
    args = parser.parse_args(argv)
    trees = {"before": args.baseline, "after": None} if args.baseline else {"docmill": None}
    with tempfile.TemporaryDirectory(prefix="bench-resume-") as tmp:
        folder = Path(args.keep or tmp)
        folder.mkdir(parents=True, exist_ok=True)
        data, journal = build(folder, args.records)
        print(
            f"bench_resume: {args.records:,} records recorded, {args.strategy}, load {os.getloadavg()[0]:.1f}"
        )
        walls: dict[str, list[float]] = {name: [] for name in trees}
        for round_ in range(args.repeat):
            for name, src in trees.items():
                copy = Path(tmp) / f"copy{round_}{name}.db"
                shutil.copyfile(journal, copy)
                wall, cpu, skipped = child(data, copy, args.strategy, src)
                copy.unlink()
                walls[name].append(wall)
                line = f"{wall:6.2f} s wall  {cpu:6.2f} s CPU  {skipped:,} skipped"
                print(f"  round {round_ + 1} {name:<8} {line}")
        for name, values in walls.items():
            print(f"  {name:<8} median {statistics.median(values):.2f} s")
        print(f"load at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main(sys.argv[1:])
