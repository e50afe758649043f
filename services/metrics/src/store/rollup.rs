//! Folds GPU samples past their retention into per-minute aggregates (min/max/avg/last per GPU),
//! so keeping months of VRAM history costs one row per GPU per minute.

use super::{Store, now_ms};
use crate::RetentionArgs;
use nightshift_shared::db::ROWS_PER_STATEMENT;
use nightshift_shared::on_db;
use sqlx::QueryBuilder;
use std::collections::BTreeMap;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Most samples moved by one round, so a rollup never holds a long transaction.
const ROLLUP_BATCH: i64 = 20_000;

impl Store {
    /// Moves samples older than `raw_before` (batch-tagged ones: older than `tagged_before`)
    /// into `metrics_gpu_minutes`; returns how many samples were moved.
    ///
    /// Each round deletes up to [`ROLLUP_BATCH`] due samples, folds the rows the delete returned
    /// and upserts the minutes, in one transaction. Deleting first is what makes two metrics
    /// replicas rolling up at once safe: the second's delete waits for the first's and finds
    /// the rows gone, so no sample is counted twice (a read-then-delete would fold them twice).
    pub async fn rollup(&self, raw_before: i64, tagged_before: i64) -> Result<u64, sqlx::Error> {
        let mut moved_total = 0u64;
        loop {
            let moved = on_db!(&self.db, pool => {
                let mut tx = pool.begin_with(self.db.begin_write()).await?;
                let samples: Vec<Sample> = sqlx::query_as(concat!(
                    "DELETE FROM metrics_gpu_samples WHERE id IN (",
                    due_samples!(),
                    ") RETURNING host, gpu_uuid, worker_id, at, gpu_name, source, ",
                    "memory_used_bytes, memory_total_bytes",
                ))
                .bind(raw_before)
                .bind(tagged_before)
                .bind(ROLLUP_BATCH)
                .fetch_all(&mut *tx)
                .await?;
                let minutes = fold(&samples);
                for part in minutes.chunks(ROWS_PER_STATEMENT) {
                    let mut upsert = QueryBuilder::new(concat!(
                        "INSERT INTO metrics_gpu_minutes AS m (host, gpu_uuid, minute, gpu_name, ",
                        "source, worker_id, samples, min_used_bytes, max_used_bytes, ",
                        "avg_used_bytes, last_used_bytes, last_at, memory_total_bytes) ",
                    ));
                    upsert.push_values(part, |mut row, m| {
                        row.push_bind(&m.last.host)
                            .push_bind(&m.last.gpu_uuid)
                            .push_bind(m.minute)
                            .push_bind(&m.last.gpu_name)
                            .push_bind(&m.last.source)
                            .push_bind(&m.last.worker_id)
                            .push_bind(m.samples)
                            .push_bind(m.min)
                            .push_bind(m.max)
                            .push_bind(m.sum as f64 / m.samples as f64)
                            .push_bind(m.last.memory_used_bytes)
                            .push_bind(m.last.at)
                            .push_bind(m.last.memory_total_bytes);
                    });
                    upsert.push(concat!(" ", minutes_on_conflict!()));
                    upsert.build().persistent(false).execute(&mut *tx).await?;
                }
                tx.commit().await?;
                samples.len() as u64
            });
            moved_total += moved;
            if moved < ROLLUP_BATCH as u64 {
                return Ok(moved_total);
            }
        }
    }
}

/// A sample as a rollup deletes it.
#[derive(sqlx::FromRow)]
struct Sample {
    host: String,
    gpu_uuid: String,
    worker_id: String,
    at: i64,
    gpu_name: String,
    source: String,
    memory_used_bytes: i64,
    memory_total_bytes: Option<i64>,
}

/// One GPU's minute folded from its samples: count, min, max, sum, and the newest sample.
struct Minute<'a> {
    minute: i64,
    samples: i64,
    min: i64,
    max: i64,
    sum: i128,
    last: &'a Sample,
}

/// The per-minute aggregates of `samples`, one per GPU and minute.
fn fold(samples: &[Sample]) -> Vec<Minute<'_>> {
    let mut minutes: BTreeMap<(&str, &str, i64), Minute<'_>> = BTreeMap::new();
    for s in samples {
        let minute = s.at.div_euclid(60_000) * 60_000;
        let used = s.memory_used_bytes;
        minutes
            .entry((&s.host, &s.gpu_uuid, minute))
            .and_modify(|m| {
                m.samples += 1;
                m.min = m.min.min(used);
                m.max = m.max.max(used);
                m.sum += i128::from(used);
                if s.at >= m.last.at {
                    m.last = s;
                }
            })
            .or_insert(Minute {
                minute,
                samples: 1,
                min: used,
                max: used,
                sum: used.into(),
                last: s,
            });
    }
    minutes.into_values().collect()
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
