"""Worker hosts that vanish mid-run: two "hosts" in network namespaces, one cut off or killed.

The parent (this process) reaches the test Redis and PostgreSQL on this host; the workers reach
only that Redis, over their veth links (tests/distributed/netns.py): they never need PostgreSQL,
the parent is the only journal writer. A host whose link goes down for 30 s, or whose processes
are all SIGKILLed, has its chunks done by the other host (a 5 s visibility timeout, and the
parent sending again what did not report within 6 s); the journal ends with the sequential
run's rows. Needs root and ``ip netns``; skips in one line where namespaces cannot be made.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from distributed_helpers import Workers
from fault_kit import celery_run
from netns import SERVER, Hosts, hosts, leftovers
from redis_server import redis_server

from docmill.executors.distributed import CeleryExecutor

pytestmark = [pytest.mark.chaos, pytest.mark.celery, pytest.mark.postgres, pytest.mark.timeout(300)]

N = 200
SECONDS = 0.05
VISIBILITY = 5
CUT = 30.0


@dataclass
class Cluster:
    net: Hosts
    workers: Workers
    url: str

    def executor(self) -> CeleryExecutor:
        return CeleryExecutor(
            2, broker=self.url, queue=self.workers.queue, chunk_size=5, redeliver_after=VISIBILITY + 1
        )


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    with hosts(2) as net:
        tag = net.tag
        with redis_server(tmp_path, binds=net.binds()) as server:
            url = f"redis://{SERVER}:{server.port}/0"
            pool = Workers(url, count=0, visibility=VISIBILITY)
            try:
                for i in range(2):
                    pool.start(f"w{i}-{pool.queue}", prefix=net.prefix(i))
                with CeleryExecutor(broker=url, queue=pool.queue) as probe:
                    pool.wait_ready(probe.app, 2)
                yield Cluster(net, pool, url)
            finally:
                pool.stop()
    assert not leftovers(tag), "namespaces or veths left behind"


def test_a_host_cut_off_for_30_s_has_its_chunks_done_elsewhere(cluster: Cluster, pg_target: str) -> None:
    def cut() -> None:
        cluster.net.down(1)
        time.sleep(CUT)
        cluster.net.up(1)

    started = time.monotonic()
    with cluster.executor() as ex:
        result, stats = celery_run(ex, pg_target, N, SECONDS, at=40, fault=cut)
    print(
        f"host link down {CUT:g} s: {result}, redelivered={stats.redelivered_chunks}, "
        f"resent={stats.resent_chunks}, duplicate_results={stats.duplicate_results}, "
        f"{time.monotonic() - started:.0f} s with the cut"
    )
    assert result.clean and result.rows == N
    assert stats.redelivered_chunks + stats.resent_chunks >= 1


def test_a_host_killed_outright_has_its_chunks_done_elsewhere(cluster: Cluster, pg_target: str) -> None:
    killed: list[int] = []
    with cluster.executor() as ex:
        result, stats = celery_run(
            ex, pg_target, N, SECONDS, at=40, fault=lambda: killed.append(cluster.net.kill(1))
        )
    print(
        f"host killed ({killed[0]} processes): {result}, redelivered={stats.redelivered_chunks}, "
        f"resent={stats.resent_chunks}, duplicate_results={stats.duplicate_results}"
    )
    assert killed[0] >= 2  # the worker and its pool process
    assert result.clean and result.rows == N
    assert stats.redelivered_chunks + stats.resent_chunks >= 1
