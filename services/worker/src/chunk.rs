//! Runs one chunk: skips requests a dead worker already finished, runs the rest on the backend
//! (or ends them `batch_cancelled`/`batch_expired`), publishes the results durably in groups,
//! then acks.

use crate::Worker;
use crate::backend::Execution;
use crate::outbox::Outbox;
use anyhow::Context;
use futures::StreamExt;
use futures::future::BoxFuture;
use nightshift_shared::clock::unix_ms as now_ms;
use nightshift_shared::measurements::{
    ChunkReport, ModelReload, OllamaTimingMs, RequestReport, SampleTrigger,
};
use nightshift_shared::messages::{
    BatchControl, ChunkMessage, ChunkRequest, ResultGroup, ResultMessage, ResultOutcome,
    new_request_id,
};
use nightshift_shared::queue::{Delivery, Settle};
use nightshift_shared::subjects;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What became of a chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkOutcome {
    /// Every request has a durable result and the chunk is acknowledged.
    Done { ran: usize, skipped: usize },
    /// The message was not a chunk; it was terminated so it never comes back.
    Poison,
}

pub async fn process(worker: &Worker, message: Delivery) -> anyhow::Result<ChunkOutcome> {
    let delivered = message.delivered;
    let chunk: ChunkMessage = match serde_json::from_slice(&message.payload) {
        Ok(chunk) => chunk,
        Err(e) => {
            tracing::error!(subject = %message.subject, error = %e, "not a chunk; terminating it");
            message.settle(Settle::Term).await?;
            return Ok(ChunkOutcome::Poison);
        }
    };
    let message = Arc::new(message);
    let heartbeat = Heartbeat::start(message.clone(), worker.ack_wait / 3);
    worker.sample_gpu(SampleTrigger::ChunkStart, &chunk.batch_id).await;
    let result = run(worker, &chunk, delivered).await;
    worker.sample_gpu(SampleTrigger::ChunkEnd, &chunk.batch_id).await;
    drop(heartbeat);
    let report = match result {
        Ok(report) => report,
        Err(e) => {
            // Leave it to JetStream: a short delay, then this or another worker tries again.
            let _ = message.settle(Settle::Nak(Some(Duration::from_secs(2)))).await;
            return Err(e.context(format!("chunk {} of {}", chunk.chunk_index, chunk.batch_id)));
        }
    };
    message.settle(Settle::AckSync).await.context("acknowledging chunk")?;
    let ran = report.requests.iter().filter(|r| r.attempts > 0).count();
    let skipped = chunk.requests.len() - report.requests.len();
    worker.publish_telemetry(subjects::TELEMETRY_CHUNKS, &report).await;
    Ok(ChunkOutcome::Done { ran, skipped })
}

/// Progress acks so a long chunk is not redelivered while this worker works on it. Dropping it
/// stops them, also when the chunk's task is aborted (a drain that ran out of time): a chunk
/// nobody works on must be redelivered after the ack wait.
struct Heartbeat(tokio::task::JoinHandle<()>);

impl Heartbeat {
    fn start(message: Arc<Delivery>, every: Duration) -> Self {
        let every = every.max(Duration::from_millis(500));
        Self(tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                if let Err(e) = message.settle(Settle::Progress).await {
                    tracing::warn!(error = %e, "progress ack");
                }
            }
        }))
    }
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn run(worker: &Worker, chunk: &ChunkMessage, delivered: u64) -> anyhow::Result<ChunkReport> {
    let received = Instant::now();
    let received_at = now_ms();
    let finished =
        if delivered > 1 { finished_lines(worker, chunk).await? } else { HashSet::new() };
    if !finished.is_empty() {
        tracing::info!(
            batch_id = %chunk.batch_id,
            chunk = chunk.chunk_index,
            finished = finished.len(),
            "redelivered chunk: skipping requests already done"
        );
    }
    // Requests are passed by index: a closure taking borrowed requests inside a spawned task
    // trips the compiler's higher-ranked lifetime inference.
    let todo: Vec<usize> = (0..chunk.requests.len())
        .filter(|&i| !finished.contains(&chunk.requests[i].line))
        .collect();
    let runs = todo.into_iter().map(|index| run_request(worker, chunk, index, received));
    let mut running = std::pin::pin!(
        futures::stream::iter(runs).buffer_unordered(worker.backend.concurrency().max())
    );
    let mut outbox = Outbox::new(&chunk.batch_id, chunk.chunk_index, worker.outbox_limits.clone());
    let mut requests = Vec::with_capacity(chunk.requests.len());
    // Results are published while the requests keep running: a request future left unpolled
    // could hold what the publish waits for (the standalone queue's database connection).
    let mut publishing: Option<BoxFuture<'static, anyhow::Result<()>>> = None;
    let mut running_done = false;
    loop {
        if publishing.is_none() {
            publishing = outbox.next(&worker.queue, running_done);
        }
        if running_done && publishing.is_none() && outbox.is_empty() {
            break;
        }
        let due = if publishing.is_none() { outbox.due() } else { None };
        tokio::select! {
            next = running.next(), if !running_done => match next {
                Some(done) => {
                    let (result, report) = done?;
                    requests.push(report);
                    outbox.push(result)?;
                }
                None => running_done = true,
            },
            published = in_flight(&mut publishing), if publishing.is_some() => {
                publishing = None;
                published?;
            }
            () = sleep_until(due), if due.is_some() => {}
        }
    }
    Ok(ChunkReport {
        batch_id: chunk.batch_id.clone(),
        chunk_index: chunk.chunk_index,
        worker_id: worker.id.clone(),
        delivery: delivered,
        received_at,
        finished_at: now_ms(),
        requests,
    })
}

