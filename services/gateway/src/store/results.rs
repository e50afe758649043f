//! Request results as the collector records them, and the final transitions that use them.

use super::Store;
use nightshift_shared::db::Db;
use nightshift_shared::on_db;
use nightshift_shared::openai::BatchStatus;

/// One result as the collector stores it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ResultRow {
    pub batch_id: String,
    pub line: i32,
    pub custom_id: String,
    pub request_id: String,
    pub ok: bool,
    pub status_code: Option<i32>,
    /// The response body as raw JSON text.
    pub body: Option<String>,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    pub prompt_tokens: Option<i64>,
    pub completion_tokens: Option<i64>,
    pub cached_tokens: Option<i64>,
}

impl ResultRow {
    /// About how much memory the row holds.
    pub fn bytes(&self) -> usize {
        let text = |s: &Option<String>| s.as_ref().map_or(0, String::len);
        64 + self.custom_id.len()
            + self.request_id.len()
            + text(&self.body)
            + text(&self.error_message)
    }

    /// The failure recorded in place of a result the database refused: the request ends in the
    /// error file with the reason, and its batch can end.
    pub fn unstorable(refused: &ResultRow, reason: &sqlx::Error) -> Self {
        let clean = |s: &str| s.replace('\0', "\\u0000");
        Self {
            batch_id: refused.batch_id.clone(),
            line: refused.line,
            custom_id: clean(&refused.custom_id),
            request_id: clean(&refused.request_id),
            ok: false,
            status_code: None,
            body: None,
            error_code: Some("result_unstorable".into()),
            error_message: Some(clean(&format!(
                "The request ran, but its result could not be stored: {reason}"
            ))),
            prompt_tokens: refused.prompt_tokens,
            completion_tokens: refused.completion_tokens,
            cached_tokens: refused.cached_tokens,
        }
    }
}

/// A batch's counts after the collector recorded results for it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Progress {
    #[sqlx(rename = "id")]
    pub batch_id: String,
    pub status: String,
    pub total: i64,
    pub completed: i64,
    pub failed: i64,
}

impl Progress {
    pub fn all_in(&self) -> bool {
        self.completed + self.failed >= self.total
    }
}

impl Store {
    /// Inserts results not yet recorded (a duplicate finds its row taken and counts nothing) for
    /// batches still running, and adds the new ones to the batches' counts and usage, all or
    /// nothing. Returns the counts of every batch that gained a result.
    pub async fn record_results(&self, rows: &[ResultRow]) -> Result<Vec<Progress>, sqlx::Error> {
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        // Postgres does it in one data-modifying CTE over arrays; SQLite has neither.
        match &self.db {
            Db::Postgres(pool) => record_results_postgres(pool, rows).await,
            Db::Sqlite(pool) => super::sqlite::record_results(pool, rows).await,
        }
    }

    /// Up to `limit` results of a batch after `after_line`, in line order.
    pub async fn results_after(
        &self,
        batch_id: &str,
        after_line: i32,
        limit: i64,
    ) -> Result<Vec<ResultRow>, sqlx::Error> {
        on_db!(&self.db, pool => {
            sqlx::query_as(
                "SELECT batch_id, line, custom_id, request_id, ok, status_code, body, error_code,
                        error_message, prompt_tokens, completion_tokens, cached_tokens
                 FROM batch_results WHERE batch_id = $1 AND line > $2 ORDER BY line LIMIT $3",
            )
            .bind(batch_id)
            .bind(after_line)
            .bind(limit)
            .fetch_all(pool)
            .await
        })
    }

