//! The recorded chunks of a running batch put on the work queue in order, a window at a time:
//! each window is durable on the queue before it is recorded as published, and a chunk's message
//! id makes a re-publish after a crash harmless.

use crate::AppState;
use crate::lines::{Line, LineSplitter};
use crate::store::{BatchRow, ChunkRow, now};
use anyhow::{Context, bail};
use futures::TryStreamExt;
use nightshift_shared::messages::{ChunkMessage, ChunkRequest};
use nightshift_shared::openai::{BatchStatus, Endpoint, InputLine};
use nightshift_shared::queue::Outgoing;
use nightshift_shared::subjects;
use tokio_util::sync::CancellationToken;

/// Chunks published (and acknowledged by the queue) per round, between two records of progress.
const PUBLISH_WINDOW: usize = 64;

/// Publishes the chunks not yet recorded as published, in order, a window at a time: each window
/// is durable on the queue before it is recorded as published.
pub async fn publish(
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
