"""The Redis side of one distributed run: every key it uses, and the operations on them.

Keys (``{p}`` = ``docmill:run:<run id>``; all expire, so an abandoned run leaves nothing behind)::

    docmill:job:<sha256>      the pickled Job, stored once, read once per worker process
    {p}:alive                 set while the parent runs; workers skip chunks of a dead run
    {p}:results               list of JSON messages, one per executed chunk; the parent pops them
    {p}:deliveries            hash chunk → times a worker started it (>1: redelivered)
    {p}:started               hash chunk → index of the ref being worked on (crash suspect)
    {p}:crashes:<chunk>       hash index → deliveries of the chunk that died on that ref
    {p}:lost                  hash chunk → how its last worker process died ("killed by SIGKILL")
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
from collections.abc import Mapping
from typing import Any

from docmill.errors import ConfigError, MissingDependencyError

ALIVE_TTL = 30  # seconds a run outlives its parent's last sign of life
RESULTS_TTL = 24 * 3600
JOB_TTL = 7 * 24 * 3600


def _redis_module() -> Any:
    try:
        import redis
    except ImportError as exc:  # pragma: no cover - extra not installed
        raise MissingDependencyError("redis", "celery") from exc
    return redis


def broker_idle(url: str, queue: str) -> bool | None:
    """Whether a Redis broker holds no message at all: ``queue`` empty and nothing unacknowledged
    (kombu's ``unacked`` hash). None for other brokers, which never lose a message unreceived."""
    if not url.startswith(("redis://", "rediss://", "unix://")):
        return None
    client = _redis_module().Redis.from_url(url, socket_connect_timeout=5, socket_timeout=30)
    try:
        queued, held = client.pipeline(transaction=False).llen(queue).hlen("unacked").execute()
    finally:
        client.close()
    return int(queued) == 0 and int(held) == 0


class RunChannel:
    """The keys of run ``run`` in the Redis at ``url``."""

    def __init__(self, url: str, run: str) -> None:
        if not url.startswith(("redis://", "rediss://", "unix://")):
            raise ConfigError(f"distributed runs exchange results through Redis; got {url!r}")
        self.url = url
        self.run = run
        self.prefix = f"docmill:run:{run}"
        self.redis = _redis_module().Redis.from_url(url, socket_connect_timeout=5, socket_timeout=30)
        self.job: tuple[str, bytes] | None = None  # (key, pickle) of the job this parent published

    # -- parent side ------------------------------------------------------------------------------

    def publish_job(self, job: object) -> str:
        """Store the pickled job once (content-addressed); return its key."""
        try:
            blob = pickle.dumps(job)
        except (pickle.PicklingError, TypeError, AttributeError) as exc:
            raise ConfigError(f"the job cannot be sent to workers (it must pickle): {exc}") from exc
        key = f"docmill:job:{hashlib.sha256(blob).hexdigest()[:32]}"
        self.job = (key, blob)
        self.redis.set(key, blob, ex=JOB_TTL)
        return key

    def keep_alive(self) -> bool:
        """Refresh the run's liveness key; put the job back if Redis lost it. True if it had to.

        A Redis restarted without persistence comes back empty: workers would skip every chunk
        (no liveness key) or fail to load the job; both are restored within one beat.
        """
        pipe = self.redis.pipeline()
        pipe.set(f"{self.prefix}:alive", "1", ex=ALIVE_TTL)
        if self.job is not None:
            pipe.exists(self.job[0])
        replies = pipe.execute()
        if self.job is None or replies[1]:
            return False
        self.redis.set(self.job[0], self.job[1], ex=JOB_TTL)
        return True

    def identity(self) -> str:
        """The Redis server's ``run_id``: it changes when the server restarts.

        "" where INFO is refused (some managed Redis services): restarts are then found by
        ``redeliver_after`` alone.
        """
        try:
            return str(self.redis.info("server").get("run_id", ""))
        except _redis_module().ResponseError:
            return ""

    def pop(self, timeout: float) -> dict[str, Any] | None:
        """The next chunk's message, or None after ``timeout`` seconds."""
        item = self.redis.blpop([f"{self.prefix}:results"], timeout=max(timeout, 0.01))
        return None if item is None else dict(json.loads(item[1]))

    def deliveries(self) -> dict[str, int]:
        return {k.decode(): int(v) for k, v in self.redis.hgetall(f"{self.prefix}:deliveries").items()}

    def close(self) -> None:
        """End the run: workers skip what is still queued for it."""
        self.redis.delete(f"{self.prefix}:alive", f"{self.prefix}:started", f"{self.prefix}:lost")
        self.redis.expire(f"{self.prefix}:results", 60)
        self.redis.expire(f"{self.prefix}:deliveries", 3600)
        self.redis.close()

    # -- worker side ------------------------------------------------------------------------------

    def alive(self) -> bool:
        return bool(self.redis.exists(f"{self.prefix}:alive"))

    def delivered(self, chunk: str) -> int:
        """Count one more delivery of ``chunk``; return the count (1 = first time)."""
        pipe = self.redis.pipeline()
        pipe.hincrby(f"{self.prefix}:deliveries", chunk, 1)
        pipe.expire(f"{self.prefix}:deliveries", RESULTS_TTL)
        return int(pipe.execute()[0])

    def suspect(self, chunk: str) -> int | None:
        """Index of the ref an earlier delivery of ``chunk`` was working on, if any."""
        value = self.redis.hget(f"{self.prefix}:started", chunk)
        return None if value is None else int(value)

    def crashed_on(self, chunk: str, index: int) -> dict[int, int]:
        """Count one more dead delivery on ref ``index`` of ``chunk``; return every ref's count."""
        key = f"{self.prefix}:crashes:{chunk}"
        pipe = self.redis.pipeline()
        pipe.hincrby(key, str(index), 1)
        pipe.expire(key, RESULTS_TTL)
        pipe.hgetall(key)
        return {int(k): int(v) for k, v in pipe.execute()[2].items()}

    def lost(self, chunk: str, reason: str) -> None:
        """Note how the process holding ``chunk`` died (told by the worker's main process)."""
        pipe = self.redis.pipeline()
        pipe.hset(f"{self.prefix}:lost", chunk, reason)
        pipe.expire(f"{self.prefix}:lost", RESULTS_TTL)
        pipe.execute()

    def lost_reason(self, chunk: str) -> str | None:
        value = self.redis.hget(f"{self.prefix}:lost", chunk)
        return None if value is None else str(value.decode())

    def starting(self, chunk: str, index: int) -> None:
        self.redis.hset(f"{self.prefix}:started", chunk, index)

    def push(self, message: Mapping[str, Any]) -> None:
        pipe = self.redis.pipeline()
        pipe.rpush(f"{self.prefix}:results", json.dumps(message, default=str))
        pipe.expire(f"{self.prefix}:results", RESULTS_TTL)
        pipe.hdel(f"{self.prefix}:started", message["chunk"])
        pipe.execute()


_JOBS: dict[str, Any] = {}
_CHANNELS: dict[tuple[int, str, str], RunChannel] = {}


def channel_for(url: str, run: str) -> RunChannel:
    """This process's channel to run ``run`` (one socket per process and run)."""
    key = (os.getpid(), url, run)
    if key not in _CHANNELS:
        if len(_CHANNELS) > 16:
            _CHANNELS.clear()
        _CHANNELS[key] = RunChannel(url, run)
    return _CHANNELS[key]


def load_job(channel: RunChannel, key: str) -> Any:
    """The job stored under ``key``, unpickled and set up once per process."""
    job = _JOBS.get(key)
    if job is None:
        blob = channel.redis.get(key)
        if blob is None:
            raise LookupError(f"job {key} is gone from Redis (expired, or the run ended)")
        job = pickle.loads(blob)
        job.setup()
        while len(_JOBS) >= 2:  # runs come and go; a worker keeps the two latest jobs warm
            _JOBS.pop(next(iter(_JOBS))).teardown()
        _JOBS[key] = job
    return job


def teardown_jobs() -> None:
    """Release what the cached jobs built (called when a worker process shuts down)."""
    for key in list(_JOBS):
        _JOBS.pop(key).teardown()
