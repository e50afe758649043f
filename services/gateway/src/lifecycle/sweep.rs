//! The sweeper every replica runs: every few seconds, whatever no live replica holds is picked up
//! again: batches whose lease expired (their gateway died) resume from what the database
//! recorded, stale uploads are deleted, cancellations and expiries are signalled to workers, and
//! cancelled batches nothing was published for end.

use super::control;
use crate::AppState;
use crate::store::now;
use nightshift_shared::messages::BatchControl;
use std::time::Duration;

/// How often the sweeper looks for work nobody holds.
const SWEEP_EVERY: Duration = Duration::from_secs(5);
/// Uploads older than this that never finished belong to a dead gateway.
const STALE_UPLOAD_SECS: i64 = 3600;

/// Sweeps until the lifecycle's token fires.
pub async fn run(state: AppState) {
    let token = state.lifecycle.shutdown().clone();
    loop {
        if let Err(e) = sweep(&state).await {
            tracing::warn!(error = ?e, "sweep failed");
        }
        tokio::select! {
            () = token.cancelled() => return,
            () = tokio::time::sleep(SWEEP_EVERY) => {}
        }
    }
}

async fn sweep(state: &AppState) -> anyhow::Result<()> {
    let t = now();
    let grace_before = t - state.limits.cancel_grace_secs as i64;
    for id in state.store.batches_needing_work(t, grace_before).await? {
        state.lifecycle.start(state, &id);
    }
    state.store.delete_stale_uploads(t - STALE_UPLOAD_SECS).await?;
    for id in state.store.batches_in_status("cancelling").await? {
        control::signal(state, &id, BatchControl::Cancelled).await;
    }
    for id in state.store.expired_running(t).await? {
        control::signal(state, &id, BatchControl::Expired).await;
    }
    for id in state.store.cancel_unpublished(t).await? {
        tracing::info!(batch_id = %id, "batch cancelled before any chunk was published");
        state.metrics.batches_ended.with_label_values(&["cancelled"]).inc();
        crate::events::emit(state, &id).await;
    }
    Ok(())
}
