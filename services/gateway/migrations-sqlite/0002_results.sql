-- The SQLite (standalone) twin of migrations/0002_results.sql.
-- One row per finished request, written idempotently by the collector (a redelivered result
-- finds its row taken). Rows are deleted once the batch's output and error files are written.
CREATE TABLE batch_results (
    batch_id          TEXT NOT NULL,
    line              INTEGER NOT NULL,
    custom_id         TEXT NOT NULL,
    request_id        TEXT NOT NULL,
    -- 0 or 1.
    ok                INTEGER NOT NULL,
    status_code       INTEGER,
    body              TEXT,
    error_code        TEXT,
    error_message     TEXT,
    prompt_tokens     INTEGER,
    completion_tokens INTEGER,
    cached_tokens     INTEGER,
    PRIMARY KEY (batch_id, line)
);
