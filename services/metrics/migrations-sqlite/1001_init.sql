-- The metrics service's own tables on SQLite (standalone mode): the same tables, keys and
-- indexes as migrations/1001_init.sql on Postgres. STRICT tables reject a value of the wrong
-- type as Postgres would. Timestamps are Unix milliseconds.

-- One row per batch: its latest lifecycle step as the gateway published it.
CREATE TABLE metrics_batches (
    batch_id   TEXT PRIMARY KEY NOT NULL,
    owner      TEXT NOT NULL,
    status     TEXT NOT NULL,
    model      TEXT,
    total      INTEGER NOT NULL,
    completed  INTEGER NOT NULL,
    failed     INTEGER NOT NULL,
    -- First `in_progress` step, and first final step (completed, failed, cancelled, expired).
    started_at INTEGER,
    ended_at   INTEGER,
    -- `at` of the step the row shows, so a late older step cannot overwrite a newer one.
    updated_at INTEGER NOT NULL
) STRICT;

-- One row per request line of a batch; a re-run of the line overwrites it.
-- The primary key is the batch index: WITHOUT ROWID stores the rows in it, so every per-batch
-- aggregate is one range scan.
CREATE TABLE metrics_requests (
    batch_id          TEXT NOT NULL,
    line              INTEGER NOT NULL,
    chunk_index       INTEGER NOT NULL,
    worker_id         TEXT NOT NULL,
    delivery          INTEGER NOT NULL,
    finished_at       INTEGER NOT NULL,
    model             TEXT,
    queue_wait_ms     REAL NOT NULL,
    latency_ms        REAL NOT NULL,
    attempts          INTEGER NOT NULL,
    error             TEXT,
    prompt_tokens     INTEGER,
    completion_tokens INTEGER,
    cached_tokens     INTEGER,
    load_ms           REAL,
    PRIMARY KEY (batch_id, line)
) STRICT, WITHOUT ROWID;

-- Raw GPU readings, one row per GPU per sample, kept for the raw retention window (longer when
-- the sample belongs to a batch's chunk), then rolled into metrics_gpu_minutes.
CREATE TABLE metrics_gpu_samples (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    host               TEXT NOT NULL,
    gpu_uuid           TEXT NOT NULL,
    worker_id          TEXT NOT NULL,
    at                 INTEGER NOT NULL,
    gpu_name           TEXT NOT NULL,
    source             TEXT NOT NULL,
    trigger            TEXT NOT NULL,
    batch_id           TEXT,
    memory_used_bytes  INTEGER NOT NULL,
    memory_total_bytes INTEGER,
    memory_free_bytes  INTEGER,
    utilization_pct    INTEGER,
    temperature_c      INTEGER,
    UNIQUE (host, gpu_uuid, worker_id, at)
) STRICT;
CREATE INDEX metrics_gpu_samples_at ON metrics_gpu_samples (at);

-- Per-minute aggregates of older samples: one row per GPU per minute, however long kept.
CREATE TABLE metrics_gpu_minutes (
    host               TEXT NOT NULL,
    gpu_uuid           TEXT NOT NULL,
    minute             INTEGER NOT NULL,
    gpu_name           TEXT NOT NULL,
    source             TEXT NOT NULL,
    worker_id          TEXT NOT NULL,
    samples            INTEGER NOT NULL,
    min_used_bytes     INTEGER NOT NULL,
    max_used_bytes     INTEGER NOT NULL,
    avg_used_bytes     REAL NOT NULL,
    last_used_bytes    INTEGER NOT NULL,
    last_at            INTEGER NOT NULL,
    memory_total_bytes INTEGER,
    PRIMARY KEY (host, gpu_uuid, minute)
) STRICT;
CREATE INDEX metrics_gpu_minutes_minute ON metrics_gpu_minutes (minute);

-- The latest reading of each GPU, for /v1/gpus without scanning samples.
CREATE TABLE metrics_gpus (
    host               TEXT NOT NULL,
    gpu_uuid           TEXT NOT NULL,
    worker_id          TEXT NOT NULL,
    at                 INTEGER NOT NULL,
    gpu_name           TEXT NOT NULL,
    source             TEXT NOT NULL,
    memory_used_bytes  INTEGER NOT NULL,
    memory_total_bytes INTEGER,
    memory_free_bytes  INTEGER,
    utilization_pct    INTEGER,
    temperature_c      INTEGER,
    PRIMARY KEY (host, gpu_uuid)
) STRICT;

-- Model loads seen after warm-up.
CREATE TABLE metrics_model_reloads (
    worker_id TEXT NOT NULL,
    model     TEXT NOT NULL,
    at        INTEGER NOT NULL,
    load_ms   REAL NOT NULL,
    batch_id  TEXT,
    PRIMARY KEY (worker_id, model, at)
) STRICT;
CREATE INDEX metrics_model_reloads_batch ON metrics_model_reloads (batch_id);
CREATE INDEX metrics_model_reloads_at ON metrics_model_reloads (at);
