//! Batches and the chunks they were split into.

use super::Store;
use nightshift_shared::openai::{
    Batch, BatchErrors, BatchStatus, BatchUsage, InputTokensDetails, OutputTokensDetails,
    RequestCounts,
};
use sqlx::Row;
use sqlx::postgres::PgRow;
use std::collections::BTreeMap;

macro_rules! batch_columns {
    () => {
        "id, owner, endpoint, model, input_file_id, completion_window, status, output_file_id,
         error_file_id, errors, metadata, created_at, in_progress_at, expires_at, finalizing_at,
         completed_at, failed_at, expired_at, cancelling_at, cancelled_at, total, completed, failed,
         input_tokens, cached_tokens, output_tokens, chunk_count"
    };
}

/// A batch as stored.
#[derive(Debug, Clone)]
pub struct BatchRow {
    pub id: String,
    pub owner: String,
    pub endpoint: String,
    pub model: Option<String>,
    pub input_file_id: String,
    pub completion_window: String,
    pub status: BatchStatus,
    pub output_file_id: Option<String>,
    pub error_file_id: Option<String>,
    pub errors: Option<sqlx::types::Json<BatchErrors>>,
    pub metadata: Option<sqlx::types::Json<BTreeMap<String, String>>>,
    pub created_at: i64,
    pub in_progress_at: Option<i64>,
    pub expires_at: i64,
    pub finalizing_at: Option<i64>,
    pub completed_at: Option<i64>,
    pub failed_at: Option<i64>,
    pub expired_at: Option<i64>,
    pub cancelling_at: Option<i64>,
    pub cancelled_at: Option<i64>,
    pub total: i64,
    pub completed: i64,
    pub failed: i64,
    pub input_tokens: i64,
    pub cached_tokens: i64,
    pub output_tokens: i64,
    pub chunk_count: i32,
}

impl BatchRow {
    fn from_row(row: &PgRow) -> Result<Self, sqlx::Error> {
        let status: String = row.try_get("status")?;
        let status = BatchStatus::parse(&status).ok_or_else(|| sqlx::Error::ColumnDecode {
            index: "status".into(),
            source: format!("unknown batch status {status:?}").into(),
        })?;
        Ok(Self {
            id: row.try_get("id")?,
            owner: row.try_get("owner")?,
            endpoint: row.try_get("endpoint")?,
            model: row.try_get("model")?,
            input_file_id: row.try_get("input_file_id")?,
            completion_window: row.try_get("completion_window")?,
            status,
            output_file_id: row.try_get("output_file_id")?,
            error_file_id: row.try_get("error_file_id")?,
            errors: row.try_get("errors")?,
            metadata: row.try_get("metadata")?,
            created_at: row.try_get("created_at")?,
            in_progress_at: row.try_get("in_progress_at")?,
            expires_at: row.try_get("expires_at")?,
            finalizing_at: row.try_get("finalizing_at")?,
            completed_at: row.try_get("completed_at")?,
            failed_at: row.try_get("failed_at")?,
            expired_at: row.try_get("expired_at")?,
            cancelling_at: row.try_get("cancelling_at")?,
            cancelled_at: row.try_get("cancelled_at")?,
            total: row.try_get("total")?,
            completed: row.try_get("completed")?,
            failed: row.try_get("failed")?,
            input_tokens: row.try_get("input_tokens")?,
            cached_tokens: row.try_get("cached_tokens")?,
            output_tokens: row.try_get("output_tokens")?,
            chunk_count: row.try_get("chunk_count")?,
        })
    }

    pub fn to_object(&self) -> Batch {
        let u = |v: i64| v.max(0) as u64;
        Batch {
            id: self.id.clone(),
            object: "batch".into(),
            endpoint: self.endpoint.clone(),
            model: self.model.clone(),
            errors: self.errors.as_ref().map(|e| e.0.clone()),
            input_file_id: self.input_file_id.clone(),
            completion_window: self.completion_window.clone(),
            status: self.status,
            output_file_id: self.output_file_id.clone(),
            error_file_id: self.error_file_id.clone(),
            created_at: self.created_at,
            in_progress_at: self.in_progress_at,
            expires_at: Some(self.expires_at),
            finalizing_at: self.finalizing_at,
            completed_at: self.completed_at,
            failed_at: self.failed_at,
            expired_at: self.expired_at,
            cancelling_at: self.cancelling_at,
            cancelled_at: self.cancelled_at,
            request_counts: RequestCounts {
                total: u(self.total),
                completed: u(self.completed),
                failed: u(self.failed),
            },
            usage: BatchUsage {
                input_tokens: u(self.input_tokens),
                input_tokens_details: InputTokensDetails { cached_tokens: u(self.cached_tokens) },
                output_tokens: u(self.output_tokens),
                output_tokens_details: OutputTokensDetails { reasoning_tokens: 0 },
                total_tokens: u(self.input_tokens) + u(self.output_tokens),
            },
            metadata: self.metadata.as_ref().map(|m| m.0.clone()),
        }
    }
}

