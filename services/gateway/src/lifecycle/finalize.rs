//! Ends a batch: writes its output file (successes) and error file (failures) in input order, in
//! OpenAI's line format, then gives it its final status.
//!
//! The input file is walked once, in order, beside the recorded results (read in pages by line):
//! a request without a result is one that never ran, because the batch was cancelled or expired,
//! and gets a `batch_cancelled` or `batch_expired` line in the error file.

use crate::AppState;
use crate::lines::{Line, LineSplitter};
use crate::store::{BatchRow, PART_SIZE, ResultRow, now};
use anyhow::Context;
use futures::TryStreamExt;
use nightshift_shared::messages::{BatchControl, never_ran_request_id, response_request_id};
use nightshift_shared::openai::{BatchStatus, InputLine, OutputError, OutputLine, OutputResponse};
use nightshift_shared::subjects;
use serde_json::value::RawValue;
use std::collections::VecDeque;
use std::convert::Infallible;

/// Most results read per query while walking the input.
const PAGE_MAX: i64 = 2000;
/// Results of the first query, before their size is known.
const PAGE_FIRST: i64 = 200;
/// Bytes of results a page aims at: large results (embeddings) come a few at a time, so a batch
/// of them is never held in memory at once.
const PAGE_BYTES: usize = 8 << 20;

/// Writes the files and ends the batch; `batch` is as it was when the work began.
#[tracing::instrument(skip_all, fields(batch_id = %batch.id))]
pub async fn finalize(state: &AppState, batch: &BatchRow) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let cancelling = batch.status == BatchStatus::Cancelling;
    let all_in = batch.completed + batch.failed >= batch.total;
    if batch.status == BatchStatus::InProgress
        && all_in
        && state.store.begin_finalizing(&batch.id, now()).await?
    {
        crate::events::emit(state, &batch.id).await;
    }
    let never_ran = if cancelling { BatchControl::Cancelled } else { BatchControl::Expired };
    let mut files = Files::new(state, batch);
    let mut results =
        Results { state, batch_id: &batch.id, page: VecDeque::new(), after: 0, limit: PAGE_FIRST };
    let mut splitter = LineSplitter::new(state.limits.max_line_bytes);
    let mut requests: Vec<(u32, String)> = Vec::new();
    let mut parts = std::pin::pin!(state.store.file_bytes(&batch.input_file_id));
    let mut never_ran_count = 0i64;
    let mut expired_results = 0u64;
    loop {
        let part = parts.try_next().await?;
        let mut collect = |line: Line<'_>| -> Result<(), Infallible> {
            if let Line::Text { number, bytes } = line
                && let Ok(text) = std::str::from_utf8(bytes)
                && !text.trim().is_empty()
                && let Ok(parsed) = serde_json::from_str::<InputLine<'_>>(text)
                && let Some(serde_json::Value::String(custom_id)) = parsed.custom_id
            {
                requests.push((number as u32, custom_id));
            }
            Ok(())
        };
        let Ok(()) = match &part {
            Some(part) => splitter.feed(part, &mut collect),
            None => splitter.finish(&mut collect),
        };
        for (line, custom_id) in requests.drain(..) {
            match results.take(line).await? {
                Some(result) => {
                    if result.error_code.as_deref() == Some(BatchControl::Expired.error_code()) {
                        expired_results += 1;
                    }
                    files.write(&result, &custom_id).await?;
                }
                None => {
                    never_ran_count += 1;
                    files.write_never_ran(line, &custom_id, never_ran).await?;
                }
            }
        }
        if part.is_none() {
            break;
        }
    }
    let (output_file_id, error_file_id) = files.finish().await?;
    let status = if cancelling {
        BatchStatus::Cancelled
    } else if never_ran_count > 0 || expired_results > 0 {
        BatchStatus::Expired
    } else {
        BatchStatus::Completed
    };
    if never_ran_count > 0 {
        // Chunks nobody took are dead weight on the queue now.
        let subject = subjects::chunk_subject(&batch.id);
        if let Err(e) = state.queue.purge_subject(subjects::CHUNKS_STREAM, &subject).await {
            tracing::warn!(error = %e, "purging the batch's remaining chunks");
        }
    }
    let ended = state
        .store
        .end_batch(
            &batch.id,
            status,
            output_file_id.as_deref(),
            error_file_id.as_deref(),
            never_ran_count,
            now(),
        )
        .await?;
    if ended {
        // The results are in the files now; the stream need not keep them for their window.
        let results = subjects::results_of_batch(&batch.id);
        if let Err(e) = state.queue.purge_subject(subjects::RESULTS_STREAM, &results).await {
            tracing::warn!(error = %e, "purging the batch's results; they expire with the stream's window");
        }
        state.metrics.batches_ended.with_label_values(&[status.as_str()]).inc();
        crate::events::emit(state, &batch.id).await;
        tracing::info!(
            status = status.as_str(),
            never_ran = never_ran_count,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "batch ended"
        );
    }
    Ok(())
}

/// The batch's results in line order, read a page at a time, each page sized by the bytes of
/// the one before.
struct Results<'a> {
    state: &'a AppState,
    batch_id: &'a str,
    page: VecDeque<ResultRow>,
    after: i32,
    limit: i64,
}

