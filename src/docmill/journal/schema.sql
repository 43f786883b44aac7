-- docmill journal, schema version 1 (PRAGMA user_version); later versions: journal/migrations.py. One row per (source, path, fingerprint).
CREATE TABLE IF NOT EXISTS runs (
    id          INTEGER PRIMARY KEY,
    source      TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    strategy    TEXT NOT NULL,
    workers     INTEGER NOT NULL,
    total       INTEGER,
    state       TEXT NOT NULL,          -- running | done | interrupted | failed
    started     REAL NOT NULL,
    finished    REAL,
    heartbeat   REAL,
    config      TEXT NOT NULL DEFAULT '{}',
    stats       TEXT NOT NULL DEFAULT '{}'
);

CREATE TABLE IF NOT EXISTS documents (
    source        TEXT NOT NULL,
    path          TEXT NOT NULL,
    fingerprint   TEXT NOT NULL,
    sha256        TEXT,
    size          INTEGER,
    mtime_ns      INTEGER,
    status        TEXT NOT NULL,        -- ok | empty | duplicate | failed | quarantined | crashed
    label         TEXT,
    score         REAL,
    result        TEXT NOT NULL DEFAULT '{}',
    error_type    TEXT,
    error_message TEXT,
    traceback     TEXT,
    retryable     INTEGER NOT NULL DEFAULT 0,
    attempts      INTEGER NOT NULL DEFAULT 1,
    failures      INTEGER NOT NULL DEFAULT 0,
    duplicate_of  TEXT,
    worker        TEXT,
    started       REAL,
    finished      REAL,
    run_id        INTEGER REFERENCES runs(id),
    PRIMARY KEY (source, path, fingerprint)
) WITHOUT ROWID;

CREATE INDEX IF NOT EXISTS documents_by_hash ON documents (source, fingerprint, sha256);
CREATE INDEX IF NOT EXISTS documents_by_run ON documents (run_id, finished);
CREATE INDEX IF NOT EXISTS documents_by_status ON documents (source, fingerprint, status);