/// What `POST /v1/batches` stores.
#[derive(Debug, Clone)]
pub struct NewBatch {
    pub id: String,
    pub owner: String,
    pub endpoint: String,
    pub input_file_id: String,
    pub completion_window: String,
    pub metadata: Option<BTreeMap<String, String>>,
    pub created_at: i64,
    pub expires_at: i64,
}

/// One chunk of a batch: consecutive requests from `first_line` to `last_line` of the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkRow {
    pub chunk_index: i32,
    pub first_line: i32,
    pub last_line: i32,
    pub request_count: i32,
}

impl Store {
    pub async fn insert_batch(&self, b: &NewBatch) -> Result<BatchRow, sqlx::Error> {
        let row = sqlx::query(concat!(
            "INSERT INTO batches (id, owner, endpoint, input_file_id, completion_window, status,
                                  metadata, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, 'validating', $6, $7, $8) RETURNING ",
            batch_columns!()
        ))
        .bind(&b.id)
        .bind(&b.owner)
        .bind(&b.endpoint)
        .bind(&b.input_file_id)
        .bind(&b.completion_window)
        .bind(b.metadata.clone().map(sqlx::types::Json))
        .bind(b.created_at)
        .bind(b.expires_at)
        .fetch_one(&self.pool)
        .await?;
        BatchRow::from_row(&row)
    }

    pub async fn get_batch(&self, owner: &str, id: &str) -> Result<Option<BatchRow>, sqlx::Error> {
        let row = sqlx::query(concat!(
            "SELECT ",
            batch_columns!(),
            " FROM batches WHERE id = $1 AND owner = $2"
        ))
        .bind(id)
        .bind(owner)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(BatchRow::from_row).transpose()
    }

    /// A batch whoever owns it: for background work, never for a request handler.
    pub async fn get_batch_unscoped(&self, id: &str) -> Result<Option<BatchRow>, sqlx::Error> {
        let row = sqlx::query(concat!("SELECT ", batch_columns!(), " FROM batches WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(BatchRow::from_row).transpose()
    }

    /// Newest first, `limit + 1` rows so the caller can tell `has_more`.
    pub async fn list_batches(
        &self,
        owner: &str,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<BatchRow>, sqlx::Error> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            batch_columns!(),
            " FROM batches
             WHERE owner = $1
               AND ($2::TEXT IS NULL OR seq < (SELECT seq FROM batches WHERE id = $2 AND owner = $1))
             ORDER BY seq DESC LIMIT $3"
        ))
        .bind(owner)
        .bind(after)
        .bind(limit + 1)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(BatchRow::from_row).collect()
    }

    /// Claims (or renews) the right to validate and publish a batch until `lease_until`.
    /// Returns false while another replica's claim holds.
    pub async fn claim_ingest(
        &self,
        id: &str,
        holder: &str,
        now: i64,
        lease_until: i64,
    ) -> Result<bool, sqlx::Error> {
        let done = sqlx::query(
            "UPDATE batches SET ingest_holder = $2, ingest_lease_until = $4
             WHERE id = $1 AND (ingest_holder IS NULL OR ingest_holder = $2 OR ingest_lease_until < $3)",
        )
        .bind(id)
        .bind(holder)
        .bind(now)
        .bind(lease_until)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    pub async fn release_ingest(&self, id: &str, holder: &str) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE batches SET ingest_holder = NULL, ingest_lease_until = NULL
             WHERE id = $1 AND ingest_holder = $2",
        )
        .bind(id)
        .bind(holder)
        .execute(&self.pool)
        .await
        .map(|_| ())
    }

    /// Batches with background work no live replica holds: validation, publishing, finalizing,
    /// and cancelled or expired batches whose workers have had `grace_before` to finish.
    pub async fn batches_needing_work(
        &self,
        now: i64,
        grace_before: i64,
    ) -> Result<Vec<String>, sqlx::Error> {
        sqlx::query_scalar(
            "SELECT b.id FROM batches b
             WHERE (b.ingest_lease_until IS NULL OR b.ingest_lease_until < $1)
               AND (b.status IN ('validating', 'finalizing')
                    OR (b.status IN ('in_progress', 'cancelling') AND b.completed + b.failed >= b.total)
                    OR (b.status = 'cancelling' AND b.cancelling_at < $2)
                    OR (b.status = 'in_progress' AND b.expires_at < $2)
                    OR (b.status = 'in_progress' AND EXISTS (
                        SELECT 1 FROM batch_chunks c
                        WHERE c.batch_id = b.id AND c.published_at IS NULL)))
             ORDER BY b.seq",
        )
        .bind(now)
        .bind(grace_before)
        .fetch_all(&self.pool)
        .await
    }

    /// Running batches past their completion window, whose workers must be told.
    pub async fn expired_running(&self, now: i64) -> Result<Vec<String>, sqlx::Error> {
        sqlx::query_scalar(
            "SELECT id FROM batches WHERE status = 'in_progress' AND expires_at <= $1 ORDER BY seq",
        )
        .bind(now)
        .fetch_all(&self.pool)
        .await
    }

    /// Ends a batch that failed validation.
    pub async fn fail_batch(
        &self,
        id: &str,
        errors: &BatchErrors,
        now: i64,
    ) -> Result<bool, sqlx::Error> {
        let done = sqlx::query(
            "UPDATE batches SET status = 'failed', failed_at = $3, errors = $2
             WHERE id = $1 AND status = 'validating'",
        )
        .bind(id)
        .bind(sqlx::types::Json(errors))
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Records a validated batch's chunks and moves it to `in_progress`, all or nothing.
    /// Returns false when the batch left `validating` meanwhile (cancelled).
    pub async fn start_batch(
        &self,
        id: &str,
        total: i64,
        model: Option<&str>,
        chunks: &[ChunkRow],
        now: i64,
    ) -> Result<bool, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "UPDATE batches SET status = 'in_progress', in_progress_at = $2, total = $3, model = $4,
                                chunk_count = $5
             WHERE id = $1 AND status = 'validating'",
        )
        .bind(id)
        .bind(now)
        .bind(total)
        .bind(model)
        .bind(chunks.len() as i32)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        sqlx::query("DELETE FROM batch_chunks WHERE batch_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let column = |f: fn(&ChunkRow) -> i32| chunks.iter().map(f).collect::<Vec<i32>>();
        sqlx::query(
            "INSERT INTO batch_chunks (batch_id, chunk_index, first_line, last_line, request_count)
             SELECT $1, * FROM UNNEST($2::INT[], $3::INT[], $4::INT[], $5::INT[])",
        )
        .bind(id)
        .bind(column(|c| c.chunk_index))
        .bind(column(|c| c.first_line))
        .bind(column(|c| c.last_line))
        .bind(column(|c| c.request_count))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    pub async fn unpublished_chunks(&self, id: &str) -> Result<Vec<ChunkRow>, sqlx::Error> {
        let rows = sqlx::query(
            "SELECT chunk_index, first_line, last_line, request_count FROM batch_chunks
             WHERE batch_id = $1 AND published_at IS NULL ORDER BY chunk_index",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ChunkRow {
                    chunk_index: r.try_get(0)?,
                    first_line: r.try_get(1)?,
                    last_line: r.try_get(2)?,
                    request_count: r.try_get(3)?,
                })
            })
            .collect()
    }

    /// Counts of a batch's chunks: (all, published).
    pub async fn chunk_progress(&self, id: &str) -> Result<(i64, i64), sqlx::Error> {
        let row = sqlx::query(
            "SELECT COUNT(*), COUNT(published_at) FROM batch_chunks WHERE batch_id = $1",
        )
        .bind(id)
        .fetch_one(&self.pool)
        .await?;
        Ok((row.try_get(0)?, row.try_get(1)?))
    }

    /// Moves a running batch to `cancelling`. Returns the batch as it now is; a batch that was
    /// already past cancelling comes back unchanged for the caller to judge.
    pub async fn cancel_batch(
        &self,
        owner: &str,
        id: &str,
        now: i64,
    ) -> Result<Option<BatchRow>, sqlx::Error> {
        sqlx::query(
            "UPDATE batches SET status = 'cancelling', cancelling_at = $3
             WHERE id = $1 AND owner = $2 AND status IN ('validating', 'in_progress')",
        )
        .bind(id)
        .bind(owner)
        .bind(now)
        .execute(&self.pool)
        .await?;
        self.get_batch(owner, id).await
    }
}

