//! The result collector: a task of every gateway replica, sharing one durable consumer of the
//! result stream. It records results in the database idempotently (keyed by batch and line), keeps
//! `request_counts` live, and hands a batch that has every result to
//! [`crate::lifecycle::finalize`].
//!
//! It lives in the gateway rather than in its own service because it writes the gateway's tables
//! and files, and because replicas of the gateway are already what scales it.

use crate::AppState;
use crate::store::{Progress, ResultRow};
use anyhow::Context;
use nightshift_shared::http::is_unreachable;
use nightshift_shared::messages::{ResultGroup, ResultMessage, ResultOutcome};
use nightshift_shared::queue::{Consumer, ConsumerSpec, Delivery, Settle};
use nightshift_shared::subjects;
use serde_json::value::RawValue;
use std::sync::Arc;
use std::time::Duration;

/// Result messages taken per database round trip (each holds a group of results).
const BATCH: usize = 256;

/// How long one pull waits for results. A partly filled pull ends only at its expiry, so this is
/// also how long a batch's last results can wait to be recorded: 500 ms made the end of a batch
/// vary by up to 0.9 s; an idle gateway pays 10 pulls a second for it.
const PULL_WAIT: Duration = Duration::from_millis(100);

/// Longest a stopping collector goes on recording the results already waiting.
const FINAL_DRAIN: Duration = Duration::from_secs(5);

/// How soon results the database could not take (it was unreachable) are delivered again.
const RETRY_DELAY: Duration = Duration::from_secs(1);

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
///
/// A message the database refuses never holds up the others, nor comes back forever: the messages
/// of a refused round are recorded one by one, and in a refused message each result the database
/// will not hold becomes that request's failure, `result_unstorable` with the reason, so its batch
/// still ends. An unreachable database is not poison: the round is given back to the queue.
pub async fn step(
    state: &AppState,
    consumer: &Arc<dyn Consumer>,
    wait: Duration,
) -> anyhow::Result<Outcome> {
    let mut messages: Vec<(Delivery, Vec<ResultRow>)> = Vec::new();
    let mut large: Vec<(Delivery, Vec<ResultMessage>)> = Vec::new();
    for message in consumer.fetch(BATCH, wait).await.context("pulling results")? {
        match ResultGroup::decode(&message.payload) {
            Ok(results)
                if results.iter().any(|r| matches!(r.outcome, ResultOutcome::Stored { .. })) =>
            {
                large.push((message, results));
            }
            Ok(results) => {
                let rows = results.into_iter().map(row).collect();
                messages.push((message, rows));
            }
            Err(e) => {
                tracing::error!(subject = %message.subject, error = %e, "not a result; dropping it");
                message.settle(Settle::Term).await?;
            }
        }
    }
    if messages.is_empty() && large.is_empty() {
        return Ok(Outcome::Idle);
    }
    let mut recorded = 0;
    let mut progress = if messages.is_empty() {
        Vec::new()
    } else {
        recorded += messages.iter().map(|(_, rows)| rows.len()).sum::<usize>();
        record_round(state, messages).await?
    };
    // Each message naming a large result is recorded on its own, so that only one such
    // result is in memory at a time.
    for (message, results) in large {
        recorded += results.len();
        progress.extend(record_large(state, &message, results).await?);
    }
    for p in progress.into_iter().filter(|p| p.all_in()) {
        tracing::info!(batch_id = %p.batch_id, status = %p.status, "every request has a result");
        state.lifecycle.finalize(state, &p.batch_id);
    }
    Ok(Outcome::Recorded(recorded))
}

/// Records the results of several messages at once; if the database refuses the round, each
/// message on its own.
async fn record_round(
    state: &AppState,
    messages: Vec<(Delivery, Vec<ResultRow>)>,
) -> anyhow::Result<Vec<Progress>> {
    let rows: Vec<ResultRow> = messages.iter().flat_map(|(_, rows)| rows.iter().cloned()).collect();
    match state.store.record_results(&rows).await {
        Ok(progress) => {
            // Acks after the commit: a crash before them redelivers results the database
            // already has, which the insert then ignores.
            for (message, _) in &messages {
                ack(message).await;
            }
            Ok(progress)
        }
        Err(e) if is_unreachable(&e) => {
            for (message, _) in &messages {
                give_back(message).await;
            }
            Err(anyhow::Error::new(e).context("recording results"))
        }
        Err(e) => {
            tracing::warn!(error = %e, messages = messages.len(), "a round of results was refused; recording its messages one by one");
            let mut progress = Vec::new();
            for (message, rows) in messages {
                progress.extend(record_message(state, &message, rows).await?);
            }
            Ok(progress)
        }
    }
}

/// Reads the objects a message names, records its results, then deletes the objects. An object
/// that is gone (past the results window) leaves its request failed with `result_lost`; one
/// already recorded (a redelivery after the commit) is kept as it was.
async fn record_large(
    state: &AppState,
    message: &Delivery,
    results: Vec<ResultMessage>,
) -> anyhow::Result<Vec<Progress>> {
    let objects = state.queue.objects();
    let mut names = Vec::new();
    let mut rows = Vec::with_capacity(results.len());
    for mut result in results {
        if let ResultOutcome::Stored { status_code, object, bytes } = &result.outcome {
            let (status_code, object, bytes) = (*status_code, object.clone(), *bytes);
            let read = match objects {
                Some(objects) => match objects.get(&object).await {
                    Ok(read) => read,
                    Err(e) => {
                        give_back(message).await;
                        return Err(anyhow::Error::new(e).context("reading a large result"));
                    }
                },
                None => None,
            };
            let body = read.map(|b| {
                String::from_utf8(b.to_vec())
                    .map_err(|e| e.to_string())
                    .and_then(|t| RawValue::from_string(t).map_err(|e| e.to_string()))
            });
            result.outcome = match body {
                Some(Ok(body)) => ResultOutcome::Response { status_code, body },
                Some(Err(e)) => ResultOutcome::Error {
                    code: "backend_bad_response".into(),
                    message: format!("The stored result ({bytes} bytes) is not JSON: {e}"),
                },
                None => ResultOutcome::Error {
                    code: "result_lost".into(),
                    message: format!(
                        "The result ({bytes} bytes) was stored as object {object}, which is no \
                         longer there: it outlived NIGHTSHIFT_RESULTS_RETENTION_HOURS."
                    ),
                },
            };
            names.push(object);
        }
        rows.push(row(result));
    }
    let progress = record_message(state, message, rows).await?;
    if let Some(objects) = objects {
        for name in &names {
            if let Err(e) = objects.delete(name).await {
                tracing::warn!(object = %name, error = %e, "deleting a recorded large result; it expires with the results window");
            }
        }
    }
    Ok(progress)
}

