-- Files: metadata in `files`, bytes in 1 MiB `file_parts`, so every replica reads them and uploads stream.
CREATE TABLE files (
    id          TEXT PRIMARY KEY,
    seq         BIGSERIAL NOT NULL UNIQUE,
    owner       TEXT NOT NULL,
    filename    TEXT NOT NULL,
    purpose     TEXT NOT NULL,
    bytes       BIGINT NOT NULL DEFAULT 0,
    -- 'uploading' until the last part is stored; only 'processed' files are visible.
    status      TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE INDEX files_owner_seq ON files (owner, seq DESC);

CREATE TABLE file_parts (
    file_id  TEXT NOT NULL REFERENCES files (id) ON DELETE CASCADE,
    part_no  INTEGER NOT NULL,
    data     BYTEA NOT NULL,
    PRIMARY KEY (file_id, part_no)
);

CREATE TABLE batches (
    id                 TEXT PRIMARY KEY,
    seq                BIGSERIAL NOT NULL UNIQUE,
    owner              TEXT NOT NULL,
    endpoint           TEXT NOT NULL,
    model              TEXT,
    input_file_id      TEXT NOT NULL,
    completion_window  TEXT NOT NULL,
    status             TEXT NOT NULL,
    output_file_id     TEXT,
    error_file_id      TEXT,
    errors             JSONB,
    metadata           JSONB,
    created_at         BIGINT NOT NULL,
    in_progress_at     BIGINT,
    expires_at         BIGINT NOT NULL,
    finalizing_at      BIGINT,
    completed_at       BIGINT,
    failed_at          BIGINT,
    expired_at         BIGINT,
    cancelling_at      BIGINT,
    cancelled_at       BIGINT,
    total              BIGINT NOT NULL DEFAULT 0,
    completed          BIGINT NOT NULL DEFAULT 0,
    failed             BIGINT NOT NULL DEFAULT 0,
    input_tokens       BIGINT NOT NULL DEFAULT 0,
    cached_tokens      BIGINT NOT NULL DEFAULT 0,
    output_tokens      BIGINT NOT NULL DEFAULT 0,
    chunk_count        INTEGER NOT NULL DEFAULT 0,
    -- Which gateway replica validates or publishes this batch, and until when its claim holds.
    ingest_holder      TEXT,
    ingest_lease_until BIGINT
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
    published_at  BIGINT,
    PRIMARY KEY (batch_id, chunk_index)
);
