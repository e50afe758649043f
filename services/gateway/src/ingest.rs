//! The background life of a batch, one task per batch holding a lease on it: validate the input
//! file, record the chunks, publish them, and finalize once every request has a result. Every
//! step is recorded in the database, so any replica can resume a batch whose gateway died, and
//! chunk message ids make a re-publish harmless.

use crate::AppState;
use crate::lines::{Line, LineSplitter};
use crate::store::{BatchRow, ChunkRow, now};
use crate::validate::{Validation, Validator};
use anyhow::{Context, bail};
use futures::TryStreamExt;
use nightshift_shared::messages::{BatchControl, ChunkMessage, ChunkRequest};
use nightshift_shared::openai::{BatchStatus, Endpoint, InputLine};
use nightshift_shared::queue::Outgoing;
use nightshift_shared::subjects;
use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How long a replica's claim on a batch lasts without renewal.
const LEASE_SECS: i64 = 30;
const RENEW_EVERY: Duration = Duration::from_secs(10);
/// How often the sweeper looks for work nobody holds.
const SWEEP_EVERY: Duration = Duration::from_secs(5);
/// Chunks published (and acknowledged by the queue) per round, between two records of progress.
const PUBLISH_WINDOW: usize = 64;
/// Longest a control signal or a lifecycle event waits for the queue (it may be unreachable).
pub const SIGNAL_TIMEOUT: Duration = Duration::from_secs(5);
/// Uploads older than this that never finished belong to a dead gateway.
const STALE_UPLOAD_SECS: i64 = 3600;

/// The ingest tasks of this gateway process.
#[derive(Clone)]
pub struct Ingest {
    tracker: TaskTracker,
    shutdown: CancellationToken,
    holder: Arc<str>,
    /// Batches this process works on, each with whether another round was asked for.
    active: Arc<Mutex<HashMap<String, bool>>>,
}

impl Ingest {
    pub fn new(shutdown: CancellationToken) -> Self {
        Self {
            tracker: TaskTracker::new(),
            shutdown,
            holder: format!("gateway-{}", uuid::Uuid::new_v4().simple()).into(),
            active: Arc::default(),
        }
    }

    /// Starts the batch's background work, unless this process is already doing it; then the
    /// running task goes round once more when it ends, so a request to finalize that arrives
    /// while it publishes is not lost.
    pub fn start(&self, state: AppState, batch_id: String) {
        {
            let Ok(mut active) = self.active.lock() else { return };
            if let Some(again) = active.get_mut(&batch_id) {
                *again = true;
                return;
            }
            active.insert(batch_id.clone(), false);
        }
        let active = self.active.clone();
        self.tracker.spawn(async move {
            loop {
                if let Err(e) = run(&state, &batch_id).await {
                    tracing::error!(batch_id, error = ?e, "batch work failed; another attempt follows");
                }
                let Ok(mut active) = active.lock() else { return };
                match active.get_mut(&batch_id) {
                    Some(again) if *again && !state.ingest.shutdown.is_cancelled() => *again = false,
                    _ => {
                        active.remove(&batch_id);
                        return;
                    }
                }
            }
        });
    }

    /// Runs `work` in the background, tracked: shutdown waits for it. For what an API call
    /// starts but must not wait on (publishing to a queue that may be unreachable).
    pub fn spawn_tracked(&self, work: impl std::future::Future<Output = ()> + Send + 'static) {
        self.tracker.spawn(work);
    }

    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Waits for every ingest task to stop (they stop at shutdown).
    pub async fn wait(&self) {
        self.tracker.close();
        self.tracker.wait().await;
    }
}

/// Holds the batch's claim for as long as the work runs, renewing it; gives it up at the end.
async fn run(state: &AppState, id: &str) -> anyhow::Result<()> {
    let holder = state.ingest.holder.clone();
    let t = now();
    if !state.store.claim_ingest(id, &holder, t, t + LEASE_SECS).await? {
        return Ok(());
    }
    let token = state.ingest.shutdown.child_token();
    let renewer = {
        let (state, token, id, holder) =
            (state.clone(), token.clone(), id.to_owned(), holder.clone());
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = token.cancelled() => return,
                    () = tokio::time::sleep(RENEW_EVERY) => {}
                }
                let t = now();
                match state.store.claim_ingest(&id, &holder, t, t + LEASE_SECS).await {
                    Ok(true) => {}
                    Ok(false) => {
                        tracing::warn!(batch_id = %id, "lost the ingest claim; stopping");
                        token.cancel();
                        return;
                    }
                    Err(e) => {
                        tracing::warn!(batch_id = %id, error = %e, "renewing the ingest claim")
                    }
                }
            }
        })
    };
    let result = tokio::select! {
        r = ingest(state, id, &token) => r,
        () = token.cancelled() => Ok(()),
    };
    token.cancel();
    let _ = renewer.await;
    state.store.release_ingest(id, &holder).await?;
    result
}

