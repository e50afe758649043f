//! The first step of a batch: its input file read once, line by line, through
//! [`crate::validate::Validator`]. A valid batch gets its chunks recorded (computed here, once;
//! publishing reads them back) and goes `in_progress`; an invalid one fails with its errors.

use crate::AppState;
use crate::lines::{Line, LineSplitter};
use crate::store::{BatchRow, now};
use crate::validate::{Validation, Validator};
use futures::TryStreamExt;
use nightshift_shared::openai::Endpoint;
use std::convert::Infallible;

/// Validates the input; a valid batch gets its chunks recorded and goes `in_progress`.
/// Returns whether it did.
pub async fn validate_and_start(
    state: &AppState,
    batch: &BatchRow,
    endpoint: Endpoint,
) -> anyhow::Result<bool> {
    let id = &batch.id;
    let started = std::time::Instant::now();
    match read_and_validate(state, batch, endpoint).await? {
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

async fn read_and_validate(
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
