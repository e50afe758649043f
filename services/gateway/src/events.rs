//! Batch lifecycle events for the metrics service, published as each step happens.

use crate::AppState;
use crate::store::BatchRow;
use nightshift_shared::measurements::BatchEvent;
use nightshift_shared::queue::Outgoing;
use nightshift_shared::subjects::TELEMETRY_BATCHES;

/// Publishes the batch's current state. Best effort: metrics must never hold up a batch.
pub async fn emit(state: &AppState, batch_id: &str) {
    match state.store.get_batch_unscoped(batch_id).await {
        Ok(Some(batch)) => emit_row(state, &batch).await,
        Ok(None) => {}
        Err(e) => tracing::warn!(batch_id, error = %e, "reading batch for its event"),
    }
}

pub async fn emit_row(state: &AppState, batch: &BatchRow) {
    let event = BatchEvent {
        batch_id: batch.id.clone(),
        owner: batch.owner.clone(),
        status: batch.status,
        at: nightshift_shared::clock::unix_ms(),
        total: batch.total.max(0) as u64,
        completed: batch.completed.max(0) as u64,
        failed: batch.failed.max(0) as u64,
        model: batch.model.clone(),
        metadata: batch.metadata.as_ref().map(|m| m.0.clone()),
    };
    let Ok(payload) = serde_json::to_vec(&event) else { return };
    let publish = state.queue.publish(Outgoing::new(TELEMETRY_BATCHES, payload));
    match tokio::time::timeout(crate::lifecycle::control::SIGNAL_TIMEOUT, publish).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!(batch_id = %batch.id, error = %e, "batch event not published"),
        Err(_) => {
            tracing::warn!(batch_id = %batch.id, "batch event not published: the queue did not take it in time")
        }
    }
}

/// [`emit_row`] without waiting for it: an API call answers even while the queue is unreachable.
pub fn emit_row_detached(state: &AppState, batch: &BatchRow) {
    let (state, batch) = (state.clone(), batch.clone());
    state.lifecycle.clone().spawn(async move { emit_row(&state, &batch).await });
}
