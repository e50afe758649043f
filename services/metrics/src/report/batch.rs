//! Per-batch metrics ([`BatchMetrics`]), as the test plan lists them: performance, memory,
//! success rate, tokens, plus the model reloads seen during the batch. Missing figures are
//! `null`, never 0.

use super::vram::batch_vram;
use crate::stats::{pct, ratio};
use crate::store::Store;
use crate::store::read::{BatchRow, ReloadRow, RequestSummary};
use nightshift_shared::reports::{
    BatchMetrics, BatchVram, ErrorType, Reload, Reloads, RequestFigures, Timing, Tokens,
};

/// The metrics of `batch_id` if `owner` owns it; `None` when unknown or someone else's.
pub async fn load(
    store: &Store,
    batch_id: &str,
    owner: &str,
    vram_window_ms: i64,
) -> Result<Option<BatchMetrics>, sqlx::Error> {
    let Some(batch) = store.batch(batch_id).await? else { return Ok(None) };
    if batch.owner != owner {
        return Ok(None);
    }
    let summary = store.request_summary(batch_id).await?;
    let errors = store.error_types(batch_id).await?;
    let vram = match batch.started_at {
        Some(start) => {
            let to = batch.ended_at.unwrap_or_else(crate::store::now_ms);
            let points = store
                .gpu_points(start - vram_window_ms, to + vram_window_ms, &summary.workers)
                .await?;
            batch_vram(&points, start, batch.ended_at, vram_window_ms)
        }
        None => batch_vram(&[], 0, None, 0),
    };
    let reloads = store.reloads(batch_id, batch.started_at, batch.ended_at).await?;
    Ok(Some(assemble(batch, summary, errors, vram, reloads)))
}

/// Puts the stored figures together.
pub fn assemble(
    batch: BatchRow,
    s: RequestSummary,
    errors: Vec<(String, i64)>,
    vram: BatchVram,
    reloads: Vec<ReloadRow>,
) -> BatchMetrics {
    let u = |v: i64| v.max(0) as u64;
    let terminal =
        matches!(batch.status.as_str(), "completed" | "failed" | "cancelled" | "expired");
    let (completed, failed) = if terminal {
        (u(batch.completed), u(batch.failed))
    } else {
        (u(s.succeeded), u(s.failed))
    };
    let total = u(batch.total);
    let processing_seconds = batch
        .started_at
        .zip(batch.ended_at)
        .map(|(start, end)| (end - start).max(0) as f64 / 1000.0);
    let done = (completed + failed) as f64;
    let throughput_rps = processing_seconds.and_then(|secs| ratio(done, secs));
    let prompt = s.prompt_tokens.map(u);
    let completion = s.completion_tokens.map(u);
    let cached = s.cached_tokens.map(u);
    BatchMetrics {
        object: BatchMetrics::OBJECT.into(),
        batch_id: batch.batch_id,
        status: batch.status,
        model: batch.model,
        requests: RequestFigures {
            total,
            completed,
            failed,
            success_pct: pct(completed, total),
            reported: u(s.reported),
        },
        timing: Timing {
            started_at: batch.started_at,
            ended_at: batch.ended_at,
            processing_seconds,
            throughput_rps,
            seconds_per_request: processing_seconds.and_then(|secs| ratio(secs, done)),
            latency_mean_ms: s.latency_mean_ms,
            latency_p50_ms: s.latency_p50_ms,
            latency_p95_ms: s.latency_p95_ms,
            latency_p99_ms: s.latency_p99_ms,
            latency_max_ms: s.latency_max_ms,
            queue_wait_mean_ms: s.queue_wait_mean_ms,
        },
        tokens: Tokens {
            prompt,
            completion,
            cached,
            total: prompt.zip(completion).map(|(p, c)| p + c),
            tokens_per_second: completion
                .zip(processing_seconds)
                .and_then(|(c, secs)| ratio(c as f64, secs)),
            cache_hit_rate: cached
                .zip(s.prompt_tokens_with_cached)
                .and_then(|(c, p)| ratio(c as f64, p as f64)),
        },
        vram,
        error_types: errors
            .into_iter()
            .map(|(code, count)| ErrorType { code, count: u(count) })
            .collect(),
        model_reloads: Reloads {
            count: reloads.len() as u64,
            reloads: reloads
                .into_iter()
                .map(|r| Reload {
                    worker_id: r.worker_id,
                    model: r.model,
                    at: r.at,
                    load_ms: r.load_ms,
                })
                .collect(),
        },
    }
}
