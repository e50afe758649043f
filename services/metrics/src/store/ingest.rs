//! Writes of each telemetry message, idempotent so a redelivered message changes nothing.

use super::{Store, big};
use nightshift_shared::db::ROWS_PER_STATEMENT;
use nightshift_shared::measurements::{
    BatchEvent, ChunkReport, GpuReading, GpuSample, ModelReload, RequestReport,
};
use nightshift_shared::on_db;
use sqlx::QueryBuilder;
use std::collections::BTreeMap;

impl Store {
    /// Upserts a chunk's requests by `(batch_id, line)`: a re-run line replaces its earlier row.
    pub async fn record_chunk(&self, report: &ChunkReport) -> Result<(), sqlx::Error> {
        // One statement cannot touch a row twice: keep the last report of a line.
        let requests: BTreeMap<u32, _> = report.requests.iter().map(|r| (r.line, r)).collect();
        let requests: Vec<&RequestReport> = requests.into_values().collect();
        if requests.is_empty() {
            return Ok(());
        }
        on_db!(&self.db, pool => {
            let mut tx = pool.begin().await?;
            for part in requests.chunks(ROWS_PER_STATEMENT) {
                let mut insert = QueryBuilder::new(concat!(
                    "INSERT INTO metrics_requests (batch_id, line, chunk_index, worker_id, ",
                    "delivery, finished_at, model, queue_wait_ms, latency_ms, attempts, error, ",
                    "prompt_tokens, completion_tokens, cached_tokens, load_ms) ",
                ));
                insert.push_values(part, |mut row, r| {
                    let usage = r.usage.as_ref();
                    row.push_bind(&report.batch_id)
                        .push_bind(i64::from(r.line))
                        .push_bind(i64::from(report.chunk_index))
                        .push_bind(&report.worker_id)
                        .push_bind(big(report.delivery))
                        .push_bind(report.finished_at)
                        .push_bind(&r.model)
                        .push_bind(r.queue_wait_ms)
                        .push_bind(r.latency_ms)
                        .push_bind(i64::from(r.attempts))
                        .push_bind(&r.error)
                        .push_bind(usage.and_then(|u| u.prompt_tokens).map(big))
                        .push_bind(usage.and_then(|u| u.completion_tokens).map(big))
                        .push_bind(usage.and_then(|u| u.cached_tokens).map(big))
                        .push_bind(r.ollama.map(|o| o.load_ms));
                });
                insert.push(concat!(" ", requests_on_conflict!()));
                insert.build().persistent(false).execute(&mut *tx).await?;
            }
            tx.commit().await
        })
    }

    /// Stores each GPU's reading (once, however often delivered) and keeps `metrics_gpus` at the
    /// latest reading of each GPU.
    pub async fn record_gpu_sample(&self, sample: &GpuSample) -> Result<(), sqlx::Error> {
        if sample.gpus.is_empty() {
            return Ok(());
        }
        let (source, trigger) = (source_name(sample.source), trigger_name(sample.trigger));
        // One statement cannot touch a row twice: the last reading of a GPU listed twice.
        let latest: BTreeMap<&str, &GpuReading> =
            sample.gpus.iter().map(|g| (g.uuid.as_str(), g)).collect();
        on_db!(&self.db, pool => {
            let mut tx = pool.begin().await?;
            let mut samples = QueryBuilder::new(concat!(
                "INSERT INTO metrics_gpu_samples (host, gpu_uuid, worker_id, at, gpu_name, ",
                "source, trigger, batch_id, memory_used_bytes, memory_total_bytes, ",
                "memory_free_bytes, utilization_pct, temperature_c) ",
            ));
            samples.push_values(&sample.gpus, |mut row, g| {
                row.push_bind(&sample.host)
                    .push_bind(&g.uuid)
                    .push_bind(&sample.worker_id)
                    .push_bind(sample.at)
                    .push_bind(&g.name)
                    .push_bind(source)
                    .push_bind(trigger)
                    .push_bind(&sample.batch_id);
                push_reading(&mut row, g);
            });
            samples.push(" ON CONFLICT (host, gpu_uuid, worker_id, at) DO NOTHING");
            samples.build().persistent(false).execute(&mut *tx).await?;
            let mut current = QueryBuilder::new(concat!(
                "INSERT INTO metrics_gpus AS cur (host, gpu_uuid, worker_id, at, gpu_name, ",
                "source, memory_used_bytes, memory_total_bytes, memory_free_bytes, ",
                "utilization_pct, temperature_c) ",
            ));
            current.push_values(latest.values(), |mut row, g| {
                row.push_bind(&sample.host)
                    .push_bind(&g.uuid)
                    .push_bind(&sample.worker_id)
                    .push_bind(sample.at)
                    .push_bind(&g.name)
                    .push_bind(source);
                push_reading(&mut row, g);
            });
            current.push(concat!(" ", gpus_on_conflict!()));
            current.build().persistent(false).execute(&mut *tx).await?;
            tx.commit().await
        })
    }

