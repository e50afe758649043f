//! Batches and the chunks they were split into.

use super::Store;
use nightshift_shared::on_db;
use nightshift_shared::openai::{
    Batch, BatchErrors, BatchStatus, BatchUsage, InputTokensDetails, OutputTokensDetails,
    RequestCounts,
};
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
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct BatchRow {
    pub id: String,
    pub owner: String,
    pub endpoint: String,
    pub model: Option<String>,
    pub input_file_id: String,
    pub completion_window: String,
    #[sqlx(try_from = "String")]
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

impl Store {
    pub async fn insert_batch(&self, b: &NewBatch) -> Result<BatchRow, sqlx::Error> {
        on_db!(&self.db, pool => {
            sqlx::query_as(concat!(
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
            .fetch_one(pool)
            .await
        })
    }

    pub async fn get_batch(&self, owner: &str, id: &str) -> Result<Option<BatchRow>, sqlx::Error> {
        on_db!(&self.db, pool => {
            sqlx::query_as(concat!(
                "SELECT ",
                batch_columns!(),
                " FROM batches WHERE id = $1 AND owner = $2"
            ))
            .bind(id)
            .bind(owner)
            .fetch_optional(pool)
            .await
        })
    }

    /// A batch whoever owns it: for background work, never for a request handler.
    pub async fn get_batch_unscoped(&self, id: &str) -> Result<Option<BatchRow>, sqlx::Error> {
        on_db!(&self.db, pool => {
            sqlx::query_as(concat!("SELECT ", batch_columns!(), " FROM batches WHERE id = $1"))
                .bind(id)
                .fetch_optional(pool)
                .await
        })
    }

    /// Newest first, `limit + 1` rows so the caller can tell `has_more`.
    pub async fn list_batches(
        &self,
        owner: &str,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<BatchRow>, sqlx::Error> {
        on_db!(&self.db, pool => {
            sqlx::query_as(concat!(
                "SELECT ",
                batch_columns!(),
                " FROM batches
                 WHERE owner = $1
                   AND (CAST($2 AS TEXT) IS NULL
                        OR seq < (SELECT seq FROM batches WHERE id = $2 AND owner = $1))
                 ORDER BY seq DESC LIMIT $3"
            ))
            .bind(owner)
            .bind(after)
            .bind(limit + 1)
            .fetch_all(pool)
            .await
        })
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
        let done = on_db!(&self.db, pool => {
            sqlx::query(
                "UPDATE batches SET ingest_holder = $2, ingest_lease_until = $4
                 WHERE id = $1
                   AND (ingest_holder IS NULL OR ingest_holder = $2 OR ingest_lease_until < $3)",
            )
            .bind(id)
            .bind(holder)
            .bind(now)
            .bind(lease_until)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(done > 0)
    }

    pub async fn release_ingest(&self, id: &str, holder: &str) -> Result<(), sqlx::Error> {
        on_db!(&self.db, pool => {
            sqlx::query(
                "UPDATE batches SET ingest_holder = NULL, ingest_lease_until = NULL
                 WHERE id = $1 AND ingest_holder = $2",
            )
            .bind(id)
            .bind(holder)
            .execute(pool)
            .await
            .map(|_| ())
        })
    }

    /// Batches with background work no live replica holds: validation, publishing, finalizing,
    /// and cancelled or expired batches whose workers have had `grace_before` to finish.
    pub async fn batches_needing_work(
        &self,
        now: i64,
        grace_before: i64,
    ) -> Result<Vec<String>, sqlx::Error> {
        on_db!(&self.db, pool => {
            sqlx::query_scalar(
                "SELECT b.id FROM batches b
                 WHERE (b.ingest_lease_until IS NULL OR b.ingest_lease_until < $1)
                   AND (b.status IN ('validating', 'finalizing')
                        OR (b.status IN ('in_progress', 'cancelling')
                            AND b.completed + b.failed >= b.total)
                        OR (b.status = 'cancelling' AND b.cancelling_at < $2)
                        OR (b.status = 'in_progress' AND b.expires_at < $2)
                        OR (b.status = 'in_progress' AND EXISTS (
                            SELECT 1 FROM batch_chunks c
                            WHERE c.batch_id = b.id AND c.published_at IS NULL)))
                 ORDER BY b.seq",
            )
            .bind(now)
            .bind(grace_before)
            .fetch_all(pool)
            .await
        })
    }

    /// Running batches past their completion window, whose workers must be told.
    pub async fn expired_running(&self, now: i64) -> Result<Vec<String>, sqlx::Error> {
        on_db!(&self.db, pool => {
            sqlx::query_scalar(
                "SELECT id FROM batches WHERE status = 'in_progress' AND expires_at <= $1
                 ORDER BY seq",
            )
            .bind(now)
            .fetch_all(pool)
            .await
        })
    }

    /// Ends a batch that failed validation.
    pub async fn fail_batch(
        &self,
        id: &str,
        errors: &BatchErrors,
        now: i64,
    ) -> Result<bool, sqlx::Error> {
        let done = on_db!(&self.db, pool => {
            sqlx::query(
                "UPDATE batches SET status = 'failed', failed_at = $3, errors = $2
                 WHERE id = $1 AND status = 'validating'",
            )
            .bind(id)
            .bind(sqlx::types::Json(errors))
            .bind(now)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(done > 0)
    }

    /// Moves a running batch to `cancelling`. Returns the batch as it now is; a batch that was
    /// already past cancelling comes back unchanged for the caller to judge.
    pub async fn cancel_batch(
        &self,
        owner: &str,
        id: &str,
        now: i64,
    ) -> Result<Option<BatchRow>, sqlx::Error> {
        on_db!(&self.db, pool => {
            sqlx::query(
                "UPDATE batches SET status = 'cancelling', cancelling_at = $3
                 WHERE id = $1 AND owner = $2 AND status IN ('validating', 'in_progress')",
            )
            .bind(id)
            .bind(owner)
            .bind(now)
            .execute(pool)
            .await
            .map(|_| ())
        })?;
        self.get_batch(owner, id).await
    }
}

impl Store {
    /// Ids of batches in `status`.
    pub async fn batches_in_status(&self, status: &str) -> Result<Vec<String>, sqlx::Error> {
        on_db!(&self.db, pool => {
            sqlx::query_scalar("SELECT id FROM batches WHERE status = $1 ORDER BY seq")
                .bind(status)
                .fetch_all(pool)
                .await
        })
    }

    /// Ends cancelling batches none of whose chunks reached a worker: nothing can still be running.
    // `RETURNING id`, not `b.id`: SQLite's RETURNING does not know the alias.
    pub async fn cancel_unpublished(&self, now: i64) -> Result<Vec<String>, sqlx::Error> {
        on_db!(&self.db, pool => {
            sqlx::query_scalar(
                "UPDATE batches AS b SET status = 'cancelled', cancelled_at = $1
                 WHERE b.status = 'cancelling'
                   AND NOT EXISTS (SELECT 1 FROM batch_chunks c
                                   WHERE c.batch_id = b.id AND c.published_at IS NOT NULL)
                 RETURNING id",
            )
            .bind(now)
            .fetch_all(pool)
            .await
        })
    }
}
