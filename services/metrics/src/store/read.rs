//! The reads behind the reports: one batch's row, its request aggregates, GPU points, reloads.

use super::Store;
use crate::stats::percentile_cont;
use nightshift_shared::on_db;

/// A batch as its latest lifecycle step described it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct BatchRow {
    pub batch_id: String,
    pub owner: String,
    pub status: String,
    pub model: Option<String>,
    pub total: i64,
    pub completed: i64,
    pub failed: i64,
    pub started_at: Option<i64>,
    pub ended_at: Option<i64>,
}

/// Aggregates over a batch's request rows; every figure is `None` when no row holds it.
#[derive(Debug, Clone, Default)]
pub struct RequestSummary {
    pub reported: i64,
    pub succeeded: i64,
    pub failed: i64,
    pub latency_mean_ms: Option<f64>,
    pub latency_p50_ms: Option<f64>,
    pub latency_p95_ms: Option<f64>,
    pub latency_p99_ms: Option<f64>,
    pub latency_max_ms: Option<f64>,
    pub queue_wait_mean_ms: Option<f64>,
    pub prompt_tokens: Option<i64>,
    pub completion_tokens: Option<i64>,
    pub cached_tokens: Option<i64>,
    /// Prompt tokens of the requests whose cached-token count is known.
    pub prompt_tokens_with_cached: Option<i64>,
    /// Workers that ran the batch's requests.
    pub workers: Vec<String>,
}

/// One GPU reading: a raw sample, or a per-minute aggregate standing for the samples it replaced.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct GpuPoint {
    pub host: String,
    pub gpu_uuid: String,
    pub gpu_name: String,
    pub source: String,
    pub at: i64,
    pub used_bytes: i64,
    /// The largest reading this point stands for (`used_bytes` for a raw sample).
    pub peak_bytes: i64,
    pub total_bytes: Option<i64>,
}

/// One model reload.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, sqlx::FromRow)]
pub struct ReloadRow {
    pub worker_id: String,
    pub model: String,
    pub at: i64,
    pub load_ms: f64,
    pub batch_id: Option<String>,
}

/// The latest reading of one GPU.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, sqlx::FromRow)]
pub struct GpuNow {
    pub host: String,
    pub gpu: String,
    pub name: String,
    pub worker_id: String,
    pub source: String,
    pub at: i64,
    pub memory_used_bytes: i64,
    pub memory_total_bytes: Option<i64>,
    pub memory_free_bytes: Option<i64>,
    pub utilization_pct: Option<i32>,
    pub temperature_c: Option<i32>,
}

/// The request aggregates both backends compute in SQL (`totals_columns!`).
#[derive(Debug, sqlx::FromRow)]
struct Totals {
    reported: i64,
    succeeded: i64,
    failed: i64,
    latency_mean: Option<f64>,
    latency_max: Option<f64>,
    queue_wait_mean: Option<f64>,
    prompt: Option<i64>,
    completion: Option<i64>,
    cached: Option<i64>,
    prompt_cached: Option<i64>,
}

impl Totals {
    /// The summary, with the latency percentiles (p50, p95, p99) and workers.
    fn summary(self, percentiles: [Option<f64>; 3], workers: Vec<String>) -> RequestSummary {
        let [p50, p95, p99] = percentiles;
        RequestSummary {
            reported: self.reported,
            succeeded: self.succeeded,
            failed: self.failed,
            latency_mean_ms: self.latency_mean,
            latency_p50_ms: p50,
            latency_p95_ms: p95,
            latency_p99_ms: p99,
            latency_max_ms: self.latency_max,
            queue_wait_mean_ms: self.queue_wait_mean,
            prompt_tokens: self.prompt,
            completion_tokens: self.completion,
            cached_tokens: self.cached,
            prompt_tokens_with_cached: self.prompt_cached,
            workers,
        }
    }
}

impl Store {
    pub async fn batch(&self, batch_id: &str) -> Result<Option<BatchRow>, sqlx::Error> {
        on_db!(&self.db, pool => sqlx::query_as(concat!(
            "SELECT batch_id, owner, status, model, total, completed, failed, started_at, ",
            "ended_at FROM metrics_batches WHERE batch_id = $1",
        ))
        .bind(batch_id)
        .fetch_optional(pool)
        .await)
    }

