//! Folds GPU samples past their retention into per-minute aggregates (min/max/avg/last per GPU),
//! so keeping months of VRAM history costs one row per GPU per minute.

use super::{Store, now_ms, sqlite};
use crate::RetentionArgs;
use nightshift_shared::db::Db;
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
            let moved = match &self.db {
                Db::Postgres(pool) => {
                    let moved: i64 = sqlx::query_scalar(concat!(
                        "WITH moved AS (DELETE FROM metrics_gpu_samples WHERE id IN (",
                        due_samples!(),
                        ") RETURNING host, gpu_uuid, worker_id, at, gpu_name, source, ",
                        "memory_used_bytes, memory_total_bytes), ",
                        "folded AS (INSERT INTO metrics_gpu_minutes AS m (host, gpu_uuid, minute, ",
                        "gpu_name, source, worker_id, samples, min_used_bytes, max_used_bytes, ",
                        "avg_used_bytes, last_used_bytes, last_at, memory_total_bytes) ",
                        "SELECT host, gpu_uuid, (at / 60000) * 60000, ",
                        "(array_agg(gpu_name ORDER BY at DESC))[1], ",
                        "(array_agg(source ORDER BY at DESC))[1], ",
                        "(array_agg(worker_id ORDER BY at DESC))[1], COUNT(*), ",
                        "MIN(memory_used_bytes), MAX(memory_used_bytes), ",
                        "AVG(memory_used_bytes)::float8, ",
                        "(array_agg(memory_used_bytes ORDER BY at DESC))[1], MAX(at), ",
                        "(array_agg(memory_total_bytes ORDER BY at DESC))[1] ",
                        "FROM moved GROUP BY host, gpu_uuid, (at / 60000) * 60000 ",
                        minutes_on_conflict!(),
                        " RETURNING 1) SELECT COUNT(*) FROM moved",
                    ))
                    .bind(raw_before)
                    .bind(tagged_before)
                    .bind(ROLLUP_BATCH)
                    .fetch_one(pool)
                    .await?;
                    u64::try_from(moved).unwrap_or(0)
                }
                // SQLite has neither data-modifying CTEs nor array_agg: it folds the samples
                // (last values by window function) and deletes them in one transaction.
                Db::Sqlite(pool) => {
                    sqlite::rollup(pool, raw_before, tagged_before, ROLLUP_BATCH).await?
                }
            };
            moved_total += moved;
            if moved < ROLLUP_BATCH as u64 {
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
