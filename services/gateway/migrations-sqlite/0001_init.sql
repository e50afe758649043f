-- The SQLite (standalone) twin of migrations/0001_init.sql: same tables, columns and indexes.
-- `seq` is the rowid, so inserts never name it; AUTOINCREMENT, like BIGSERIAL, never hands out a
-- number twice. `id` stays the key other tables name.
CREATE TABLE files (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    id          TEXT NOT NULL UNIQUE,
    owner       TEXT NOT NULL,
    filename    TEXT NOT NULL,
    purpose     TEXT NOT NULL,
    bytes       INTEGER NOT NULL DEFAULT 0,
    -- 'uploading' until the last part is stored; only 'processed' files are visible.
    status      TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);
CREATE INDEX files_owner_seq ON files (owner, seq DESC);

CREATE TABLE file_parts (
    file_id  TEXT NOT NULL REFERENCES files (id) ON DELETE CASCADE,
    part_no  INTEGER NOT NULL,
    data     BLOB NOT NULL,
    PRIMARY KEY (file_id, part_no)
);

CREATE TABLE batches (
    seq                INTEGER PRIMARY KEY AUTOINCREMENT,
    id                 TEXT NOT NULL UNIQUE,
    owner              TEXT NOT NULL,
    endpoint           TEXT NOT NULL,
    model              TEXT,
    input_file_id      TEXT NOT NULL,
    completion_window  TEXT NOT NULL,
    status             TEXT NOT NULL,
    output_file_id     TEXT,
    error_file_id      TEXT,
    -- JSON text.
    errors             TEXT,
    metadata           TEXT,
    created_at         INTEGER NOT NULL,
    in_progress_at     INTEGER,
    expires_at         INTEGER NOT NULL,
    finalizing_at      INTEGER,
    completed_at       INTEGER,
    failed_at          INTEGER,
    expired_at         INTEGER,
    cancelling_at      INTEGER,
    cancelled_at       INTEGER,
    total              INTEGER NOT NULL DEFAULT 0,
    completed          INTEGER NOT NULL DEFAULT 0,
    failed             INTEGER NOT NULL DEFAULT 0,
    input_tokens       INTEGER NOT NULL DEFAULT 0,
    cached_tokens      INTEGER NOT NULL DEFAULT 0,
    output_tokens      INTEGER NOT NULL DEFAULT 0,
    chunk_count        INTEGER NOT NULL DEFAULT 0,
    -- Which gateway replica validates or publishes this batch, and until when its claim holds.
    ingest_holder      TEXT,
    ingest_lease_until INTEGER
);
CREATE INDEX batches_owner_seq ON batches (owner, seq DESC);
CREATE INDEX batches_active ON batches (status) WHERE status IN ('validating', 'in_progress', 'cancelling', 'finalizing');

-- Chunks as published to JetStream: progress, cancel and resume are computed from these rows.
CREATE TABLE batch_chunks (
    batch_id      TEXT NOT NULL REFERENCES batches (id) ON DELETE CASCADE,
    chunk_index   INTEGER NOT NULL,
    first_line    INTEGER NOT NULL,
    last_line     INTEGER NOT NULL,
    request_count INTEGER NOT NULL,
    published_at  INTEGER,
    PRIMARY KEY (batch_id, chunk_index)
);
