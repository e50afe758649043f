//! Telling workers that a batch's unstarted requests must not run: the batch's control state
//! (cancelled, expired) on the control stream, which every worker reads before each request.

use crate::AppState;
use nightshift_shared::messages::BatchControl;
use nightshift_shared::queue::Outgoing;
use nightshift_shared::subjects;
use std::time::Duration;

/// Longest a control signal or a lifecycle event waits for the queue (it may be unreachable).
pub const SIGNAL_TIMEOUT: Duration = Duration::from_secs(5);

/// Tells workers, through the control stream, that a batch's unstarted requests must not run.
/// Bounded by [`SIGNAL_TIMEOUT`]: the sweeper signals again every round until the batch ends.
pub async fn signal(state: &AppState, id: &str, control: BatchControl) {
    let value = match serde_json::to_vec(&control) {
        Ok(v) => v,
        Err(e) => return tracing::error!(error = %e, "encoding control"),
    };
    let publish = state.queue.publish(Outgoing::new(subjects::control_subject(id), value));
    match tokio::time::timeout(SIGNAL_TIMEOUT, publish).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            tracing::warn!(batch_id = id, error = %e, "could not signal workers; the sweeper retries")
        }
        Err(_) => tracing::warn!(
            batch_id = id,
            "the queue did not take the signal in time; the sweeper retries"
        ),
    }
}
