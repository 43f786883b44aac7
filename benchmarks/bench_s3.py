"""docs/s reading the man-page corpus from S3 (a moto server on loopback) beside the same files on local disk.

    python benchmarks/bench_s3.py [--corpus ../shared/data/manpages] [--workers 2] [--repeat 3]

Both runs use ``processes`` × workers and the man-page labels; each run gets a fresh journal. The S3
figure includes every worker's GET over HTTP (moto answers from memory, so it is the protocol's cost,
not a network's). Then a second S3 run over the same journal shows resume: nothing re-read.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
LABELS = HERE / "manpages.labels.yaml"


def start_server(port: int) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(300):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/moto-api/", timeout=1).close()
            return proc
        except OSError:
            time.sleep(0.1)
    raise SystemExit("moto server did not start")


def upload(corpus: Path, bucket: str) -> int:
    import boto3

    client = boto3.session.Session().client("s3")
    client.create_bucket(Bucket=bucket)
    files = sorted(p for p in corpus.rglob("*") if p.is_file())
    for path in files:
        client.put_object(
            Bucket=bucket, Key=f"man/{path.relative_to(corpus).as_posix()}", Body=path.read_bytes()
        )
    return len(files)


def one_run(source: str, db: Path, workers: int) -> tuple[float, int, int, dict[str, str | None]]:
    from docmill.config import RunConfig
    from docmill.journal.base import Query
    from docmill.journal.sqlite import SqliteJournal
    from docmill.runner import run_config

    config = RunConfig(source=source, strategy="processes", workers=workers, labels=str(LABELS),
                       db=str(db), progress="none")  # fmt: skip
    started = time.perf_counter()
    result = run_config(config)
    seconds = time.perf_counter() - started
    with SqliteJournal(db) as journal:
        labels = {r.path: r.label for r in journal.iter_documents(Query())}
    return seconds, result.stats.done, result.stats.skipped, labels


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--corpus", type=Path, default=HERE.parents[1] / "shared" / "data" / "manpages")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--port", type=int, default=45123)
    args = parser.parse_args()
    os.environ.update({
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{args.port}", "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1",
    })  # fmt: skip
    server = start_server(args.port)
    try:
        n = upload(args.corpus, "bench")
        print(f"{n} objects uploaded; processes x{args.workers}, best of {args.repeat}")
        report(args, n)
    finally:
        server.terminate()
        server.wait()


def report(args: argparse.Namespace, n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        local, s3 = [], []
        for i in range(args.repeat):
            t, _, _, local_labels = one_run(str(args.corpus), Path(tmp, f"l{i}.db"), args.workers)
            local.append(t)
            t, done, _, s3_labels = one_run("s3://bench/man", Path(tmp, f"s{i}.db"), args.workers)
            s3.append(t)
            assert done == n and s3_labels == local_labels, "labels differ between S3 and local"
        t, done, skipped, _ = one_run("s3://bench/man", Path(tmp, "s0.db"), args.workers)
    best_local, best_s3 = min(local), min(s3)
    mid_local, mid_s3 = statistics.median(local), statistics.median(s3)
    print(f"local disk: {n / best_local:7.1f} docs/s (best {best_local:.2f} s, median {mid_local:.2f} s)")
    print(f"s3 (moto):  {n / best_s3:7.1f} docs/s (best {best_s3:.2f} s, median {mid_s3:.2f} s)")
    print(f"ratio local/s3: {best_s3 / best_local:.2f}x; same labels: yes")
    print(f"second s3 run: {done} processed, {skipped} already done, {t:.2f} s")


if __name__ == "__main__":
    main()