    /// Counts, latency percentiles (over requests that reached the backend), tokens, workers,
    /// from one snapshot. The percentiles are interpolated in Rust over the sorted latencies
    /// ([`percentile_cont`], Postgres' definition): SQLite has no `percentile_cont`.
    pub async fn request_summary(&self, batch_id: &str) -> Result<RequestSummary, sqlx::Error> {
        on_db!(&self.db, pool => {
            let mut tx = pool.begin_with(self.db.begin_snapshot()).await?;
            let totals: Totals = sqlx::query_as(concat!(
                "SELECT ",
                totals_columns!(),
                " FROM metrics_requests WHERE batch_id = $1"
            ))
            .bind(batch_id)
            .fetch_one(&mut *tx)
            .await?;
            let latencies: Vec<f64> = sqlx::query_scalar(concat!(
                "SELECT latency_ms FROM metrics_requests WHERE batch_id = $1 AND attempts > 0 ",
                "ORDER BY latency_ms",
            ))
            .bind(batch_id)
            .fetch_all(&mut *tx)
            .await?;
            let workers: Vec<String> = sqlx::query_scalar(concat!(
                "SELECT DISTINCT worker_id FROM metrics_requests WHERE batch_id = $1 ",
                "ORDER BY worker_id",
            ))
            .bind(batch_id)
            .fetch_all(&mut *tx)
            .await?;
            tx.commit().await?;
            let percentiles = [0.5, 0.95, 0.99].map(|p| percentile_cont(&latencies, p));
            Ok(totals.summary(percentiles, workers))
        })
    }

    /// `(error code, requests)` of a batch's failed requests, most frequent first.
    pub async fn error_types(&self, batch_id: &str) -> Result<Vec<(String, i64)>, sqlx::Error> {
        on_db!(&self.db, pool => sqlx::query_as(concat!(
            "SELECT error, COUNT(*) AS n FROM metrics_requests ",
            "WHERE batch_id = $1 AND error IS NOT NULL ",
            "GROUP BY error ORDER BY n DESC, error",
        ))
        .bind(batch_id)
        .fetch_all(pool)
        .await)
    }

    /// GPU readings taken in `[from, to]`, raw and rolled up, oldest first; only those of
    /// `workers` unless it is empty.
    pub async fn gpu_points(
        &self,
        from: i64,
        to: i64,
        workers: &[String],
    ) -> Result<Vec<GpuPoint>, sqlx::Error> {
        // `$3, $4, ...`: numbered parameters both backends read, each used in both halves.
        let admitted = if workers.is_empty() {
            "TRUE".to_owned()
        } else {
            let list: Vec<String> = (3..3 + workers.len()).map(|n| format!("${n}")).collect();
            format!("worker_id IN ({})", list.join(", "))
        };
        let sql = gpu_points_sql!().replace("{workers}", &admitted);
        on_db!(&self.db, pool => {
            let mut query = sqlx::query_as(&sql).persistent(false).bind(from).bind(to);
            for worker in workers {
                query = query.bind(worker);
            }
            query.fetch_all(pool).await
        })
    }

    /// Reloads tagged with the batch, and untagged ones within `[from, to]` when both are known.
    pub async fn reloads(
        &self,
        batch_id: &str,
        from: Option<i64>,
        to: Option<i64>,
    ) -> Result<Vec<ReloadRow>, sqlx::Error> {
        on_db!(&self.db, pool => sqlx::query_as(concat!(
            "SELECT worker_id, model, at, load_ms, batch_id FROM metrics_model_reloads ",
            "WHERE batch_id = $1 OR (batch_id IS NULL AND at BETWEEN $2 AND $3) ORDER BY at",
        ))
        .bind(batch_id)
        .bind(from)
        .bind(to)
        .fetch_all(pool)
        .await)
    }

    /// The latest reading of every GPU any worker reported.
    pub async fn gpus_now(&self) -> Result<Vec<GpuNow>, sqlx::Error> {
        on_db!(&self.db, pool => sqlx::query_as(concat!(
            "SELECT host, gpu_uuid AS gpu, gpu_name AS name, worker_id, source, at, ",
            "memory_used_bytes, memory_total_bytes, memory_free_bytes, utilization_pct, ",
            "temperature_c FROM metrics_gpus ORDER BY host, gpu_uuid",
        ))
        .fetch_all(pool)
        .await)
    }
}
