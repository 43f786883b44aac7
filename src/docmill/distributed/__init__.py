"""Distributed runs: Celery workers on any number of hosts, Redis between them and the parent.

* ``app``: the Celery application (``celery -A docmill.distributed.app worker`` or ``docmill worker``)
* ``tasks``: the one task, ``docmill.run_chunk``: run a chunk of refs, push the outcomes back
* ``channel``: the Redis keys a run uses (job, liveness, results, delivery counts)
* ``codec``: refs and outcomes to and from JSON

The strategy itself is ``docmill.executors.distributed.CeleryExecutor`` (``--strategy celery``).
"""
