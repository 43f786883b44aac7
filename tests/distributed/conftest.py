"""Fixtures for tests against real PostgreSQL, Redis and Celery workers on 127.0.0.1.

Each test gets its own PostgreSQL schema and Redis key prefix/database entries, so runs never
collide; the tests skip with one line when a service is not reachable.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from distributed_helpers import PG_URL, REDIS_URL


@pytest.fixture
def pg_target() -> Iterator[str]:
    """A ``postgresql://…?schema=NAME`` target of a fresh schema, dropped afterwards."""
    psycopg = pytest.importorskip("psycopg")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    try:
        conn = psycopg.connect(PG_URL, connect_timeout=3, autocommit=True)
    except psycopg.Error as exc:
        pytest.skip(f"PostgreSQL not reachable at {PG_URL}: {str(exc).splitlines()[0]}")
    sep = "&" if "?" in PG_URL else "?"
    yield f"{PG_URL}{sep}schema={schema}"
    conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    conn.close()


@pytest.fixture
def redis_url() -> str:
    """The test Redis URL; skips when Redis does not answer."""
    redis = pytest.importorskip("redis")
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.skip(f"Redis not reachable at {REDIS_URL}: {exc}")
    finally:
        client.close()
    return REDIS_URL
