//! Writes of each telemetry message, idempotent so a redelivered message changes nothing.

use super::{Store, big, sqlite};
use nightshift_shared::db::Db;
use nightshift_shared::measurements::{
    BatchEvent, ChunkReport, GpuSample, ModelReload, RequestReport,
};
use nightshift_shared::on_db;
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
        let pool = match &self.db {
            Db::Postgres(pool) => pool,
            // SQLite has no arrays to UNNEST: one prepared upsert per line, in one transaction.
            Db::Sqlite(pool) => return sqlite::record_chunk(pool, report, &requests).await,
        };
        let n = requests.len();
        let (mut line, mut model, mut wait, mut latency, mut attempts, mut error) =
            (vec![], vec![], vec![], vec![], vec![], vec![]);
        let (mut prompt, mut completion, mut cached, mut load) =
            (Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n), vec![]);
        for r in &requests {
            line.push(i64::from(r.line));
            model.push(r.model.clone());
            wait.push(r.queue_wait_ms);
            latency.push(r.latency_ms);
            attempts.push(i64::from(r.attempts));
            error.push(r.error.clone());
            prompt.push(r.usage.as_ref().and_then(|u| u.prompt_tokens).map(big));
            completion.push(r.usage.as_ref().and_then(|u| u.completion_tokens).map(big));
            cached.push(r.usage.as_ref().and_then(|u| u.cached_tokens).map(big));
            load.push(r.ollama.map(|o| o.load_ms));
        }
        sqlx::query(concat!(
            "INSERT INTO metrics_requests (batch_id, line, chunk_index, worker_id, delivery, ",
            "finished_at, model, queue_wait_ms, latency_ms, attempts, error, prompt_tokens, ",
            "completion_tokens, cached_tokens, load_ms) ",
            "SELECT $1, r.line, $2, $3, $4, $5, r.model, r.wait, r.latency, r.attempts, r.error, ",
            "r.prompt, r.completion, r.cached, r.load ",
            "FROM UNNEST($6::int8[], $7::text[], $8::float8[], $9::float8[], $10::int8[], ",
            "$11::text[], $12::int8[], $13::int8[], $14::int8[], $15::float8[]) ",
            "AS r(line, model, wait, latency, attempts, error, prompt, completion, cached, load) ",
            requests_on_conflict!(),
        ))
        .bind(&report.batch_id)
        .bind(i64::from(report.chunk_index))
        .bind(&report.worker_id)
        .bind(big(report.delivery))
        .bind(report.finished_at)
        .bind(line)
        .bind(model)
        .bind(wait)
        .bind(latency)
        .bind(attempts)
        .bind(error)
        .bind(prompt)
        .bind(completion)
        .bind(cached)
        .bind(load)
        .execute(pool)
        .await?;
        Ok(())
    }

    /// Stores each GPU's reading (once, however often delivered) and keeps `metrics_gpus` at the
    /// latest reading of each GPU.
    pub async fn record_gpu_sample(&self, sample: &GpuSample) -> Result<(), sqlx::Error> {
        if sample.gpus.is_empty() {
            return Ok(());
        }
        let pool = match &self.db {
            Db::Postgres(pool) => pool,
            // SQLite has no arrays to UNNEST: two prepared statements per GPU, in one transaction.
            Db::Sqlite(pool) => return sqlite::record_gpu_sample(pool, sample).await,
        };
        let (source, trigger) = (source_name(sample.source), trigger_name(sample.trigger));
        let uuid: Vec<&str> = sample.gpus.iter().map(|g| g.uuid.as_str()).collect();
        let name: Vec<&str> = sample.gpus.iter().map(|g| g.name.as_str()).collect();
        let used: Vec<i64> = sample.gpus.iter().map(|g| big(g.memory_used_bytes)).collect();
        let total: Vec<Option<i64>> =
            sample.gpus.iter().map(|g| g.memory_total_bytes.map(big)).collect();
        let free: Vec<Option<i64>> =
            sample.gpus.iter().map(|g| g.memory_free_bytes.map(big)).collect();
        let util: Vec<Option<i64>> =
            sample.gpus.iter().map(|g| g.utilization_pct.map(i64::from)).collect();
        let temp: Vec<Option<i64>> =
            sample.gpus.iter().map(|g| g.temperature_c.map(i64::from)).collect();

        let mut tx = pool.begin().await?;
        sqlx::query(concat!(
            "INSERT INTO metrics_gpu_samples (host, gpu_uuid, worker_id, at, gpu_name, source, ",
            "trigger, batch_id, memory_used_bytes, memory_total_bytes, memory_free_bytes, ",
            "utilization_pct, temperature_c) ",
            "SELECT $1, g.uuid, $2, $3, g.name, $4, $5, $6, g.used, g.total, g.free, g.util, g.temp ",
            "FROM UNNEST($7::text[], $8::text[], $9::int8[], $10::int8[], $11::int8[], ",
            "$12::int8[], $13::int8[]) AS g(uuid, name, used, total, free, util, temp) ",
            "ON CONFLICT (host, gpu_uuid, worker_id, at) DO NOTHING",
        ))
        .bind(&sample.host)
        .bind(&sample.worker_id)
        .bind(sample.at)
        .bind(source)
        .bind(trigger)
        .bind(&sample.batch_id)
        .bind(&uuid)
        .bind(&name)
        .bind(&used)
        .bind(&total)
        .bind(&free)
        .bind(&util)
        .bind(&temp)
        .execute(&mut *tx)
        .await?;
        sqlx::query(concat!(
            "INSERT INTO metrics_gpus AS cur (host, gpu_uuid, worker_id, at, gpu_name, source, ",
            "memory_used_bytes, memory_total_bytes, memory_free_bytes, utilization_pct, ",
            "temperature_c) ",
            "SELECT DISTINCT ON (g.uuid) $1, g.uuid, $2, $3, g.name, $4, g.used, g.total, g.free, ",
            "g.util, g.temp ",
            "FROM UNNEST($5::text[], $6::text[], $7::int8[], $8::int8[], $9::int8[], ",
            "$10::int8[], $11::int8[]) AS g(uuid, name, used, total, free, util, temp) ",
            gpus_on_conflict!(),
        ))
        .bind(&sample.host)
        .bind(&sample.worker_id)
        .bind(sample.at)
        .bind(source)
        .bind(&uuid)
        .bind(&name)
        .bind(&used)
        .bind(&total)
        .bind(&free)
        .bind(&util)
        .bind(&temp)
        .execute(&mut *tx)
        .await?;
        tx.commit().await
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

/// How a [`nightshift_shared::measurements::VramSource`] is stored and shown.
pub fn source_name(source: nightshift_shared::measurements::VramSource) -> &'static str {
    match source {
        nightshift_shared::measurements::VramSource::Nvml => "nvml",
        nightshift_shared::measurements::VramSource::OllamaPs => "ollama_ps",
    }
}

/// How a [`nightshift_shared::measurements::SampleTrigger`] is stored.
pub(super) fn trigger_name(
    trigger: nightshift_shared::measurements::SampleTrigger,
) -> &'static str {
    match trigger {
        nightshift_shared::measurements::SampleTrigger::Periodic => "periodic",
        nightshift_shared::measurements::SampleTrigger::ChunkStart => "chunk_start",
        nightshift_shared::measurements::SampleTrigger::ChunkEnd => "chunk_end",
    }
}
