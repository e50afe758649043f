//! A replica's claim on a batch: taken before any work on it, renewed while the work runs, given
//! up at the end. A replica that dies holds it no longer than [`LEASE_SECS`]; then the sweeper of
//! any replica takes the batch over from what the database recorded.

use crate::AppState;
use crate::store::now;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How long a replica's claim on a batch lasts without renewal.
const LEASE_SECS: i64 = 30;
const RENEW_EVERY: Duration = Duration::from_secs(10);

/// Runs `work` on the batch while holding its lease; nothing if another replica holds it. The
/// token `work` gets fires at shutdown or when the lease is lost.
pub async fn hold<W>(state: &AppState, id: &str, work: W) -> anyhow::Result<()>
where
    W: AsyncFnOnce(&AppState, &str, &CancellationToken) -> anyhow::Result<()>,
{
    let holder = state.lifecycle.holder();
    let t = now();
    if !state.store.claim_ingest(id, &holder, t, t + LEASE_SECS).await? {
        return Ok(());
    }
    let token = state.lifecycle.shutdown().child_token();
    let result = tokio::select! {
        r = work(state, id, &token) => r,
        () = renew(state, id, &token) => Ok(()),
    };
    token.cancel();
    state.store.release_ingest(id, &holder).await?;
    result
}

/// Renews the lease until `token` fires; fires it when the lease is lost.
async fn renew(state: &AppState, id: &str, token: &CancellationToken) {
    let holder = state.lifecycle.holder();
    loop {
        tokio::select! {
            () = token.cancelled() => return,
            () = tokio::time::sleep(RENEW_EVERY) => {}
        }
        let t = now();
        match state.store.claim_ingest(id, &holder, t, t + LEASE_SECS).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(batch_id = %id, "lost the claim on the batch; stopping");
                token.cancel();
                return;
            }
            Err(e) => tracing::warn!(batch_id = %id, error = %e, "renewing the claim on the batch"),
        }
    }
}
