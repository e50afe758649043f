//! The reads behind the reports: one batch's row, its request aggregates, GPU points, reloads.

use super::Store;
use sqlx::Row;
use sqlx::postgres::PgRow;

/// A batch as its latest lifecycle step described it.
#[derive(Debug, Clone)]
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
#[derive(Debug, Clone, PartialEq)]
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
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ReloadRow {
    pub worker_id: String,
    pub model: String,
    pub at: i64,
    pub load_ms: f64,
    pub batch_id: Option<String>,
}

/// The latest reading of one GPU.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
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

impl Store {
    pub async fn batch(&self, batch_id: &str) -> Result<Option<BatchRow>, sqlx::Error> {
        let row = sqlx::query(concat!(
            "SELECT batch_id, owner, status, model, total, completed, failed, started_at, ",
            "ended_at FROM metrics_batches WHERE batch_id = $1",
        ))
        .bind(batch_id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(BatchRow {
                batch_id: r.try_get("batch_id")?,
                owner: r.try_get("owner")?,
                status: r.try_get("status")?,
                model: r.try_get("model")?,
                total: r.try_get("total")?,
                completed: r.try_get("completed")?,
                failed: r.try_get("failed")?,
                started_at: r.try_get("started_at")?,
                ended_at: r.try_get("ended_at")?,
            })
        })
        .transpose()
    }

    /// Counts, latency percentiles (over requests that reached the backend), tokens, workers.
    pub async fn request_summary(&self, batch_id: &str) -> Result<RequestSummary, sqlx::Error> {
        let r = sqlx::query(concat!(
            "SELECT COUNT(*) AS reported, ",
            "COUNT(*) FILTER (WHERE error IS NULL) AS succeeded, ",
            "COUNT(*) FILTER (WHERE error IS NOT NULL) AS failed, ",
            "AVG(latency_ms) FILTER (WHERE attempts > 0) AS latency_mean, ",
            "percentile_cont(0.5) WITHIN GROUP (ORDER BY latency_ms) ",
            "FILTER (WHERE attempts > 0) AS p50, ",
            "percentile_cont(0.95) WITHIN GROUP (ORDER BY latency_ms) ",
            "FILTER (WHERE attempts > 0) AS p95, ",
            "percentile_cont(0.99) WITHIN GROUP (ORDER BY latency_ms) ",
            "FILTER (WHERE attempts > 0) AS p99, ",
            "MAX(latency_ms) FILTER (WHERE attempts > 0) AS latency_max, ",
            "AVG(queue_wait_ms) FILTER (WHERE attempts > 0) AS queue_wait_mean, ",
            "SUM(prompt_tokens)::int8 AS prompt, SUM(completion_tokens)::int8 AS completion, ",
            "SUM(cached_tokens)::int8 AS cached, ",
            "SUM(prompt_tokens) FILTER (WHERE cached_tokens IS NOT NULL)::int8 AS prompt_cached, ",
            "COALESCE(array_agg(DISTINCT worker_id), '{}') AS workers ",
            "FROM metrics_requests WHERE batch_id = $1",
        ))
        .bind(batch_id)
        .fetch_one(&self.pool)
        .await?;
        Ok(RequestSummary {
            reported: r.try_get("reported")?,
            succeeded: r.try_get("succeeded")?,
            failed: r.try_get("failed")?,
            latency_mean_ms: r.try_get("latency_mean")?,
            latency_p50_ms: r.try_get("p50")?,
            latency_p95_ms: r.try_get("p95")?,
            latency_p99_ms: r.try_get("p99")?,
            latency_max_ms: r.try_get("latency_max")?,
            queue_wait_mean_ms: r.try_get("queue_wait_mean")?,
            prompt_tokens: r.try_get("prompt")?,
            completion_tokens: r.try_get("completion")?,
            cached_tokens: r.try_get("cached")?,
            prompt_tokens_with_cached: r.try_get("prompt_cached")?,
            workers: r.try_get("workers")?,
        })
    }

    /// `(error code, requests)` of a batch's failed requests, most frequent first.
    pub async fn error_types(&self, batch_id: &str) -> Result<Vec<(String, i64)>, sqlx::Error> {
        let rows = sqlx::query(concat!(
            "SELECT error, COUNT(*) AS n FROM metrics_requests ",
            "WHERE batch_id = $1 AND error IS NOT NULL ",
            "GROUP BY error ORDER BY n DESC, error",
        ))
        .bind(batch_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| Ok((r.try_get("error")?, r.try_get("n")?))).collect()
    }

    /// GPU readings taken in `[from, to]`, raw and rolled up, oldest first; only those of
    /// `workers` unless it is empty.
    pub async fn gpu_points(
        &self,
        from: i64,
        to: i64,
        workers: &[String],
    ) -> Result<Vec<GpuPoint>, sqlx::Error> {
        let rows = sqlx::query(concat!(
            "SELECT host, gpu_uuid, gpu_name, source, at, memory_used_bytes AS used, ",
            "memory_used_bytes AS peak, memory_total_bytes AS total ",
            "FROM metrics_gpu_samples WHERE at BETWEEN $1 AND $2 ",
            "AND (cardinality($3::text[]) = 0 OR worker_id = ANY($3)) ",
            "UNION ALL ",
            "SELECT host, gpu_uuid, gpu_name, source, last_at AS at, last_used_bytes AS used, ",
            "max_used_bytes AS peak, memory_total_bytes AS total ",
            "FROM metrics_gpu_minutes WHERE minute BETWEEN $1 - 60000 AND $2 ",
            "AND last_at BETWEEN $1 AND $2 ",
            "AND (cardinality($3::text[]) = 0 OR worker_id = ANY($3)) ",
            "ORDER BY at",
        ))
        .bind(from)
        .bind(to)
        .bind(workers)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(gpu_point).collect()
    }

    /// Reloads tagged with the batch, and untagged ones within `[from, to]` when both are known.
    pub async fn reloads(
        &self,
        batch_id: &str,
        from: Option<i64>,
        to: Option<i64>,
    ) -> Result<Vec<ReloadRow>, sqlx::Error> {
        let rows = sqlx::query(concat!(
            "SELECT worker_id, model, at, load_ms, batch_id FROM metrics_model_reloads ",
            "WHERE batch_id = $1 OR (batch_id IS NULL AND at BETWEEN $2 AND $3) ORDER BY at",
        ))
        .bind(batch_id)
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ReloadRow {
                    worker_id: r.try_get("worker_id")?,
                    model: r.try_get("model")?,
                    at: r.try_get("at")?,
                    load_ms: r.try_get("load_ms")?,
                    batch_id: r.try_get("batch_id")?,
                })
            })
            .collect()
    }

    /// The latest reading of every GPU any worker reported.
    pub async fn gpus_now(&self) -> Result<Vec<GpuNow>, sqlx::Error> {
        let rows = sqlx::query(concat!(
            "SELECT host, gpu_uuid, gpu_name, worker_id, source, at, memory_used_bytes, ",
            "memory_total_bytes, memory_free_bytes, utilization_pct, temperature_c ",
            "FROM metrics_gpus ORDER BY host, gpu_uuid",
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(GpuNow {
                    host: r.try_get("host")?,
                    gpu: r.try_get("gpu_uuid")?,
                    name: r.try_get("gpu_name")?,
                    worker_id: r.try_get("worker_id")?,
                    source: r.try_get("source")?,
                    at: r.try_get("at")?,
                    memory_used_bytes: r.try_get("memory_used_bytes")?,
                    memory_total_bytes: r.try_get("memory_total_bytes")?,
                    memory_free_bytes: r.try_get("memory_free_bytes")?,
                    utilization_pct: r.try_get("utilization_pct")?,
                    temperature_c: r.try_get("temperature_c")?,
                })
            })
            .collect()
    }
}

fn gpu_point(r: &PgRow) -> Result<GpuPoint, sqlx::Error> {
    Ok(GpuPoint {
        host: r.try_get("host")?,
        gpu_uuid: r.try_get("gpu_uuid")?,
        gpu_name: r.try_get("gpu_name")?,
        source: r.try_get("source")?,
        at: r.try_get("at")?,
        used_bytes: r.try_get("used")?,
        peak_bytes: r.try_get("peak")?,
        total_bytes: r.try_get("total")?,
    })
}