/// Does whatever background work the batch's status calls for, from validation to its end.
#[tracing::instrument(skip_all, fields(batch_id = %id))]
async fn ingest(state: &AppState, id: &str, token: &CancellationToken) -> anyhow::Result<()> {
    let Some(mut batch) = state.store.get_batch_unscoped(id).await? else { return Ok(()) };
    let endpoint = Endpoint::parse(&batch.endpoint).context("stored endpoint")?;
    if batch.status == BatchStatus::Validating {
        if !validate_and_start(state, &batch, endpoint).await? {
            return Ok(());
        }
        batch = state.store.get_batch_unscoped(id).await?.context("batch vanished")?;
    }
    if batch.status == BatchStatus::InProgress {
        publish(state, &batch, endpoint, token).await?;
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
        crate::finalize::finalize(state, &batch).await?;
    }
    Ok(())
}

/// Validates the input; a valid batch gets its chunks recorded and goes `in_progress`.
/// Returns whether it did.
async fn validate_and_start(
    state: &AppState,
    batch: &BatchRow,
    endpoint: Endpoint,
) -> anyhow::Result<bool> {
    let id = &batch.id;
    let started = std::time::Instant::now();
    match validate(state, batch, endpoint).await? {
        Validation::Invalid(errors) => {
            tracing::info!(errors = errors.data.len(), "batch failed validation");
            if state.store.fail_batch(id, &errors, now()).await? {
                state.metrics.batches_ended.with_label_values(&["failed"]).inc();
                crate::events::emit(state, id).await;
            }
            Ok(false)
        }
        Validation::Valid { total, model, chunks } => {
            let started_ok =
                state.store.start_batch(id, total as i64, model.as_deref(), &chunks, now()).await?;
            if started_ok {
                state.metrics.requests_validated.inc_by(total);
                crate::events::emit(state, id).await;
                tracing::info!(
                    total,
                    chunks = chunks.len(),
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "batch validated"
                );
            }
            Ok(started_ok)
        }
    }
}

async fn validate(
    state: &AppState,
    batch: &BatchRow,
    endpoint: Endpoint,
) -> anyhow::Result<Validation> {
    let limits = state.limits.validation();
    let mut validator = Validator::new(endpoint, limits);
    let mut splitter = LineSplitter::new(limits.max_line_bytes);
    let mut on_line = |line: Line<'_>| -> Result<(), Infallible> {
        validator.line(line);
        Ok(())
    };
    let mut bytes = 0u64;
    let mut parts = std::pin::pin!(state.store.file_bytes(&batch.input_file_id));
    while let Some(part) = parts.try_next().await? {
        bytes += part.len() as u64;
        let Ok(()) = splitter.feed(&part, &mut on_line);
    }
    let Ok(()) = splitter.finish(&mut on_line);
    Ok(validator.finish(bytes))
}

/// Publishes the chunks not yet recorded as published, in order, a window at a time: each window
/// is durable on the queue before it is recorded as published.
async fn publish(
    state: &AppState,
    batch: &BatchRow,
    endpoint: Endpoint,
    token: &CancellationToken,
) -> anyhow::Result<()> {
    let chunks = state.store.unpublished_chunks(&batch.id).await?;
    if chunks.is_empty() {
        return Ok(());
    }
    let started = std::time::Instant::now();
    let mut builder = ChunkBuilder::new(batch, endpoint, &chunks);
    let mut splitter = LineSplitter::new(state.limits.max_line_bytes);
    let mut ready: Vec<ChunkMessage> = Vec::new();
    let mut window: Vec<(i32, Outgoing)> = Vec::with_capacity(PUBLISH_WINDOW);
    let mut parts = std::pin::pin!(state.store.file_bytes(&batch.input_file_id));
    let mut published = 0usize;
    loop {
        let part = parts.try_next().await?;
        let mut on_line = |line: Line<'_>| builder.line(line, &mut ready);
        match &part {
            Some(part) => splitter.feed(part, &mut on_line)?,
            None => splitter.finish(&mut on_line)?,
        }
        for message in ready.drain(..) {
            let payload = serde_json::to_vec(&message).context("encoding chunk")?;
            let outgoing = Outgoing::new(subjects::chunk_subject(&batch.id), payload)
                .with_id(subjects::chunk_msg_id(&batch.id, message.chunk_index));
            window.push((message.chunk_index as i32, outgoing));
            if window.len() >= PUBLISH_WINDOW {
                if token.is_cancelled() {
                    return Ok(());
                }
                published += publish_window(state, &batch.id, &mut window).await?;
                if !still_running(state, &batch.id).await? {
                    tracing::info!("batch no longer in progress; publishing stops");
                    return Ok(());
                }
            }
        }
        if part.is_none() {
            break;
        }
    }
    published += publish_window(state, &batch.id, &mut window).await?;
    if !builder.done() {
        bail!("input file ended before every recorded chunk was found; was it changed?");
    }
    tracing::info!(
        published,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "chunks published"
    );
    Ok(())
}