/// Records one message of a refused round; in a message the database refuses, each result is
/// recorded alone, and one it will not hold is recorded as a failure saying why.
async fn record_message(
    state: &AppState,
    message: &Delivery,
    rows: Vec<ResultRow>,
) -> anyhow::Result<Vec<Progress>> {
    let refused = match state.store.record_results(&rows).await {
        Ok(progress) => {
            ack(message).await;
            return Ok(progress);
        }
        Err(e) if is_unreachable(&e) => {
            give_back(message).await;
            return Err(anyhow::Error::new(e).context("recording results"));
        }
        Err(e) => e,
    };
    tracing::warn!(subject = %message.subject, error = %refused, "the database refused a result message; recording its results one by one");
    let mut progress = Vec::new();
    for row in rows {
        let refusal = match state.store.record_results(std::slice::from_ref(&row)).await {
            Ok(p) => {
                progress.extend(p);
                continue;
            }
            Err(e) if is_unreachable(&e) => {
                give_back(message).await;
                return Err(anyhow::Error::new(e).context("recording results"));
            }
            Err(e) => e,
        };
        tracing::error!(batch_id = %row.batch_id, line = row.line, error = %refusal, "result refused by the database; recorded as that request's failure");
        match state.store.record_results(&[ResultRow::unstorable(&row, &refusal)]).await {
            Ok(p) => progress.extend(p),
            Err(e) if is_unreachable(&e) => {
                give_back(message).await;
                return Err(anyhow::Error::new(e).context("recording results"));
            }
            // Not even the failure can be stored (its batch id itself is refused): nothing of a
            // running batch is in it.
            Err(e) => {
                tracing::error!(batch_id = %row.batch_id, line = row.line, error = %e, "dropping a result the database cannot hold")
            }
        }
    }
    ack(message).await;
    Ok(progress)
}

async fn ack(message: &Delivery) {
    if let Err(e) = message.ack().await {
        tracing::warn!(error = %e, "acking a recorded result");
    }
}

/// Hands a message back for another try soon, rather than after the ack wait.
async fn give_back(message: &Delivery) {
    if let Err(e) = message.settle(Settle::Nak(Some(RETRY_DELAY))).await {
        tracing::debug!(error = %e, "nak lost; the ack wait redelivers");
    }
}

/// A result as the database stores it. Text it may echo from the request or the backend (the
/// custom id, an error message) has NUL characters written as `\u0000`, which Postgres text
/// cannot hold; the output files take the custom id from the input file, so nothing is lost.
fn row(result: ResultMessage) -> ResultRow {
    let ok = result.outcome.is_success();
    let usage = result.usage.unwrap_or_default();
    let count = |n: Option<u64>| n.map(|n| n as i64);
    let (status_code, body, error_code, error_message) = match result.outcome {
        ResultOutcome::Response { status_code, body } => {
            (Some(i32::from(status_code)), Some(body.get().to_owned()), None, None)
        }
        ResultOutcome::Error { code, message } => {
            (None, None, Some(without_nul(code)), Some(without_nul(message)))
        }
        // Resolved by `record_large` before rows are made; never stored as it is.
        ResultOutcome::Stored { object, .. } => (
            None,
            None,
            Some("result_lost".into()),
            Some(format!("The result stored as object {object} was not read.")),
        ),
    };
    ResultRow {
        batch_id: result.batch_id,
        line: result.line as i32,
        custom_id: without_nul(result.custom_id),
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

fn without_nul(text: String) -> String {
    if text.contains('\0') { text.replace('\0', "\\u0000") } else { text }
}

/// Collects results until the lifecycle's token fires.
pub async fn run(state: AppState) {
    let token = state.lifecycle.shutdown().clone();
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
    // A step is never cut short (a round recorded but not acknowledged would come back): each
    // waits at most PULL_WAIT for results, then records what it took.
    while !token.is_cancelled() {
        if let Err(e) = step(&state, &consumer, PULL_WAIT).await {
            tracing::warn!(error = ?e, "collecting results");
            tokio::select! {
                () = token.cancelled() => {}
                () = tokio::time::sleep(Duration::from_millis(500)) => {}
            }
        }
    }
    // Stopping: what is already waiting is recorded now rather than at the next start (in
    // standalone, the results of the chunks the worker finished while it drained), for a
    // bounded time, as other replicas' workers may still be publishing.
    let deadline = tokio::time::Instant::now() + FINAL_DRAIN;
    while tokio::time::Instant::now() < deadline {
        match step(&state, &consumer, Duration::ZERO).await {
            Ok(Outcome::Recorded(_)) => {}
            Ok(Outcome::Idle) => return,
            Err(e) => {
                tracing::warn!(error = ?e, "results left for the next start");
                return;
            }
        }
    }
}
