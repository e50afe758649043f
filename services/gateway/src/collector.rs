//! The result collector: a task of every gateway replica, sharing one durable consumer of the
//! result stream. It records results in the database idempotently (keyed by batch and line), keeps
//! `request_counts` live, and starts finalization once a batch has every result.
//!
//! It lives in the gateway rather than in its own service because it writes the gateway's tables
//! and files, and because replicas of the gateway are already what scales it.

use crate::AppState;
use crate::store::ResultRow;
use anyhow::Context;
use nightshift_shared::messages::{ResultGroup, ResultMessage, ResultOutcome};
use nightshift_shared::queue::{Consumer, ConsumerSpec, Settle};
use nightshift_shared::subjects;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;

/// Result messages taken per database round trip (each holds a group of results).
const BATCH: usize = 256;

/// How long one pull waits for results. A partly filled pull ends only at its expiry, so this is
/// also how long a batch's last results can wait to be recorded: 500 ms made the end of a batch
/// vary by up to 0.9 s; an idle gateway pays 10 pulls a second for it.
const PULL_WAIT: Duration = Duration::from_millis(100);

/// What one [`step`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Recorded(usize),
    Idle,
}

pub async fn consumer(state: &AppState) -> anyhow::Result<Arc<dyn Consumer>> {
    state
        .queue
        .consumer(ConsumerSpec {
            stream: subjects::RESULTS_STREAM,
            durable: subjects::COLLECTOR_CONSUMER,
            description: "Nightshift gateways record results through this",
            filter: None,
            ack_wait: Duration::from_secs(30),
            max_ack_pending: 50_000,
        })
        .await
        .context("creating the collector's consumer")
}

/// Takes up to [`BATCH`] result messages (waiting up to `wait` for the first), records their
/// results, acks them.
pub async fn step(
    state: &AppState,
    consumer: &Arc<dyn Consumer>,
    wait: Duration,
) -> anyhow::Result<Outcome> {
    let mut messages = Vec::new();
    let mut rows = Vec::new();
    for message in consumer.fetch(BATCH, wait).await.context("pulling results")? {
        match ResultGroup::decode(&message.payload) {
            Ok(results) => {
                rows.extend(results.into_iter().map(row));
                messages.push(message);
            }
            Err(e) => {
                tracing::error!(subject = %message.subject, error = %e, "not a result; dropping it");
                message.settle(Settle::Term).await?;
            }
        }
    }
    if messages.is_empty() {
        return Ok(Outcome::Idle);
    }
    let progress = state.store.record_results(&rows).await?;
    // Acks after the commit: a crash before them redelivers results the database already has,
    // which the insert then ignores.
    for message in &messages {
        if let Err(e) = message.ack().await {
            tracing::warn!(error = %e, "acking a recorded result");
        }
    }
    for p in progress.into_iter().filter(|p| p.all_in()) {
        tracing::info!(batch_id = %p.batch_id, status = %p.status, "every request has a result");
        state.ingest.start(state.clone(), p.batch_id);
    }
    Ok(Outcome::Recorded(rows.len()))
}

fn row(result: ResultMessage) -> ResultRow {
    let ok = result.outcome.is_success();
    let usage = result.usage.unwrap_or_default();
    let count = |n: Option<u64>| n.map(|n| n as i64);
    let (status_code, body, error_code, error_message) = match result.outcome {
        ResultOutcome::Response { status_code, body } => {
            (Some(i32::from(status_code)), Some(body.get().to_owned()), None, None)
        }
        ResultOutcome::Error { code, message } => (None, None, Some(code), Some(message)),
    };
    ResultRow {
        batch_id: result.batch_id,
        line: result.line as i32,
        custom_id: result.custom_id,
        request_id: result.request_id,
        ok,
        status_code,
        body,
        error_code,
        error_message,
        prompt_tokens: count(usage.prompt_tokens),
        completion_tokens: count(usage.completion_tokens),
        cached_tokens: count(usage.cached_tokens),
    }
}

/// Runs the collector until shutdown.
pub fn spawn(state: AppState) -> JoinHandle<()> {
    tokio::spawn(async move {
        let token = state.ingest.shutdown_token();
        let consumer = loop {
            match consumer(&state).await {
                Ok(c) => break c,
                Err(e) => {
                    tracing::warn!(error = ?e, "collector cannot start yet");
                    tokio::select! {
                        () = token.cancelled() => return,
                        () = tokio::time::sleep(Duration::from_secs(1)) => {}
                    }
                }
            }
        };
        loop {
            let result = tokio::select! {
                () = token.cancelled() => return,
                r = step(&state, &consumer, PULL_WAIT) => r,
            };
            if let Err(e) = result {
                tracing::warn!(error = ?e, "collecting results");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    })
}
