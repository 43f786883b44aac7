"""The one Celery task: run a chunk of refs through the run's Job and push the outcomes back.

A chunk can be delivered more than once: the worker died (``reject_on_worker_lost`` requeues it)
or it outlived the broker's visibility timeout. Each delivery is counted in Redis; the parent
keeps the first result of each chunk and counts the others as duplicate work.

Poison documents: a redelivered chunk notes the index of each ref before running it (the first
delivery does not: one Redis write per document is most of the broker's cost for cheap
documents), so the next delivery knows which ref the dead one was holding. A ref that killed a
noted delivery, after the unnoted first one died too (``MAX_CRASHES`` deaths), ends ``crashed``
instead of killing workers forever; the chunk's other refs carry on.

A chunk of a run whose keys are gone (the run ended, or Redis restarted empty) is skipped
without a result: the parent sends every chunk that never reports again (see
``docmill.executors.distributed``).
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Mapping, Sequence
from typing import Any

from docmill.distributed.channel import RunChannel, channel_for, load_job
from docmill.distributed.codec import outcome_to_dict, ref_from_dict
from docmill.document import DocumentRef
from docmill.errors import ProcessingTimeout, WorkerCrashedError
from docmill.job import Job
from docmill.outcome import ErrorInfo, Outcome, Status, Timings

MAX_CRASHES = 2
_SOFT_LIMIT = "SoftTimeLimitExceeded"  # Celery raises it in the task; Job.run turns it into an error


def run_chunk(
    *, run: str, job: str, store: str, chunk: str, refs: Sequence[Mapping[str, Any]], task_id: str = ""
) -> str:
    """Run one chunk for run ``run``; push ``{chunk, delivery, worker, outcomes, unfinished}``."""
    channel = channel_for(store, run)
    if not channel.alive():
        return "skipped: the run is over"
    delivery = channel.delivered(chunk)
    worker = f"{socket.gethostname()}:{os.getpid()}"
    try:
        the_job: Job = load_job(channel, job)
    except LookupError:  # Redis lost it (restarted empty): the parent puts it back and sends again
        return "skipped: the job is not in Redis"
    except Exception as exc:  # unpicklable here: a module missing on this host, a version skew
        channel.push({"chunk": chunk, "worker": worker, "fatal": f"cannot load the job on {worker}: {exc!r}"})
        return "fatal: cannot load the job"
    the_job.worker = worker
    outcomes, unfinished = _execute(the_job, channel, chunk, [ref_from_dict(r) for r in refs], delivery)
    message = {
        "chunk": chunk,
        "delivery": delivery,
        "task": task_id,
        "worker": the_job.worker,
        "outcomes": [outcome_to_dict(o) for o in outcomes],
        "unfinished": list(refs[len(refs) - unfinished :]) if unfinished else [],
    }
    channel.push(message)
    return f"{len(outcomes)} outcomes, delivery {delivery}"


def _execute(
    job: Job, channel: RunChannel, chunk: str, refs: list[DocumentRef], delivery: int
) -> tuple[list[Outcome], int]:
    """(outcomes, how many refs at the end were left unfinished by a soft time limit)."""
    noting = delivery > 1  # an earlier delivery died or timed out: find the culprit if it recurs
    poison = _poisoned(channel, chunk) if noting else set()
    outcomes: list[Outcome] = []
    for index, ref in enumerate(refs):
        if index in poison:
            outcomes.append(_crashed(ref, job.worker, channel.lost_reason(chunk)))
            continue
        if noting:
            channel.starting(chunk, index)
        outcome = job.run(ref)
        if outcome.error is not None and outcome.error.type == _SOFT_LIMIT:
            timeout = ProcessingTimeout("the chunk's time limit ran out on this document")
            outcomes.append(_failed(ref, job.worker, timeout))
            return outcomes, len(refs) - index - 1  # the parent resubmits the rest
        outcomes.append(outcome)
    return outcomes, 0


def _poisoned(channel: RunChannel, chunk: str) -> set[int]:
    """Indexes of the refs noted deliveries died on, each after ``MAX_CRASHES`` deaths of the chunk."""
    suspect = channel.suspect(chunk)
    if suspect is None:
        return set()
    counts = channel.crashed_on(chunk, suspect)
    return {index for index, deaths in counts.items() if deaths >= MAX_CRASHES - 1}


def _crashed(ref: DocumentRef, worker: str, how: str | None) -> Outcome:
    error = WorkerCrashedError(
        f"the worker process was {how or 'lost'} while processing this document ({MAX_CRASHES} times)"
    )
    info = ErrorInfo.from_exception(error)
    return Outcome(ref, Status.CRASHED, None, None, info, MAX_CRASHES, Timings(worker=worker))


def describe_loss(message: str) -> str:
    """billiard's "Worker exited prematurely: signal 9 (SIGKILL) Job: 3." → "killed by SIGKILL"."""
    named = re.search(r"signal (\d+)(?: \((\w+)\))?", message)
    if named:
        return f"killed by {named.group(2) or 'signal ' + named.group(1)}"
    code = re.search(r"exitcode (-?\d+)", message)
    return f"exited with code {code.group(1)}" if code else "lost"


def _failed(ref: DocumentRef, worker: str, exc: BaseException) -> Outcome:
    return Outcome(ref, Status.FAILED, None, None, ErrorInfo.from_exception(exc), 1, Timings(worker=worker))
