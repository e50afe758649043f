-- The gateway's tables as STRICT tables, as the metrics service's already are: SQLite then
-- refuses a value of the wrong type as Postgres does, instead of storing it as it came, and `ok`
-- holds 0 or 1 only, as a Postgres BOOLEAN. SQLite cannot make a table STRICT in place: each is
-- rebuilt and its rows copied, in the migration's one transaction.
--
-- The order matters with foreign keys on (sqlx runs SQLite migrations in a transaction, where
-- they cannot be turned off): dropping a parent deletes its rows first, which cascades into every
-- table that names it. So the new children name the new parents, the old children go before the
-- old parents, and the renames (which rewrite references to a renamed table) come last.

CREATE TABLE files_strict (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    id          TEXT NOT NULL UNIQUE,
    owner       TEXT NOT NULL,
    filename    TEXT NOT NULL,
    purpose     TEXT NOT NULL,
    bytes       INTEGER NOT NULL DEFAULT 0,
    status      TEXT NOT NULL,
    created_at  INTEGER NOT NULL
) STRICT;
INSERT INTO files_strict SELECT * FROM files;

CREATE TABLE file_parts_strict (
    file_id  TEXT NOT NULL REFERENCES files_strict (id) ON DELETE CASCADE,
    part_no  INTEGER NOT NULL,
    data     BLOB NOT NULL,
    PRIMARY KEY (file_id, part_no)
) STRICT;
INSERT INTO file_parts_strict SELECT * FROM file_parts;

CREATE TABLE batches_strict (
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
    ingest_holder      TEXT,
    ingest_lease_until INTEGER
) STRICT;
INSERT INTO batches_strict SELECT * FROM batches;

CREATE TABLE batch_chunks_strict (
    batch_id      TEXT NOT NULL REFERENCES batches_strict (id) ON DELETE CASCADE,
    chunk_index   INTEGER NOT NULL,
    first_line    INTEGER NOT NULL,
    last_line     INTEGER NOT NULL,
    request_count INTEGER NOT NULL,
    published_at  INTEGER,
    PRIMARY KEY (batch_id, chunk_index)
) STRICT;
INSERT INTO batch_chunks_strict SELECT * FROM batch_chunks;

CREATE TABLE batch_results_strict (
    batch_id          TEXT NOT NULL,
    line              INTEGER NOT NULL,
    custom_id         TEXT NOT NULL,
    request_id        TEXT NOT NULL,
    ok                INTEGER NOT NULL CHECK (ok IN (0, 1)),
    status_code       INTEGER,
    body              TEXT,
    error_code        TEXT,
    error_message     TEXT,
    prompt_tokens     INTEGER,
    completion_tokens INTEGER,
    cached_tokens     INTEGER,
    PRIMARY KEY (batch_id, line)
) STRICT;
INSERT INTO batch_results_strict SELECT * FROM batch_results;

DROP TABLE file_parts;
DROP TABLE files;
DROP TABLE batch_chunks;
DROP TABLE batches;
DROP TABLE batch_results;

ALTER TABLE files_strict RENAME TO files;
ALTER TABLE file_parts_strict RENAME TO file_parts;
ALTER TABLE batches_strict RENAME TO batches;
ALTER TABLE batch_chunks_strict RENAME TO batch_chunks;
ALTER TABLE batch_results_strict RENAME TO batch_results;

CREATE INDEX files_owner_seq ON files (owner, seq DESC);
CREATE INDEX batches_owner_seq ON batches (owner, seq DESC);
CREATE INDEX batches_active ON batches (status) WHERE status IN ('validating', 'in_progress', 'cancelling', 'finalizing');