impl Results<'_> {
    /// The result of `line`, if it has one. Lines must be asked for in increasing order.
    async fn take(&mut self, line: u32) -> anyhow::Result<Option<ResultRow>> {
        let line = line as i32;
        loop {
            while self.page.front().is_some_and(|r| r.line < line) {
                self.page.pop_front();
            }
            if let Some(front) = self.page.front() {
                return Ok((front.line == line).then(|| self.page.pop_front()).flatten());
            }
            let page =
                self.state.store.results_after(self.batch_id, self.after, self.limit).await?;
            let Some(last) = page.last() else { return Ok(None) };
            self.after = last.line;
            let bytes: usize = page.iter().map(ResultRow::bytes).sum();
            let per_row = (bytes / page.len()).max(1);
            self.limit = ((PAGE_BYTES / per_row) as i64).clamp(1, PAGE_MAX);
            self.page.extend(page);
        }
    }
}

/// The output and error files being written; each is created with its first line.
struct Files<'a> {
    state: &'a AppState,
    batch: &'a BatchRow,
    output: Option<FileWriter>,
    errors: Option<FileWriter>,
    line: Vec<u8>,
}

impl<'a> Files<'a> {
    fn new(state: &'a AppState, batch: &'a BatchRow) -> Self {
        Self { state, batch, output: None, errors: None, line: Vec::new() }
    }

    /// Writes a result's line; `custom_id` is the input file's, the one the user wrote.
    async fn write(&mut self, result: &ResultRow, custom_id: &str) -> anyhow::Result<()> {
        let response = match (result.status_code, &result.body) {
            (Some(status), Some(body)) => Some(OutputResponse {
                status_code: u16::try_from(status).unwrap_or(500),
                request_id: response_request_id(&result.request_id),
                body: RawValue::from_string(body.clone()).or_else(|_| {
                    RawValue::from_string(serde_json::Value::String(body.clone()).to_string())
                })?,
            }),
            _ => None,
        };
        let error = match (&result.error_code, &result.error_message) {
            (Some(code), message) => Some(OutputError {
                code: code.clone(),
                message: message.clone().unwrap_or_default(),
            }),
            _ => None,
        };
        let line = OutputLine {
            id: result.request_id.clone(),
            custom_id: custom_id.to_owned(),
            response,
            error,
        };
        self.push(&line, result.ok).await
    }

    async fn write_never_ran(
        &mut self,
        line: u32,
        custom_id: &str,
        why: BatchControl,
    ) -> anyhow::Result<()> {
        let out = OutputLine {
            id: never_ran_request_id(&self.batch.id, line),
            custom_id: custom_id.to_owned(),
            response: None,
            error: Some(OutputError {
                code: why.error_code().into(),
                message: why.never_ran_message().into(),
            }),
        };
        self.push(&out, false).await
    }

    async fn push(&mut self, line: &OutputLine, ok: bool) -> anyhow::Result<()> {
        self.line.clear();
        serde_json::to_writer(&mut self.line, line).context("encoding an output line")?;
        self.line.push(b'\n');
        let (slot, kind) =
            if ok { (&mut self.output, "output") } else { (&mut self.errors, "errors") };
        if slot.is_none() {
            *slot = Some(FileWriter::begin(self.state, self.batch, kind).await?);
        }
        if let Some(writer) = slot {
            writer.write(self.state, &self.line).await?;
        }
        Ok(())
    }

    async fn finish(self) -> anyhow::Result<(Option<String>, Option<String>)> {
        let mut ids = (None, None);
        if let Some(w) = self.output {
            ids.0 = Some(w.finish(self.state).await?);
        }
        if let Some(w) = self.errors {
            ids.1 = Some(w.finish(self.state).await?);
        }
        Ok(ids)
    }
}

/// A file written part by part, invisible until finished.
struct FileWriter {
    id: String,
    filename: String,
    buffer: Vec<u8>,
    part_no: i32,
    bytes: u64,
}

impl FileWriter {
    async fn begin(state: &AppState, batch: &BatchRow, kind: &str) -> anyhow::Result<Self> {
        let id = format!("file-{}", uuid::Uuid::new_v4().simple());
        let filename = format!("{}_{kind}.jsonl", batch.id);
        state.store.begin_file(&id, &batch.owner, &filename).await?;
        Ok(Self { id, filename, buffer: Vec::with_capacity(PART_SIZE), part_no: 0, bytes: 0 })
    }

    async fn write(&mut self, state: &AppState, mut data: &[u8]) -> anyhow::Result<()> {
        self.bytes += data.len() as u64;
        while !data.is_empty() {
            let take = (PART_SIZE - self.buffer.len()).min(data.len());
            self.buffer.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.buffer.len() == PART_SIZE {
                state.store.put_part(&self.id, self.part_no, &self.buffer).await?;
                self.part_no += 1;
                self.buffer.clear();
            }
        }
        Ok(())
    }

    async fn finish(self, state: &AppState) -> anyhow::Result<String> {
        if !self.buffer.is_empty() {
            state.store.put_part(&self.id, self.part_no, &self.buffer).await?;
        }
        state
            .store
            .finish_file(&self.id, "batch_output", &self.filename, self.bytes as i64)
            .await?;
        Ok(self.id)
    }
}