/// The publish in flight, if any (else never resolves).
async fn in_flight(
    publishing: &mut Option<BoxFuture<'static, anyhow::Result<()>>>,
) -> anyhow::Result<()> {
    match publishing {
        Some(publish) => publish.await,
        None => std::future::pending().await,
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

/// Runs one request (or ends it cancelled or expired) and returns its result, not yet published.
async fn run_request(
    worker: &Worker,
    chunk: &ChunkMessage,
    index: usize,
    received: Instant,
) -> anyhow::Result<(ResultMessage, RequestReport)> {
    let request: &ChunkRequest = &chunk.requests[index];
    let queue_wait_ms = received.elapsed().as_secs_f64() * 1000.0;
    let stop = match worker.control.get(&chunk.batch_id).await {
        Some(control) => Some(control),
        None if now_ms() / 1000 >= chunk.expires_at => Some(BatchControl::Expired),
        None => None,
    };
    let (outcome, report) = match stop {
        Some(control) => {
            let code = control.error_code();
            let outcome = ResultOutcome::Error {
                code: code.into(),
                message: control.never_ran_message().into(),
            };
            let report = RequestReport {
                line: request.line,
                model: None,
                queue_wait_ms,
                latency_ms: 0.0,
                attempts: 0,
                error: Some(code.into()),
                usage: None,
                ollama: None,
            };
            (outcome, report)
        }
        None => {
            let execution = worker.backend.execute(chunk.endpoint, &request.body).await;
            worker.note_load(&execution, &chunk.batch_id).await;
            let report = request_report(request.line, queue_wait_ms, &execution);
            (execution.outcome, report)
        }
    };
    let result = ResultMessage {
        batch_id: chunk.batch_id.clone(),
        chunk_index: chunk.chunk_index,
        line: request.line,
        custom_id: request.custom_id.clone(),
        request_id: new_request_id(),
        worker_id: worker.id.clone(),
        outcome,
        usage: report.usage.clone(),
    };
    Ok((result, report))
}

fn request_report(line: u32, queue_wait_ms: f64, execution: &Execution) -> RequestReport {
    let error = match &execution.outcome {
        outcome if outcome.is_success() => None,
        ResultOutcome::Response { status_code, .. } | ResultOutcome::Stored { status_code, .. } => {
            Some(format!("http_{status_code}"))
        }
        ResultOutcome::Error { code, .. } => Some(code.clone()),
    };
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    RequestReport {
        line,
        model: execution.model.clone(),
        queue_wait_ms,
        latency_ms: ms(execution.latency),
        attempts: execution.attempts,
        error,
        usage: execution.usage.clone(),
        ollama: execution.timing.map(|t| OllamaTimingMs {
            load_ms: ms(t.load_duration),
            prompt_eval_ms: ms(t.prompt_eval_duration),
            eval_ms: ms(t.eval_duration),
            total_ms: ms(t.total_duration),
        }),
    }
}

/// Lines of `chunk` whose results are already on the result stream (from an earlier delivery).
async fn finished_lines(worker: &Worker, chunk: &ChunkMessage) -> anyhow::Result<HashSet<u32>> {
    let subject = subjects::result_subject(&chunk.batch_id, chunk.chunk_index);
    let held = worker
        .queue
        .read_subject(subjects::RESULTS_STREAM, &subject)
        .await
        .context("reading earlier results")?;
    Ok(held
        .iter()
        .filter_map(|payload| ResultGroup::decode(payload).ok())
        .flatten()
        .map(|result| result.line)
        .collect())
}

/// A model reload, if this execution paid a load after the model had been warm.
pub fn reload_of(
    execution: &Execution,
    threshold: Duration,
    worker_id: &str,
    batch_id: &str,
) -> Option<ModelReload> {
    let timing = execution.timing?;
    let model = execution.model.clone()?;
    (timing.load_duration >= threshold).then(|| ModelReload {
        worker_id: worker_id.to_owned(),
        model,
        at: now_ms(),
        load_ms: timing.load_duration.as_secs_f64() * 1000.0,
        batch_id: Some(batch_id.to_owned()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::FutureExt;
    use nightshift_shared::queue::{Acker, QueueResult};
    use std::sync::atomic::{AtomicUsize, Ordering};

    struct CountProgress(Arc<AtomicUsize>);

    impl Acker for CountProgress {
        fn settle(&self, how: Settle) -> BoxFuture<'_, QueueResult<()>> {
            if how == Settle::Progress {
                self.0.fetch_add(1, Ordering::SeqCst);
            }
            async { Ok(()) }.boxed()
        }
    }

    #[tokio::test]
    async fn an_aborted_chunk_task_stops_its_heartbeat() {
        let beats = Arc::new(AtomicUsize::new(0));
        let acker = Box::new(CountProgress(beats.clone()));
        let message = Arc::new(Delivery::new("s".into(), bytes::Bytes::new(), 1, acker));
        let task = tokio::spawn(async move {
            let _heartbeat = Heartbeat::start(message, Duration::from_millis(500));
            std::future::pending::<()>().await;
        });
        tokio::time::sleep(Duration::from_millis(1200)).await;
        assert!(beats.load(Ordering::SeqCst) >= 1, "the heartbeat beats while the chunk runs");
        task.abort();
        let _ = task.await;
        let after_abort = beats.load(Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(1200)).await;
        assert_eq!(beats.load(Ordering::SeqCst), after_abort, "no progress acks after the abort");
    }
}
