"""Helpers of the distributed tests: Celery workers as subprocesses, and a minimal runner loop.

Worker subprocesses get this folder on PYTHONPATH, so jobs built from the processors below (pickled
as ``distributed_helpers.X``) load in them.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx
import psutil

from docmill.document import Document
from docmill.executors.base import Executor
from docmill.job import Job
from docmill.journal.base import Journal, RunInfo
from docmill.limits.provider import ProviderLimits
from docmill.outcome import Outcome
from docmill.processors.base import Processor

PG_URL = os.environ.get("DOCMILL_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("DOCMILL_TEST_REDIS", "redis://127.0.0.1:6379/0")
HERE = Path(__file__).resolve().parent
SRC = HERE.parents[1] / "src"


class Workers:
    """``docmill worker`` subprocesses on a private queue; stopped (and reaped) on ``stop``."""

    def __init__(
        self,
        broker: str,
        *,
        count: int = 2,
        concurrency: int = 1,
        visibility: float = 3600,
        pythonpath: Iterable[Path] = (),
    ) -> None:
        self.broker = broker
        self.pythonpath = [str(HERE), *map(str, pythonpath), str(SRC)]
        self.queue = f"docmill-test-{uuid.uuid4().hex[:8]}"
        self.visibility = visibility
        self.procs: list[subprocess.Popen[bytes]] = []
        for i in range(count):
            self.start(f"w{i}-{self.queue}", concurrency)

    def start(self, name: str, concurrency: int = 1, prefix: Sequence[str] = ()) -> subprocess.Popen[bytes]:
        """One more worker; ``prefix`` runs it elsewhere (``ip netns exec NS``: on another "host")."""
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(self.pythonpath)}
        argv = [
            *prefix,
            sys.executable, "-m", "docmill", "worker", "--broker", self.broker, "--queue", self.queue,
            "--concurrency", str(concurrency), "--pool", "prefork", "--hostname", f"{name}@localhost",
            "--visibility-timeout", str(self.visibility), "--loglevel", "WARNING",
        ]  # fmt: skip
        proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.procs.append(proc)
        return proc

    def wait_ready(self, app: object, expected: int, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        names = {f"w{i}-{self.queue}@localhost" for i in range(expected)}
        while time.monotonic() < deadline:
            # a connection of its own, closed at once: a broadcast consumer left open in the pool
            # would be closed again in every process this test process forks later, and hang it
            with app.connection_for_write() as conn:  # type: ignore[attr-defined]
                replies = app.control.ping(timeout=0.5, connection=conn)  # type: ignore[attr-defined]
            if names <= {name for reply in replies for name in reply}:
                return
            dead = [p for p in self.procs if p.poll() is not None]
            if dead:
                raise RuntimeError(f"worker exited: {dead[0].stderr.read().decode()[-2000:]}")  # type: ignore[union-attr]
        raise TimeoutError(f"workers not ready after {timeout:g} s")

    def children(self, index: int) -> list[psutil.Process]:
        """The pool processes (prefork children) of worker ``index``."""
        children: list[psutil.Process] = psutil.Process(self.procs[index].pid).children()
        return children

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                for child in psutil.Process(proc.pid).children(recursive=True):
                    child.kill()
                proc.kill()
                proc.wait(5)
            if proc.stderr:
                proc.stderr.close()


def drive(
    executor: Executor,
    job: Job,
    journal: Journal,
    refs: Iterable[object],
    *,
    batch: int = 100,
    on_outcome: Callable[[int], None] = lambda n: None,
) -> tuple[int, list[Outcome]]:
    """The runner's loop at its simplest: pending → map_unordered → record in batches.

    Returns the run id and the outcomes as the strategy yielded them (before the journal settles
    duplicates, which depends on arrival order; compare journal rows for the settled view).
    """
    source = job.source.root
    fingerprint = job.fingerprint()
    run_id = journal.begin_run(RunInfo(source, fingerprint, executor.name, executor.workers))
    pending = journal.pending(refs, source=source, fingerprint=fingerprint)  # type: ignore[arg-type]
    yielded: list[Outcome] = []
    buffer: list[Outcome] = []
    for n, outcome in enumerate(executor.map_unordered(job, pending), 1):
        on_outcome(n)
        yielded.append(outcome)
        buffer.append(outcome)
        if len(buffer) >= batch:
            journal.record(buffer, run_id=run_id, source=source, fingerprint=fingerprint)
            buffer = []
    journal.record(buffer, run_id=run_id, source=source, fingerprint=fingerprint)
    journal.end_run(run_id, "done", {})
    return run_id, yielded


class SlowProcessor(Processor):
    """Sleeps ``seconds`` per document, then labels it like ``testing.NoopProcessor``."""

    name = "slow"

    def __init__(self, seconds: float, *, slower: Mapping[str, float] | None = None) -> None:
        self.seconds = seconds
        self.slower = dict(slower or {})  # document id → its own seconds

    def process(self, doc: Document) -> Document:
        time.sleep(self.slower.get(doc.ref.id, self.seconds))
        text = (doc.content or b"").decode("utf-8", "replace")
        return doc.evolve(text=text).with_metadata(label="slow")

    def config(self) -> dict[str, object]:
        return {"seconds": self.seconds, "slower": self.slower}


class EmulatorCaller(Processor):
    """One chat request per document to an (emulated) provider, paced by ``limits`` when given."""

    name = "emulator-caller"

    def __init__(self, base_url: str, limits: ProviderLimits | None = None) -> None:
        self.base_url = base_url
        self.limits = limits or ProviderLimits()
        self._client: httpx.Client | None = None

    def setup(self) -> None:
        self._client = httpx.Client(base_url=self.base_url, timeout=30)

    def process(self, doc: Document) -> Document:
        assert self._client is not None
        self.limits.acquire(0)
        body = {"model": "emulated-small", "messages": [{"role": "user", "content": doc.ref.id}]}
        reply = self._client.post("/v1/chat/completions", json=body)
        return doc.evolve(text="x").with_metadata(http=reply.status_code)

    def teardown(self) -> None:
        if self._client is not None:
            self._client.close()

    def __getstate__(self) -> dict[str, object]:
        return {**self.__dict__, "_client": None}


def iter_ids(outcomes: Iterable[Outcome]) -> Iterator[str]:
    return (o.ref.id for o in outcomes)


def main() -> None:
    """``python distributed_helpers.py PG_TARGET N SECONDS``: a run a test can kill and restart."""
    from distributed_helpers import SlowProcessor as Slow  # pickled by module name, not __main__

    from docmill.executors.distributed import CeleryExecutor
    from docmill.journal.postgres import PostgresJournal
    from docmill.testing import MemorySource

    target, n, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    source = MemorySource(n)
    job = Job(source, Slow(seconds))
    with PostgresJournal(target) as journal, CeleryExecutor(2, chunk_size=5) as ex:
        _, recorded = drive(ex, job, journal, source, batch=5, on_outcome=lambda n: print(n, flush=True))
    print(f"done {len(recorded)}", flush=True)


if __name__ == "__main__":
    main()


@contextmanager
def running_workers(count: int, **options: object) -> Iterator[Workers]:
    """``count`` workers serving a private queue, ready to take tasks; skips when Redis is down."""
    import pytest

    redis = pytest.importorskip("redis")
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        pytest.skip(f"Redis not reachable at {REDIS_URL}: {exc}")
    from docmill.executors.distributed import CeleryExecutor

    pool = Workers(REDIS_URL, count=count, **options)  # type: ignore[arg-type]
    try:
        with CeleryExecutor(broker=REDIS_URL, queue=pool.queue) as executor:
            pool.wait_ready(executor.app, count)
        yield pool
    finally:
        pool.stop()
