//! The statements SQLite needs written its own way: it has no arrays (Postgres binds a whole
//! list as one `INT[]`) and no data-modifying CTEs.

use super::chunks::{ChunkRow, InsertChunks};
use super::results::{Progress, ResultRow};
use sqlx::QueryBuilder;
use sqlx::sqlite::{Sqlite, SqliteConnection, SqlitePool};
use std::collections::BTreeMap;

/// Rows (or list items) per statement: SQLite binds at most 32,766 parameters in one.
const PER_STATEMENT: usize = 1000;

/// Transactions here take SQLite's write lock up front: one that read first could find another
/// writer's commit in between and fail with `SQLITE_BUSY` instead of waiting. (The portable ones,
/// `start_batch` and `end_batch`, write in their first statement, so a plain `BEGIN` is safe.)
const BEGIN_WRITE: &str = "BEGIN IMMEDIATE";

impl InsertChunks for SqliteConnection {
    async fn insert_chunks(
        &mut self,
        batch_id: &str,
        chunks: &[ChunkRow],
    ) -> Result<(), sqlx::Error> {
        for part in chunks.chunks(PER_STATEMENT) {
            let mut q = QueryBuilder::<Sqlite>::new(
                "INSERT INTO batch_chunks (batch_id, chunk_index, first_line, last_line, \
                 request_count) ",
            );
            q.push_values(part, |mut row, c| {
                row.push_bind(batch_id)
                    .push_bind(c.chunk_index)
                    .push_bind(c.first_line)
                    .push_bind(c.last_line)
                    .push_bind(c.request_count);
            });
            q.build().execute(&mut *self).await?;
        }
        Ok(())
    }
}

/// [`Store::mark_published_many`](super::Store::mark_published_many) with `IN (...)` lists.
pub(super) async fn mark_published_many(
    pool: &SqlitePool,
    batch_id: &str,
    chunk_indexes: &[i32],
    now: i64,
) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin_with(BEGIN_WRITE).await?;
    for part in chunk_indexes.chunks(PER_STATEMENT) {
        let mut q = QueryBuilder::<Sqlite>::new("UPDATE batch_chunks SET published_at = ");
        q.push_bind(now)
            .push(" WHERE batch_id = ")
            .push_bind(batch_id)
            .push(" AND published_at IS NULL AND chunk_index IN (");
        let mut list = q.separated(", ");
        for index in part {
            list.push_bind(*index);
        }
        list.push_unseparated(")");
        q.build().execute(&mut *tx).await?;
    }
    tx.commit().await
}

/// What one call added to a batch.
#[derive(Default)]
struct Gain {
    completed: i64,
    failed: i64,
    input_tokens: i64,
    output_tokens: i64,
    cached_tokens: i64,
}

/// [`Store::record_results`](super::Store::record_results) in one transaction: each result is
/// inserted unless its line is taken or its batch is not running, and the rows actually inserted
/// are added to their batches' counts.
pub(super) async fn record_results(
    pool: &SqlitePool,
    rows: &[ResultRow],
) -> Result<Vec<Progress>, sqlx::Error> {
    let mut tx = pool.begin_with(BEGIN_WRITE).await?;
    let mut gains: BTreeMap<&str, Gain> = BTreeMap::new();
    for r in rows {
        // The WHERE also keeps SQLite from reading `ON CONFLICT` as a join's `ON`.
        let inserted = sqlx::query(
            "INSERT INTO batch_results (batch_id, line, custom_id, request_id, ok, status_code,
                                        body, error_code, error_message, prompt_tokens,
                                        completion_tokens, cached_tokens)
             SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12
             WHERE EXISTS (SELECT 1 FROM batches WHERE id = $1
                           AND status IN ('in_progress', 'cancelling'))
             ON CONFLICT (batch_id, line) DO NOTHING",
        )
        .bind(&r.batch_id)
        .bind(r.line)
        .bind(&r.custom_id)
        .bind(&r.request_id)
        .bind(r.ok)
        .bind(r.status_code)
        .bind(&r.body)
        .bind(&r.error_code)
        .bind(&r.error_message)
        .bind(r.prompt_tokens)
        .bind(r.completion_tokens)
        .bind(r.cached_tokens)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if inserted == 0 {
            continue;
        }
        let gain = gains.entry(&r.batch_id).or_default();
        if r.ok {
            gain.completed += 1;
        } else {
            gain.failed += 1;
        }
        gain.input_tokens += r.prompt_tokens.unwrap_or(0);
        gain.output_tokens += r.completion_tokens.unwrap_or(0);
        gain.cached_tokens += r.cached_tokens.unwrap_or(0);
    }
    let mut progress = Vec::with_capacity(gains.len());
    for (batch_id, gain) in gains {
        let counts = sqlx::query_as(
            "UPDATE batches
             SET completed = completed + $2, failed = failed + $3,
                 input_tokens = input_tokens + $4, output_tokens = output_tokens + $5,
                 cached_tokens = cached_tokens + $6
             WHERE id = $1
             RETURNING id, status, total, completed, failed",
        )
        .bind(batch_id)
        .bind(gain.completed)
        .bind(gain.failed)
        .bind(gain.input_tokens)
        .bind(gain.output_tokens)
        .bind(gain.cached_tokens)
        .fetch_one(&mut *tx)
        .await?;
        progress.push(counts);
    }
    tx.commit().await?;
    Ok(progress)
}
