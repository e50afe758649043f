//! The statements SQLite runs where Postgres uses arrays: per-row inserts instead of `UNNEST`,
//! percentiles interpolated in Rust instead of `percentile_cont`, and a two-statement rollup
//! instead of a data-modifying CTE. Each is the Postgres statement's behaviour, checked by the
//! same store tests on both backends.

use super::big;
use super::ingest::{source_name, trigger_name};
use super::read::{RequestSummary, Totals};
use crate::stats::percentile_cont;
use nightshift_shared::measurements::{ChunkReport, GpuSample, RequestReport};
use sqlx::sqlite::SqlitePool;

/// Upserts each request of `report` by `(batch_id, line)`, in one transaction: one prepared
/// statement run per row is SQLite's bulk insert.
pub(super) async fn record_chunk(
    pool: &SqlitePool,
    report: &ChunkReport,
    requests: &[&RequestReport],
) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    for r in requests {
        let usage = r.usage.as_ref();
        sqlx::query(concat!(
            "INSERT INTO metrics_requests (batch_id, line, chunk_index, worker_id, delivery, ",
            "finished_at, model, queue_wait_ms, latency_ms, attempts, error, prompt_tokens, ",
            "completion_tokens, cached_tokens, load_ms) ",
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) ",
            requests_on_conflict!(),
        ))
        .bind(&report.batch_id)
        .bind(i64::from(r.line))
        .bind(i64::from(report.chunk_index))
        .bind(&report.worker_id)
        .bind(big(report.delivery))
        .bind(report.finished_at)
        .bind(&r.model)
        .bind(r.queue_wait_ms)
        .bind(r.latency_ms)
        .bind(i64::from(r.attempts))
        .bind(&r.error)
        .bind(usage.and_then(|u| u.prompt_tokens).map(big))
        .bind(usage.and_then(|u| u.completion_tokens).map(big))
        .bind(usage.and_then(|u| u.cached_tokens).map(big))
        .bind(r.ollama.map(|o| o.load_ms))
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await
}

/// Stores each GPU's reading once and moves `metrics_gpus` to it unless it holds a newer one,
/// in one transaction.
pub(super) async fn record_gpu_sample(
    pool: &SqlitePool,
    sample: &GpuSample,
) -> Result<(), sqlx::Error> {
    let (source, trigger) = (source_name(sample.source), trigger_name(sample.trigger));
    let mut tx = pool.begin().await?;
    for g in &sample.gpus {
        let total = g.memory_total_bytes.map(big);
        let free = g.memory_free_bytes.map(big);
        let util = g.utilization_pct.map(i64::from);
        let temp = g.temperature_c.map(i64::from);
        sqlx::query(concat!(
            "INSERT INTO metrics_gpu_samples (host, gpu_uuid, worker_id, at, gpu_name, source, ",
            "trigger, batch_id, memory_used_bytes, memory_total_bytes, memory_free_bytes, ",
            "utilization_pct, temperature_c) ",
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) ",
            "ON CONFLICT (host, gpu_uuid, worker_id, at) DO NOTHING",
        ))
        .bind(&sample.host)
        .bind(&g.uuid)
        .bind(&sample.worker_id)
        .bind(sample.at)
        .bind(&g.name)
        .bind(source)
        .bind(trigger)
        .bind(&sample.batch_id)
        .bind(big(g.memory_used_bytes))
        .bind(total)
        .bind(free)
        .bind(util)
        .bind(temp)
        .execute(&mut *tx)
        .await?;
        sqlx::query(concat!(
            "INSERT INTO metrics_gpus AS cur (host, gpu_uuid, worker_id, at, gpu_name, source, ",
            "memory_used_bytes, memory_total_bytes, memory_free_bytes, utilization_pct, ",
            "temperature_c) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ",
            gpus_on_conflict!(),
        ))
        .bind(&sample.host)
        .bind(&g.uuid)
        .bind(&sample.worker_id)
        .bind(sample.at)
        .bind(&g.name)
        .bind(source)
        .bind(big(g.memory_used_bytes))
        .bind(total)
        .bind(free)
        .bind(util)
        .bind(temp)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await
}

/// The totals in SQL, then p50/p95/p99 interpolated over the sorted latencies of the requests
/// that reached the backend, as `percentile_cont` does; workers in name order, as
/// `array_agg(DISTINCT ..)` gives them. One read transaction, so all three see the same rows.
pub(super) async fn request_summary(
    pool: &SqlitePool,
    batch_id: &str,
) -> Result<RequestSummary, sqlx::Error> {
    let mut tx = pool.begin().await?;
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
    let workers: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT worker_id FROM metrics_requests WHERE batch_id = $1 ORDER BY worker_id",
    )
    .bind(batch_id)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    let percentiles = [0.5, 0.95, 0.99].map(|p| percentile_cont(&latencies, p));
    Ok(totals.summary(percentiles, workers))
}

/// Folds up to `limit` due samples into `metrics_gpu_minutes` and deletes them, in one
/// transaction; returns how many were moved. The last reading of each minute comes from
/// `FIRST_VALUE` over the minute's samples, newest first (Postgres: `array_agg(..)[1]`).
pub(super) async fn rollup(
    pool: &SqlitePool,
    raw_before: i64,
    tagged_before: i64,
    limit: i64,
) -> Result<u64, sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query(concat!(
        "INSERT INTO metrics_gpu_minutes AS m (host, gpu_uuid, minute, gpu_name, source, ",
        "worker_id, samples, min_used_bytes, max_used_bytes, avg_used_bytes, last_used_bytes, ",
        "last_at, memory_total_bytes) ",
        "SELECT host, gpu_uuid, minute, MAX(last_name), MAX(last_source), MAX(last_worker), ",
        "COUNT(*), MIN(used), MAX(used), AVG(used), MAX(last_used), MAX(at), MAX(last_total) ",
        "FROM (SELECT host, gpu_uuid, at, memory_used_bytes AS used, ",
        "(at / 60000) * 60000 AS minute, FIRST_VALUE(gpu_name) OVER w AS last_name, ",
        "FIRST_VALUE(source) OVER w AS last_source, FIRST_VALUE(worker_id) OVER w AS last_worker, ",
        "FIRST_VALUE(memory_used_bytes) OVER w AS last_used, ",
        "FIRST_VALUE(memory_total_bytes) OVER w AS last_total ",
        "FROM metrics_gpu_samples WHERE id IN (",
        due_samples!(),
        ") WINDOW w AS (PARTITION BY host, gpu_uuid, (at / 60000) * 60000 ORDER BY at DESC)) ",
        // `WHERE true` keeps SQLite from reading the upsert's ON as a join's.
        "WHERE true GROUP BY host, gpu_uuid, minute ",
        minutes_on_conflict!(),
    ))
    .bind(raw_before)
    .bind(tagged_before)
    .bind(limit)
    .execute(&mut *tx)
    .await?;
    let moved =
        sqlx::query(concat!("DELETE FROM metrics_gpu_samples WHERE id IN (", due_samples!(), ")"))
            .bind(raw_before)
            .bind(tagged_before)
            .bind(limit)
            .execute(&mut *tx)
            .await?
            .rows_affected();
    tx.commit().await?;
    Ok(moved)
}
