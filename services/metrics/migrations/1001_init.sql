-- The metrics service's own tables; everything in them comes from the telemetry stream.
-- Timestamps are Unix milliseconds.

-- One row per batch: its latest lifecycle step as the gateway published it.
CREATE TABLE metrics_batches (
    batch_id   TEXT PRIMARY KEY,
    owner      TEXT NOT NULL,
    status     TEXT NOT NULL,
    model      TEXT,
    total      BIGINT NOT NULL,
    completed  BIGINT NOT NULL,
    failed     BIGINT NOT NULL,
    -- First `in_progress` step, and first final step (completed, failed, cancelled, expired).
    started_at BIGINT,
    ended_at   BIGINT,
    -- `at` of the step the row shows, so a late older step cannot overwrite a newer one.
    updated_at BIGINT NOT NULL
);

-- One row per request line of a batch; a re-run of the line overwrites it.
-- The primary key is the batch index: every per-batch aggregate is a range scan on it.
CREATE TABLE metrics_requests (
    batch_id          TEXT NOT NULL,
    line              INTEGER NOT NULL,
    chunk_index       INTEGER NOT NULL,
    worker_id         TEXT NOT NULL,
    delivery          BIGINT NOT NULL,
    finished_at       BIGINT NOT NULL,
    model             TEXT,
    queue_wait_ms     DOUBLE PRECISION NOT NULL,
    latency_ms        DOUBLE PRECISION NOT NULL,
    attempts          INTEGER NOT NULL,
    error             TEXT,
    prompt_tokens     BIGINT,
    completion_tokens BIGINT,
    cached_tokens     BIGINT,
    load_ms           DOUBLE PRECISION,
    PRIMARY KEY (batch_id, line)
);

-- Raw GPU readings, one row per GPU per sample, kept for the raw retention window (longer when
-- the sample belongs to a batch's chunk), then rolled into metrics_gpu_minutes.
CREATE TABLE metrics_gpu_samples (
    id                 BIGSERIAL PRIMARY KEY,
    host               TEXT NOT NULL,
    gpu_uuid           TEXT NOT NULL,
    worker_id          TEXT NOT NULL,
    at                 BIGINT NOT NULL,
    gpu_name           TEXT NOT NULL,
    source             TEXT NOT NULL,
    trigger            TEXT NOT NULL,
    batch_id           TEXT,
    memory_used_bytes  BIGINT NOT NULL,
    memory_total_bytes BIGINT,
    memory_free_bytes  BIGINT,
    utilization_pct    INTEGER,
    temperature_c      INTEGER,
    UNIQUE (host, gpu_uuid, worker_id, at)
);
CREATE INDEX metrics_gpu_samples_at ON metrics_gpu_samples (at);

-- Per-minute aggregates of older samples: one row per GPU per minute, however long kept.
CREATE TABLE metrics_gpu_minutes (
    host               TEXT NOT NULL,
    gpu_uuid           TEXT NOT NULL,
    minute             BIGINT NOT NULL,
    gpu_name           TEXT NOT NULL,
    source             TEXT NOT NULL,
    worker_id          TEXT NOT NULL,
    samples            BIGINT NOT NULL,
    min_used_bytes     BIGINT NOT NULL,
    max_used_bytes     BIGINT NOT NULL,
    avg_used_bytes     DOUBLE PRECISION NOT NULL,
    last_used_bytes    BIGINT NOT NULL,
    last_at            BIGINT NOT NULL,
    memory_total_bytes BIGINT,
    PRIMARY KEY (host, gpu_uuid, minute)
);
CREATE INDEX metrics_gpu_minutes_minute ON metrics_gpu_minutes (minute);

-- The latest reading of each GPU, for /v1/gpus without scanning samples.
CREATE TABLE metrics_gpus (
    host               TEXT NOT NULL,
    gpu_uuid           TEXT NOT NULL,
    worker_id          TEXT NOT NULL,
    at                 BIGINT NOT NULL,
    gpu_name           TEXT NOT NULL,
    source             TEXT NOT NULL,
    memory_used_bytes  BIGINT NOT NULL,
    memory_total_bytes BIGINT,
    memory_free_bytes  BIGINT,
    utilization_pct    INTEGER,
    temperature_c      INTEGER,
    PRIMARY KEY (host, gpu_uuid)
);

-- Model loads seen after warm-up.
CREATE TABLE metrics_model_reloads (
    worker_id TEXT NOT NULL,
    model     TEXT NOT NULL,
    at        BIGINT NOT NULL,
    load_ms   DOUBLE PRECISION NOT NULL,
    batch_id  TEXT,
    PRIMARY KEY (worker_id, model, at)
);
CREATE INDEX metrics_model_reloads_batch ON metrics_model_reloads (batch_id);
CREATE INDEX metrics_model_reloads_at ON metrics_model_reloads (at);