    /// Stores a model reload; `false` when it was already stored (a redelivery).
    pub async fn record_reload(&self, reload: &ModelReload) -> Result<bool, sqlx::Error> {
        let done = on_db!(&self.db, pool => sqlx::query(concat!(
            "INSERT INTO metrics_model_reloads (worker_id, model, at, load_ms, batch_id) ",
            "VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
        ))
        .bind(&reload.worker_id)
        .bind(&reload.model)
        .bind(reload.at)
        .bind(reload.load_ms)
        .bind(&reload.batch_id)
        .execute(pool)
        .await?
        .rows_affected());
        Ok(done == 1)
    }

    /// Applies a lifecycle step: the newest step sets status and counts, the first `in_progress`
    /// step the start, the first final step the end.
    pub async fn record_batch_event(&self, event: &BatchEvent) -> Result<(), sqlx::Error> {
        use nightshift_shared::openai::BatchStatus;
        let started = (event.status == BatchStatus::InProgress).then_some(event.at);
        let ended = event.status.is_terminal().then_some(event.at);
        // LEAST/GREATEST are spelled as CASE: SQLite has neither (its MIN/MAX return NULL when
        // an argument is NULL, where LEAST skips it).
        on_db!(&self.db, pool => sqlx::query(concat!(
            "INSERT INTO metrics_batches AS cur (batch_id, owner, status, model, total, completed, ",
            "failed, started_at, ended_at, updated_at) ",
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ",
            "ON CONFLICT (batch_id) DO UPDATE SET ",
            "started_at = CASE WHEN cur.started_at IS NULL OR EXCLUDED.started_at < cur.started_at ",
            "THEN EXCLUDED.started_at ELSE cur.started_at END, ",
            "ended_at = CASE WHEN cur.ended_at IS NULL OR EXCLUDED.ended_at < cur.ended_at ",
            "THEN EXCLUDED.ended_at ELSE cur.ended_at END, ",
            "model = COALESCE(CASE WHEN EXCLUDED.updated_at >= cur.updated_at ",
            "THEN EXCLUDED.model END, cur.model), ",
            "owner = CASE WHEN EXCLUDED.updated_at >= cur.updated_at ",
            "THEN EXCLUDED.owner ELSE cur.owner END, ",
            "status = CASE WHEN EXCLUDED.updated_at >= cur.updated_at ",
            "THEN EXCLUDED.status ELSE cur.status END, ",
            "total = CASE WHEN EXCLUDED.updated_at >= cur.updated_at ",
            "THEN EXCLUDED.total ELSE cur.total END, ",
            "completed = CASE WHEN EXCLUDED.updated_at >= cur.updated_at ",
            "THEN EXCLUDED.completed ELSE cur.completed END, ",
            "failed = CASE WHEN EXCLUDED.updated_at >= cur.updated_at ",
            "THEN EXCLUDED.failed ELSE cur.failed END, ",
            "updated_at = CASE WHEN EXCLUDED.updated_at > cur.updated_at ",
            "THEN EXCLUDED.updated_at ELSE cur.updated_at END",
        ))
        .bind(&event.batch_id)
        .bind(&event.owner)
        .bind(event.status.as_str())
        .bind(&event.model)
        .bind(big(event.total))
        .bind(big(event.completed))
        .bind(big(event.failed))
        .bind(started)
        .bind(ended)
        .bind(event.at)
        .execute(pool)
        .await
        .map(|_| ()))
    }
}

/// The reading columns both GPU tables share, in their order: used, total, free, utilization,
/// temperature.
fn push_reading<'args, DB: sqlx::Database>(
    row: &mut sqlx::query_builder::Separated<'_, 'args, DB, &'static str>,
    g: &GpuReading,
) where
    i64: sqlx::Encode<'args, DB> + sqlx::Type<DB>,
    Option<i64>: sqlx::Encode<'args, DB> + sqlx::Type<DB>,
{
    row.push_bind(big(g.memory_used_bytes))
        .push_bind(g.memory_total_bytes.map(big))
        .push_bind(g.memory_free_bytes.map(big))
        .push_bind(g.utilization_pct.map(i64::from))
        .push_bind(g.temperature_c.map(i64::from));
}

/// How a [`nightshift_shared::measurements::VramSource`] is stored and shown.
pub fn source_name(source: nightshift_shared::measurements::VramSource) -> &'static str {
    match source {
        nightshift_shared::measurements::VramSource::Nvml => "nvml",
        nightshift_shared::measurements::VramSource::OllamaPs => "ollama_ps",
    }
}

/// How a [`nightshift_shared::measurements::SampleTrigger`] is stored.
fn trigger_name(trigger: nightshift_shared::measurements::SampleTrigger) -> &'static str {
    match trigger {
        nightshift_shared::measurements::SampleTrigger::Periodic => "periodic",
        nightshift_shared::measurements::SampleTrigger::ChunkStart => "chunk_start",
        nightshift_shared::measurements::SampleTrigger::ChunkEnd => "chunk_end",
    }
}