impl Store {
    pub async fn mark_published_many(
        &self,
        id: &str,
        chunk_indexes: &[i32],
        now: i64,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE batch_chunks SET published_at = $3
             WHERE batch_id = $1 AND chunk_index = ANY($2) AND published_at IS NULL",
        )
        .bind(id)
        .bind(chunk_indexes)
        .bind(now)
        .execute(&self.pool)
        .await
        .map(|_| ())
    }

    /// Ids of batches in `status`.
    pub async fn batches_in_status(&self, status: &str) -> Result<Vec<String>, sqlx::Error> {
        sqlx::query_scalar("SELECT id FROM batches WHERE status = $1 ORDER BY seq")
            .bind(status)
            .fetch_all(&self.pool)
            .await
    }

    /// Ends cancelling batches none of whose chunks reached a worker: nothing can still be running.
    pub async fn cancel_unpublished(&self, now: i64) -> Result<Vec<String>, sqlx::Error> {
        sqlx::query_scalar(
            "UPDATE batches b SET status = 'cancelled', cancelled_at = $1
             WHERE b.status = 'cancelling'
               AND NOT EXISTS (SELECT 1 FROM batch_chunks c
                               WHERE c.batch_id = b.id AND c.published_at IS NOT NULL)
             RETURNING b.id",
        )
        .bind(now)
        .fetch_all(&self.pool)
        .await
    }
}
