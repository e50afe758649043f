//! Folds GPU samples past their retention into per-minute aggregates (min/max/avg/last per GPU),
//! so keeping months of VRAM history costs one row per GPU per minute.

use super::{Store, now_ms};
use crate::RetentionArgs;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Most samples moved by one statement, so a rollup never holds a long transaction.
const ROLLUP_BATCH: i64 = 20_000;

impl Store {
    /// Moves samples older than `raw_before` (batch-tagged ones: older than `tagged_before`)
    /// into `metrics_gpu_minutes`; returns how many samples were moved.
    pub async fn rollup(&self, raw_before: i64, tagged_before: i64) -> Result<u64, sqlx::Error> {
        let mut moved_total = 0u64;
        loop {
            let moved: i64 = sqlx::query_scalar(concat!(
                "WITH moved AS (DELETE FROM metrics_gpu_samples WHERE id IN (",
                "SELECT id FROM metrics_gpu_samples ",
                "WHERE at < $1 AND (batch_id IS NULL OR at < $2) ORDER BY at LIMIT $3) ",
                "RETURNING host, gpu_uuid, worker_id, at, gpu_name, source, memory_used_bytes, ",
                "memory_total_bytes), ",
                "folded AS (INSERT INTO metrics_gpu_minutes AS m (host, gpu_uuid, minute, ",
                "gpu_name, source, worker_id, samples, min_used_bytes, max_used_bytes, ",
                "avg_used_bytes, last_used_bytes, last_at, memory_total_bytes) ",
                "SELECT host, gpu_uuid, (at / 60000) * 60000, ",
                "(array_agg(gpu_name ORDER BY at DESC))[1], (array_agg(source ORDER BY at DESC))[1], ",
                "(array_agg(worker_id ORDER BY at DESC))[1], COUNT(*), MIN(memory_used_bytes), ",
                "MAX(memory_used_bytes), AVG(memory_used_bytes)::float8, ",
                "(array_agg(memory_used_bytes ORDER BY at DESC))[1], MAX(at), ",
                "(array_agg(memory_total_bytes ORDER BY at DESC))[1] ",
                "FROM moved GROUP BY host, gpu_uuid, (at / 60000) * 60000 ",
                "ON CONFLICT (host, gpu_uuid, minute) DO UPDATE SET ",
                "samples = m.samples + EXCLUDED.samples, ",
                "min_used_bytes = LEAST(m.min_used_bytes, EXCLUDED.min_used_bytes), ",
                "max_used_bytes = GREATEST(m.max_used_bytes, EXCLUDED.max_used_bytes), ",
                "avg_used_bytes = (m.avg_used_bytes * m.samples ",
                "+ EXCLUDED.avg_used_bytes * EXCLUDED.samples) / (m.samples + EXCLUDED.samples), ",
                "last_used_bytes = CASE WHEN EXCLUDED.last_at >= m.last_at ",
                "THEN EXCLUDED.last_used_bytes ELSE m.last_used_bytes END, ",
                "gpu_name = CASE WHEN EXCLUDED.last_at >= m.last_at ",
                "THEN EXCLUDED.gpu_name ELSE m.gpu_name END, ",
                "source = CASE WHEN EXCLUDED.last_at >= m.last_at ",
                "THEN EXCLUDED.source ELSE m.source END, ",
                "worker_id = CASE WHEN EXCLUDED.last_at >= m.last_at ",
                "THEN EXCLUDED.worker_id ELSE m.worker_id END, ",
                "memory_total_bytes = CASE WHEN EXCLUDED.last_at >= m.last_at ",
                "THEN EXCLUDED.memory_total_bytes ELSE m.memory_total_bytes END, ",
                "last_at = GREATEST(m.last_at, EXCLUDED.last_at) RETURNING 1) ",
                "SELECT COUNT(*) FROM moved",
            ))
            .bind(raw_before)
            .bind(tagged_before)
            .bind(ROLLUP_BATCH)
            .fetch_one(&self.pool)
            .await?;
            moved_total += moved.max(0) as u64;
            if moved < ROLLUP_BATCH {
                return Ok(moved_total);
            }
        }
    }
}

/// Rolls samples up every `rollup_interval_secs` until `shutdown`; failures are logged and
/// retried at the next round.
pub async fn run(store: Store, retention: RetentionArgs, shutdown: CancellationToken) {
    let every = Duration::from_secs(retention.rollup_interval_secs.max(1));
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = ticks.tick() => {}
        }
        let now = now_ms();
        let raw_before = now - retention.raw().as_millis() as i64;
        let tagged_before = now - retention.batch_samples().as_millis() as i64;
        match store.rollup(raw_before, tagged_before).await {
            Ok(0) => {}
            Ok(moved) => tracing::info!(moved, "GPU samples rolled into per-minute aggregates"),
            Err(e) => tracing::warn!(error = %e, "rolling GPU samples up"),
        }
    }
}
