"""The PostgreSQL journal's connection: how it is opened, set up, and told apart from a lost one.

Every connection carries ``application_name=docmill`` (unless the target names another), so an
operator sees the journal's sessions in ``pg_stat_activity`` and can single them out; and TCP
keepalives, so a peer that vanished without a word (a failed-over host) turns into an error within
about a minute instead of a query that waits forever. Both are overridden by the target's own
parameters.
"""

from __future__ import annotations

import re
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import dict_row

APPLICATION_NAME = "docmill"
_DEFAULTS: dict[str, Any] = {
    "application_name": APPLICATION_NAME,
    "keepalives": 1,
    "keepalives_idle": 30,
    "keepalives_interval": 10,
    "keepalives_count": 3,
}
_LOST_STATES = ("57P01", "57P02", "57P03")  # admin shutdown, crash shutdown, cannot connect now


def connect(conninfo: str, timeout: float) -> psycopg.Connection[dict[str, Any]]:
    """A new connection (raises psycopg's own errors: the caller decides what they mean)."""
    given = conninfo_to_dict(conninfo)
    extra = {k: v for k, v in _DEFAULTS.items() if k not in given}
    return psycopg.connect(conninfo, connect_timeout=max(1, int(timeout)), row_factory=dict_row, **extra)


def prepare(conn: psycopg.Connection[Any], schema: str | None, read_only: bool) -> None:
    """Session settings, again after each reconnect: read-only transactions, the schema's path."""
    with conn.transaction(), conn.cursor() as cur:
        if read_only:
            cur.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
        if schema:
            cur.execute(f'SET search_path TO "{schema}"')


def lost(exc: BaseException) -> bool:
    """Whether ``exc`` means the connection (not the statement) failed: worth a reconnect.

    psycopg raises ``OperationalError`` without an SQLSTATE for a closed, broken or refused
    connection; the server says 08xxx (connection exception) or 57P0x (shutting down, terminated
    by ``pg_terminate_backend``, starting up). A deadlock or a cancelled statement is not lost.
    """
    if not isinstance(exc, psycopg.OperationalError):
        return False
    state = exc.sqlstate
    return state is None or state.startswith("08") or state in _LOST_STATES


def close_quietly(conn: psycopg.Connection[Any]) -> None:
    """Close a connection that may already be broken."""
    try:
        conn.close()
    except psycopg.Error:  # pragma: no cover - closing a dead socket
        pass


def redact(url: str) -> str:
    """``url`` with its password masked, for error messages."""
    return re.sub(r"//([^:/@]+):[^@]*@", r"//\1:***@", url)
