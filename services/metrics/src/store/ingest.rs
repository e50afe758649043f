//! Writes of each telemetry message, idempotent so a redelivered message changes nothing.

use super::{Store, big};
use nightshift_shared::measurements::{BatchEvent, ChunkReport, GpuSample, ModelReload};
use std::collections::BTreeMap;

impl Store {
    /// Upserts a chunk's requests by `(batch_id, line)`: a re-run line replaces its earlier row.
    pub async fn record_chunk(&self, report: &ChunkReport) -> Result<(), sqlx::Error> {
        // One statement cannot touch a row twice: keep the last report of a line.
        let requests: BTreeMap<u32, _> = report.requests.iter().map(|r| (r.line, r)).collect();
        if requests.is_empty() {
            return Ok(());
        }
        let n = requests.len();
        let (mut line, mut model, mut wait, mut latency, mut attempts, mut error) =
            (vec![], vec![], vec![], vec![], vec![], vec![]);
        let (mut prompt, mut completion, mut cached, mut load) =
            (Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n), vec![]);
        for r in requests.values() {
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
            "ON CONFLICT (batch_id, line) DO UPDATE SET chunk_index = EXCLUDED.chunk_index, ",
            "worker_id = EXCLUDED.worker_id, delivery = EXCLUDED.delivery, ",
            "finished_at = EXCLUDED.finished_at, model = EXCLUDED.model, ",
            "queue_wait_ms = EXCLUDED.queue_wait_ms, latency_ms = EXCLUDED.latency_ms, ",
            "attempts = EXCLUDED.attempts, error = EXCLUDED.error, ",
            "prompt_tokens = EXCLUDED.prompt_tokens, completion_tokens = EXCLUDED.completion_tokens, ",
            "cached_tokens = EXCLUDED.cached_tokens, load_ms = EXCLUDED.load_ms",
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
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Stores each GPU's reading (once, however often delivered) and keeps `metrics_gpus` at the
    /// latest reading of each GPU.
    pub async fn record_gpu_sample(&self, sample: &GpuSample) -> Result<(), sqlx::Error> {
        if sample.gpus.is_empty() {
            return Ok(());
        }
        let source = source_name(sample.source);
        let trigger = match sample.trigger {
            nightshift_shared::measurements::SampleTrigger::Periodic => "periodic",
            nightshift_shared::measurements::SampleTrigger::ChunkStart => "chunk_start",
            nightshift_shared::measurements::SampleTrigger::ChunkEnd => "chunk_end",
        };
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

        let mut tx = self.pool.begin().await?;
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
            "ON CONFLICT (host, gpu_uuid) DO UPDATE SET worker_id = EXCLUDED.worker_id, ",
            "at = EXCLUDED.at, gpu_name = EXCLUDED.gpu_name, source = EXCLUDED.source, ",
            "memory_used_bytes = EXCLUDED.memory_used_bytes, ",
            "memory_total_bytes = EXCLUDED.memory_total_bytes, ",
            "memory_free_bytes = EXCLUDED.memory_free_bytes, ",
            "utilization_pct = EXCLUDED.utilization_pct, temperature_c = EXCLUDED.temperature_c ",
            "WHERE EXCLUDED.at >= cur.at",
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
        let done = sqlx::query(concat!(
            "INSERT INTO metrics_model_reloads (worker_id, model, at, load_ms, batch_id) ",
            "VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
        ))
        .bind(&reload.worker_id)
        .bind(&reload.model)
        .bind(reload.at)
        .bind(reload.load_ms)
        .bind(&reload.batch_id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Applies a lifecycle step: the newest step sets status and counts, the first `in_progress`
    /// step the start, the first final step the end.
    pub async fn record_batch_event(&self, event: &BatchEvent) -> Result<(), sqlx::Error> {
        use nightshift_shared::openai::BatchStatus;
        let started = (event.status == BatchStatus::InProgress).then_some(event.at);
        let ended = event.status.is_terminal().then_some(event.at);
        sqlx::query(concat!(
            "INSERT INTO metrics_batches AS cur (batch_id, owner, status, model, total, completed, ",
            "failed, started_at, ended_at, updated_at) ",
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ",
            "ON CONFLICT (batch_id) DO UPDATE SET ",
            "started_at = LEAST(cur.started_at, EXCLUDED.started_at), ",
            "ended_at = LEAST(cur.ended_at, EXCLUDED.ended_at), ",
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
            "updated_at = GREATEST(cur.updated_at, EXCLUDED.updated_at)",
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
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

/// How a [`nightshift_shared::measurements::VramSource`] is stored and shown.
pub fn source_name(source: nightshift_shared::measurements::VramSource) -> &'static str {
    match source {
        nightshift_shared::measurements::VramSource::Nvml => "nvml",
        nightshift_shared::measurements::VramSource::OllamaPs => "ollama_ps",
    }
}
