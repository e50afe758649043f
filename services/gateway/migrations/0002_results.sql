-- One row per finished request, written idempotently by the collector (a redelivered result
-- finds its row taken). Rows are deleted once the batch's output and error files are written.
CREATE TABLE batch_results (
    batch_id          TEXT NOT NULL,
    line              INTEGER NOT NULL,
    custom_id         TEXT NOT NULL,
    request_id        TEXT NOT NULL,
    ok                BOOLEAN NOT NULL,
    status_code       INTEGER,
    body              TEXT,
    error_code        TEXT,
    error_message     TEXT,
    prompt_tokens     BIGINT,
    completion_tokens BIGINT,
    cached_tokens     BIGINT,
    PRIMARY KEY (batch_id, line)
);