    /// `in_progress` to `finalizing`, once every request has a result.
    pub async fn begin_finalizing(&self, id: &str, now: i64) -> Result<bool, sqlx::Error> {
        let done = on_db!(&self.db, pool => {
            sqlx::query(
                "UPDATE batches SET status = 'finalizing', finalizing_at = $2
                 WHERE id = $1 AND status = 'in_progress' AND completed + failed >= total",
            )
            .bind(id)
            .bind(now)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(done > 0)
    }

    /// Ends a batch: its files, its final status and timestamp, the requests that never ran
    /// counted as failed; its result rows are dropped now that the files hold them.
    pub async fn end_batch(
        &self,
        id: &str,
        status: BatchStatus,
        output_file_id: Option<&str>,
        error_file_id: Option<&str>,
        never_ran: i64,
        now: i64,
    ) -> Result<bool, sqlx::Error> {
        on_db!(&self.db, pool => {
            let mut tx = pool.begin().await?;
            let done = sqlx::query(
                "UPDATE batches SET status = $2, output_file_id = $3, error_file_id = $4,
                        failed = failed + $5,
                        completed_at = CASE WHEN $2 = 'completed' THEN $6 ELSE completed_at END,
                        cancelled_at = CASE WHEN $2 = 'cancelled' THEN $6 ELSE cancelled_at END,
                        expired_at = CASE WHEN $2 = 'expired' THEN $6 ELSE expired_at END
                 WHERE id = $1 AND status IN ('in_progress', 'finalizing', 'cancelling')",
            )
            .bind(id)
            .bind(status.as_str())
            .bind(output_file_id)
            .bind(error_file_id)
            .bind(never_ran)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() == 0 {
                return Ok(false);
            }
            sqlx::query("DELETE FROM batch_results WHERE batch_id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(true)
        })
    }
}

/// The collector's fast path: one statement inserts the new results and adds them to their
/// batches' counts.
async fn record_results_postgres(
    pool: &sqlx::PgPool,
    rows: &[ResultRow],
) -> Result<Vec<Progress>, sqlx::Error> {
    let col = |f: fn(&ResultRow) -> String| rows.iter().map(f).collect::<Vec<_>>();
    let opt = |f: fn(&ResultRow) -> Option<String>| rows.iter().map(f).collect::<Vec<_>>();
    let num = |f: fn(&ResultRow) -> Option<i64>| rows.iter().map(f).collect::<Vec<_>>();
    sqlx::query_as(
        "WITH input AS (
                 SELECT * FROM UNNEST($1::TEXT[], $2::INT[], $3::TEXT[], $4::TEXT[], $5::BOOL[],
                                      $6::INT[], $7::TEXT[], $8::TEXT[], $9::TEXT[], $10::BIGINT[],
                                      $11::BIGINT[], $12::BIGINT[])
                     AS u(batch_id, line, custom_id, request_id, ok, status_code, body, error_code,
                          error_message, prompt_tokens, completion_tokens, cached_tokens)
                 WHERE EXISTS (SELECT 1 FROM batches b WHERE b.id = u.batch_id
                               AND b.status IN ('in_progress', 'cancelling'))
             ),
             inserted AS (
                 INSERT INTO batch_results
                 SELECT * FROM input
                 ON CONFLICT (batch_id, line) DO NOTHING
                 RETURNING batch_id, ok, prompt_tokens, completion_tokens, cached_tokens
             ),
             sums AS (
                 SELECT batch_id,
                        COUNT(*) FILTER (WHERE ok) AS ok_n,
                        COUNT(*) FILTER (WHERE NOT ok) AS failed_n,
                        COALESCE(SUM(prompt_tokens), 0) AS prompt,
                        COALESCE(SUM(completion_tokens), 0) AS completion,
                        COALESCE(SUM(cached_tokens), 0) AS cached
                 FROM inserted GROUP BY batch_id
             )
             UPDATE batches b
             SET completed = b.completed + s.ok_n, failed = b.failed + s.failed_n,
                 input_tokens = b.input_tokens + s.prompt,
                 output_tokens = b.output_tokens + s.completion,
                 cached_tokens = b.cached_tokens + s.cached
             FROM sums s WHERE b.id = s.batch_id
             RETURNING b.id, b.status, b.total, b.completed, b.failed",
    )
    .bind(col(|r| r.batch_id.clone()))
    .bind(rows.iter().map(|r| r.line).collect::<Vec<_>>())
    .bind(col(|r| r.custom_id.clone()))
    .bind(col(|r| r.request_id.clone()))
    .bind(rows.iter().map(|r| r.ok).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.status_code).collect::<Vec<_>>())
    .bind(opt(|r| r.body.clone()))
    .bind(opt(|r| r.error_code.clone()))
    .bind(opt(|r| r.error_message.clone()))
    .bind(num(|r| r.prompt_tokens))
    .bind(num(|r| r.completion_tokens))
    .bind(num(|r| r.cached_tokens))
    .fetch_all(pool)
    .await
}
