//! The background life of a batch, from upload to its end, one step per file:
//! - [`lease`]: which gateway replica works on a batch, held while it does;
//! - [`validate`]: the input file checked line by line, a valid batch's chunks recorded;
//! - [`publish`]: the recorded chunks put on the work queue, each window recorded after it is
//!   durable;
//! - [`finalize`]: the output and error files written in input order, the batch ended;
//! - [`sweep`]: what no live replica holds picked up again (a dead gateway's batches, stale
//!   uploads, cancellations and expiries to signal or end);
//! - [`control`]: telling workers a batch's unstarted requests must not run.
//!
//! Every step is recorded in the database before the next begins, so any replica can resume a
//! batch whose gateway died, and chunk message ids make a re-publish harmless.
//!
//! [`Lifecycle`] owns the tasks: one per batch this process works on, the sweeper, and whatever
//! an API call starts without waiting on it. All of them stop with its one token.

pub mod control;
pub mod finalize;
pub mod lease;
pub mod publish;
pub mod sweep;
pub mod validate;

use crate::AppState;
use crate::store::now;
use anyhow::Context;
use nightshift_shared::openai::{BatchStatus, Endpoint};
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// The batch tasks of this gateway process, and the token that stops them.
#[derive(Clone)]
pub struct Lifecycle {
    tracker: TaskTracker,
    shutdown: CancellationToken,
    holder: Arc<str>,
    /// Batches this process works on, each with whether another round was asked for.
    active: Arc<Mutex<HashMap<String, bool>>>,
}

impl Lifecycle {
    /// Tasks that stop when `shutdown` fires.
    pub fn new(shutdown: CancellationToken) -> Self {
        Self {
            tracker: TaskTracker::new(),
            shutdown,
            holder: format!("gateway-{}", uuid::Uuid::new_v4().simple()).into(),
            active: Arc::default(),
        }
    }

    /// Starts the batch's background work (whatever its status calls for), unless this process
    /// is already doing it; then the running task goes round once more when it ends, so a
    /// request that arrives while it publishes is not lost.
    pub fn start(&self, state: &AppState, batch_id: &str) {
        {
            let Ok(mut active) = self.active.lock() else { return };
            if let Some(again) = active.get_mut(batch_id) {
                *again = true;
                return;
            }
            active.insert(batch_id.to_owned(), false);
        }
        let (state, batch_id) = (state.clone(), batch_id.to_owned());
        self.tracker.spawn(async move {
            let lifecycle = &state.lifecycle;
            loop {
                if let Err(e) = lease::hold(&state, &batch_id, advance).await {
                    tracing::error!(batch_id, error = ?e, "batch work failed; another attempt follows");
                }
                let Ok(mut active) = lifecycle.active.lock() else { return };
                match active.get_mut(&batch_id) {
                    Some(again) if *again && !lifecycle.shutdown.is_cancelled() => *again = false,
                    _ => {
                        active.remove(&batch_id);
                        return;
                    }
                }
            }
        });
    }

    /// Hands a batch that has every result to [`finalize`] (through its task, which holds the
    /// lease, so two replicas never write its files at once).
    pub fn finalize(&self, state: &AppState, batch_id: &str) {
        self.start(state, batch_id);
    }

    /// Runs `work` in the background, tracked: shutdown waits for it. For what an API call
    /// starts but must not wait on (telling a queue that may be unreachable).
    pub fn spawn(&self, work: impl Future<Output = ()> + Send + 'static) {
        self.tracker.spawn(work);
    }

    /// The name this process's leases are held under.
    pub(crate) fn holder(&self) -> Arc<str> {
        self.holder.clone()
    }

    /// The token every task of this lifecycle stops with.
    pub fn shutdown(&self) -> &CancellationToken {
        &self.shutdown
    }

    /// Stops every task and waits for them.
    pub async fn stop(&self) {
        self.shutdown.cancel();
        self.tracker.close();
        self.tracker.wait().await;
    }
}

/// Does whatever background work the batch's status calls for, from validation to its end.
#[tracing::instrument(skip_all, fields(batch_id = %id))]
async fn advance(state: &AppState, id: &str, token: &CancellationToken) -> anyhow::Result<()> {
    let Some(mut batch) = state.store.get_batch_unscoped(id).await? else { return Ok(()) };
    let endpoint = Endpoint::parse(&batch.endpoint).context("stored endpoint")?;
    if batch.status == BatchStatus::Validating {
        if !validate::validate_and_start(state, &batch, endpoint).await? {
            return Ok(());
        }
        batch = state.store.get_batch_unscoped(id).await?.context("batch vanished")?;
    }
    if batch.status == BatchStatus::InProgress {
        publish::publish(state, &batch, endpoint, token).await?;
        batch = state.store.get_batch_unscoped(id).await?.context("batch vanished")?;
    }
    let all_in = batch.completed + batch.failed >= batch.total;
    let grace_over = now() - state.limits.cancel_grace_secs as i64;
    let due = match batch.status {
        BatchStatus::InProgress => all_in || batch.expires_at < grace_over,
        BatchStatus::Finalizing => true,
        BatchStatus::Cancelling => all_in || batch.cancelling_at.is_some_and(|t| t < grace_over),
        _ => false,
    };
    if due && !token.is_cancelled() {
        finalize::finalize(state, &batch).await?;
    }
    Ok(())
}
