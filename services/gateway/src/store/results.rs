//! Request results as the collector records them, and the final transitions that use them.

use super::Store;
use nightshift_shared::db::ROWS_PER_STATEMENT;
use nightshift_shared::on_db;
use nightshift_shared::openai::BatchStatus;
use sqlx::QueryBuilder;
use std::collections::BTreeMap;

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
    /// batches still running, and adds the rows actually inserted to their batches' counts and
    /// usage, in one transaction. Returns the counts of every batch that gained a result.
    pub async fn record_results(&self, rows: &[ResultRow]) -> Result<Vec<Progress>, sqlx::Error> {
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        on_db!(&self.db, pool => {
            let mut tx = pool.begin_with(self.db.begin_write()).await?;
            let mut gains: BTreeMap<String, Gain> = BTreeMap::new();
            for part in rows.chunks(ROWS_PER_STATEMENT) {
                let mut insert = QueryBuilder::new(
                    "WITH incoming (batch_id, line, custom_id, request_id, ok, status_code, body, \
                                    error_code, error_message, prompt_tokens, completion_tokens, \
                                    cached_tokens) AS (",
                );
                insert.push_values(part, |mut row, r| {
                    row.push_bind(&r.batch_id)
                        .push_bind(r.line)
                        .push_bind(&r.custom_id)
                        .push_bind(&r.request_id)
                        .push_bind(r.ok)
                        .push_bind(r.status_code)
                        .push_bind(&r.body)
                        .push_bind(&r.error_code)
                        .push_bind(&r.error_message)
                        .push_bind(r.prompt_tokens)
                        .push_bind(r.completion_tokens)
                        .push_bind(r.cached_tokens);
                });
                // The WHERE also keeps SQLite from reading `ON CONFLICT` as a join's `ON`.
                insert.push(
                    ") INSERT INTO batch_results (batch_id, line, custom_id, request_id, ok, \
                                                  status_code, body, error_code, error_message, \
                                                  prompt_tokens, completion_tokens, cached_tokens) \
                     SELECT * FROM incoming i \
                     WHERE EXISTS (SELECT 1 FROM batches b WHERE b.id = i.batch_id \
                                   AND b.status IN ('in_progress', 'cancelling')) \
                     ON CONFLICT (batch_id, line) DO NOTHING \
                     RETURNING batch_id, ok, prompt_tokens, completion_tokens, cached_tokens",
                );
                let inserted: Vec<Inserted> = insert.build_query_as().persistent(false).fetch_all(&mut *tx).await?;
                for row in inserted {
                    gains.entry(row.batch_id.clone()).or_default().add(&row);
                }
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
                .bind(&batch_id)
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
        })
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

/// What the insert returns of each row it inserted.
#[derive(sqlx::FromRow)]
struct Inserted {
    batch_id: String,
    ok: bool,
    prompt_tokens: Option<i64>,
    completion_tokens: Option<i64>,
    cached_tokens: Option<i64>,
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

impl Gain {
    fn add(&mut self, row: &Inserted) {
        if row.ok {
            self.completed += 1;
        } else {
            self.failed += 1;
        }
        self.input_tokens += row.prompt_tokens.unwrap_or(0);
        self.output_tokens += row.completion_tokens.unwrap_or(0);
        self.cached_tokens += row.cached_tokens.unwrap_or(0);
    }
}
