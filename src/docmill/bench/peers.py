"""Other libraries' pools running the same work (``Job.run`` per ref), as extra rows of a bench.

``peer:naive`` is the single-process loop a user writes without any framework. Each other peer is
used the way its documentation recommends for many small tasks: chunked
``multiprocessing.Pool.imap_unordered``, ``joblib.Parallel`` (loky, auto-batching, unordered
generator) and ``mpire.WorkerPool.imap_unordered`` (fork, shared job). Every worker sets the Job
up once, as docmill's own strategies do.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Sequence

from docmill.document import DocumentRef
from docmill.job import Job
from docmill.outcome import Outcome

PeerRunner = Callable[[Job, Sequence[DocumentRef], int], list[Outcome]]

_job: Job | None = None
_job_key: str | None = None


def _chunk_size(n_refs: int, workers: int) -> int:
    """Four chunks per worker: big enough to amortise IPC, small enough to balance the load."""
    return max(1, n_refs // (4 * workers))


def _install(job: Job) -> Job:
    """Set ``job`` up once per worker process (re-used while the same job is sent again)."""
    global _job, _job_key
    key = f"{job.fingerprint()}:{job.source.root}"
    if _job is None or _job_key != key:
        job.setup()
        _job, _job_key = job, key
    return _job


def _run_installed(ref: DocumentRef) -> Outcome:
    assert _job is not None, "worker was not initialised"
    return _job.run(ref)


def _run_with(job: Job, ref: DocumentRef) -> Outcome:
    return _install(job).run(ref)


def run_pool(job: Job, refs: Sequence[DocumentRef], workers: int) -> list[Outcome]:
    """``multiprocessing.Pool(workers).imap_unordered(run, refs, chunksize)`` with fork."""
    context = multiprocessing.get_context("fork")
    with context.Pool(workers, initializer=_install, initargs=(job,)) as pool:
        outcomes = list(pool.imap_unordered(_run_installed, refs, chunksize=_chunk_size(len(refs), workers)))
    pool.join()
    return outcomes


def run_joblib(job: Job, refs: Sequence[DocumentRef], workers: int) -> list[Outcome]:
    """``joblib.Parallel(n_jobs=workers)`` on loky; its reusable workers are shut down afterwards."""
    from joblib import Parallel, delayed
    from joblib.externals.loky import get_reusable_executor

    # loky registers a memmapping folder per call even when nothing is memmapped (our arguments are
    # small), never creates it, and its resource tracker then warns at exit about "leaked" folders
    # that do not exist. The tracker starts with this (disposable, per-case) process's environment.
    os.environ["PYTHONWARNINGS"] = "ignore:resource_tracker:UserWarning"
    with Parallel(n_jobs=workers, return_as="generator_unordered", batch_size="auto") as parallel:
        outcomes: list[Outcome] = list(parallel(delayed(_run_with)(job, ref) for ref in refs))
    get_reusable_executor(max_workers=workers).shutdown(wait=True)
    return outcomes


def _mpire_init(job: Job) -> None:
    _install(job)


def run_mpire(job: Job, refs: Sequence[DocumentRef], workers: int) -> list[Outcome]:
    """``mpire.WorkerPool(workers, shared_objects=job).imap_unordered`` with fork."""
    from mpire.pool import WorkerPool

    with WorkerPool(n_jobs=workers, shared_objects=job, start_method="fork") as pool:
        results = pool.imap_unordered(
            _run_with,
            refs,
            iterable_len=len(refs),
            chunk_size=_chunk_size(len(refs), workers),
            worker_init=_mpire_init,
        )
        return list(results)


def run_naive(job: Job, refs: Sequence[DocumentRef], workers: int) -> list[Outcome]:
    """One process, one loop, no framework: the bar docmill's overhead is measured against.

    On the ``tiny`` workload the harness runs ``docmill.bench.tiny``'s loop instead (parse, hash,
    batched ``INSERT``), which records as a run does; elsewhere this is ``[job.run(ref) for …]``.
    """
    job.setup()
    try:
        return [job.run(ref) for ref in refs]
    finally:
        job.teardown()


PEERS: dict[str, PeerRunner] = {
    "peer:naive": run_naive,
    "peer:pool": run_pool,
    "peer:joblib": run_joblib,
    "peer:mpire": run_mpire,
}
