"""Schema versions after the first: each step takes a journal from version N-1 to N, in place.

Users keep journals across releases, so a journal written by an older docmill is upgraded when a
writer opens it, never refused. A new journal is the base schema (version 1: ``schema.sql`` for
SQLite, ``_pg_sql.SCHEMA`` for PostgreSQL) followed by every step, so each change is written once.
A step is additive (a new column or table; old rows stay valid) and runs in the same transaction
as the version bump: a crash mid-upgrade leaves the old version, whole.

To change the schema: append one ``Step`` here and raise ``SCHEMA_VERSION`` in ``journal.base``.

Version 2: ``pages`` and ``pages_ocr``, generated from the ``result`` JSON (where the extractor's
metadata already lands), so the write path is unchanged and old rows answer from what they hold.

Version 3: ``batches`` and ``batch_documents``, the provider batches of ``--batch`` runs
(``journal.batch_store``).
"""

from __future__ import annotations

from dataclasses import dataclass

from docmill.errors import JournalError
from docmill.journal.batch_store import POSTGRES_STEP, SQLITE_STEP


@dataclass(frozen=True, slots=True)
class Step:
    """The statements that bring a journal to ``version``, one list per SQL dialect."""

    version: int
    sqlite: tuple[str, ...]
    postgres: tuple[str, ...]


def _sqlite_int(key: str) -> str:
    """A VIRTUAL column (SQLite can add only those): ``result.key`` when it is a whole number."""
    return (
        f"ALTER TABLE documents ADD COLUMN {key} INTEGER GENERATED ALWAYS AS "
        f"(CASE WHEN json_type(result, '$.{key}') = 'integer' "
        f"THEN json_extract(result, '$.{key}') END) VIRTUAL"
    )


def _postgres_int(key: str) -> str:
    return (
        f"ALTER TABLE docmill_documents ADD COLUMN IF NOT EXISTS {key} bigint GENERATED ALWAYS AS "
        f"(CASE WHEN jsonb_typeof(result -> '{key}') = 'number' "
        f"THEN (result ->> '{key}')::numeric::bigint END) STORED"
    )


STEPS: tuple[Step, ...] = (
    Step(
        2,
        (_sqlite_int("pages"), _sqlite_int("pages_ocr")),
        (_postgres_int("pages"), _postgres_int("pages_ocr")),
    ),
    Step(3, SQLITE_STEP, POSTGRES_STEP),
)


def steps_from(version: int, latest: int, where: str) -> list[Step]:
    """The steps that upgrade a journal at ``version`` to ``latest``; a newer journal is refused."""
    if version > latest:
        raise JournalError(
            f"{where} has journal schema version {version}; this docmill reads up to version {latest} "
            "(upgrade docmill, or use another --db)"
        )
    return [step for step in STEPS if version < step.version <= latest]