/// Publishes a window of chunks, then records them as published.
async fn publish_window(
    state: &AppState,
    id: &str,
    window: &mut Vec<(i32, Outgoing)>,
) -> anyhow::Result<usize> {
    if window.is_empty() {
        return Ok(0);
    }
    let (indexes, messages): (Vec<i32>, Vec<Outgoing>) = window.drain(..).unzip();
    state.queue.publish_all(messages).await.context("publishing chunks")?;
    state.store.mark_published_many(id, &indexes, now()).await?;
    state.metrics.chunks_published.inc_by(indexes.len() as u64);
    Ok(indexes.len())
}

async fn still_running(state: &AppState, id: &str) -> anyhow::Result<bool> {
    let batch = state.store.get_batch_unscoped(id).await?;
    Ok(batch.is_some_and(|b| b.status == BatchStatus::InProgress))
}

/// Collects the lines of the chunks to publish into chunk messages.
struct ChunkBuilder<'a> {
    batch_id: &'a str,
    endpoint: Endpoint,
    expires_at: i64,
    chunks: &'a [ChunkRow],
    next: usize,
    requests: Vec<ChunkRequest>,
}

impl<'a> ChunkBuilder<'a> {
    fn new(batch: &'a BatchRow, endpoint: Endpoint, chunks: &'a [ChunkRow]) -> Self {
        Self {
            batch_id: &batch.id,
            endpoint,
            expires_at: batch.expires_at,
            chunks,
            next: 0,
            requests: Vec::new(),
        }
    }

    fn done(&self) -> bool {
        self.next == self.chunks.len()
    }

    fn line(&mut self, line: Line<'_>, ready: &mut Vec<ChunkMessage>) -> anyhow::Result<()> {
        let Some(chunk) = self.chunks.get(self.next) else { return Ok(()) };
        let Line::Text { number, bytes } = line else {
            bail!("line {} is too long, but the batch passed validation", line_number(&line));
        };
        if number < chunk.first_line as u64 || bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(());
        }
        let text = std::str::from_utf8(bytes).context("validated line is not UTF-8")?;
        let parsed: InputLine<'_> = serde_json::from_str(text).context("validated line")?;
        let (Some(serde_json::Value::String(custom_id)), Some(body)) =
            (parsed.custom_id, parsed.body)
        else {
            bail!("line {number} lost its custom_id or body since validation");
        };
        self.requests.push(ChunkRequest { line: number as u32, custom_id, body: body.to_owned() });
        if number == chunk.last_line as u64 {
            let requests = std::mem::take(&mut self.requests);
            if requests.len() != chunk.request_count as usize {
                bail!(
                    "chunk {} holds {} requests, {} were recorded",
                    chunk.chunk_index,
                    requests.len(),
                    chunk.request_count
                );
            }
            ready.push(ChunkMessage {
                batch_id: self.batch_id.to_owned(),
                chunk_index: chunk.chunk_index as u32,
                endpoint: self.endpoint,
                expires_at: self.expires_at,
                requests,
            });
            self.next += 1;
        }
        Ok(())
    }
}

fn line_number(line: &Line<'_>) -> u64 {
    match line {
        Line::Text { number, .. } | Line::TooLong { number, .. } => *number,
    }
}

/// Tells workers, through the control stream, that a batch's unstarted requests must not run.
/// Bounded by [`SIGNAL_TIMEOUT`]: the sweeper signals again every round until the batch ends.
pub async fn signal_control(state: &AppState, id: &str, control: BatchControl) {
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

/// Periodically picks up work no live replica holds: unfinished ingests, stale uploads,
/// and cancellations to propagate or end.
pub fn spawn_sweeper(state: AppState) -> JoinHandle<()> {
    tokio::spawn(async move {
        let token = state.ingest.shutdown.clone();
        loop {
            if let Err(e) = sweep(&state).await {
                tracing::warn!(error = ?e, "sweep failed");
            }
            tokio::select! {
                () = token.cancelled() => return,
                () = tokio::time::sleep(SWEEP_EVERY) => {}
            }
        }
    })
}

async fn sweep(state: &AppState) -> anyhow::Result<()> {
    let t = now();
    let grace_before = t - state.limits.cancel_grace_secs as i64;
    for id in state.store.batches_needing_work(t, grace_before).await? {
        state.ingest.start(state.clone(), id);
    }
    state.store.delete_stale_uploads(t - STALE_UPLOAD_SECS).await?;
    for id in state.store.batches_in_status("cancelling").await? {
        signal_control(state, &id, BatchControl::Cancelled).await;
    }
    for id in state.store.expired_running(t).await? {
        signal_control(state, &id, BatchControl::Expired).await;
    }
    for id in state.store.cancel_unpublished(t).await? {
        tracing::info!(batch_id = %id, "batch cancelled before any chunk was published");
        state.metrics.batches_ended.with_label_values(&["cancelled"]).inc();
        crate::events::emit(state, &id).await;
    }
    Ok(())
}
