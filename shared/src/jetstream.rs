//! The JetStream streams every service expects, created idempotently by whoever starts first.

use crate::subjects::{
    CHUNKS_STREAM, CHUNKS_SUBJECT_PREFIX, CONTROL_STREAM, CONTROL_SUBJECT_PREFIX, RESULTS_STREAM,
    RESULTS_SUBJECT_PREFIX, TELEMETRY_ALL, TELEMETRY_STREAM,
};
use async_nats::jetstream::{self, stream};
use std::time::Duration;

/// How long JetStream remembers a message id to drop a re-publish of it.
pub const DEDUP_WINDOW: Duration = Duration::from_secs(2 * 60 * 60);

#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("creating JetStream stream {name}: {source}")]
    Stream { name: &'static str, source: async_nats::Error },
}

/// How long a batch's control state is kept: longer than any batch can run.
pub const CONTROL_RETENTION: Duration = Duration::from_secs(7 * 24 * 60 * 60);

/// Handles on the streams, after making sure they exist.
pub struct Streams {
    pub chunks: stream::Stream,
    pub results: stream::Stream,
    pub control: stream::Stream,
    pub telemetry: stream::Stream,
}

/// How long measurements wait for the metrics service before JetStream drops them.
pub const TELEMETRY_RETENTION: Duration = Duration::from_secs(7 * 24 * 60 * 60);

/// Creates (or opens) the chunk work queue and the result, control and telemetry streams.
///
/// `results_retention` bounds how long a result waits for the collector: past it, JetStream drops it.
pub async fn ensure(
    js: &jetstream::Context,
    results_retention: Duration,
) -> Result<Streams, SetupError> {
    let chunks = js
        .get_or_create_stream(stream::Config {
            name: CHUNKS_STREAM.into(),
            subjects: vec![format!("{CHUNKS_SUBJECT_PREFIX}.>")],
            retention: stream::RetentionPolicy::WorkQueue,
            storage: stream::StorageType::File,
            duplicate_window: DEDUP_WINDOW,
            ..Default::default()
        })
        .await
        .map_err(|e| SetupError::Stream { name: CHUNKS_STREAM, source: e.into() })?;
    let results = js
        .get_or_create_stream(stream::Config {
            name: RESULTS_STREAM.into(),
            subjects: vec![format!("{RESULTS_SUBJECT_PREFIX}.>")],
            retention: stream::RetentionPolicy::Limits,
            storage: stream::StorageType::File,
            duplicate_window: DEDUP_WINDOW,
            max_age: results_retention,
            ..Default::default()
        })
        .await
        .map_err(|e| SetupError::Stream { name: RESULTS_STREAM, source: e.into() })?;
    let control = js
        .get_or_create_stream(stream::Config {
            name: CONTROL_STREAM.into(),
            subjects: vec![format!("{CONTROL_SUBJECT_PREFIX}.>")],
            retention: stream::RetentionPolicy::Limits,
            storage: stream::StorageType::File,
            max_messages_per_subject: 1,
            max_age: CONTROL_RETENTION,
            ..Default::default()
        })
        .await
        .map_err(|e| SetupError::Stream { name: CONTROL_STREAM, source: e.into() })?;
    let telemetry = js
        .get_or_create_stream(stream::Config {
            name: TELEMETRY_STREAM.into(),
            subjects: vec![TELEMETRY_ALL.into()],
            retention: stream::RetentionPolicy::Limits,
            storage: stream::StorageType::File,
            max_age: TELEMETRY_RETENTION,
            ..Default::default()
        })
        .await
        .map_err(|e| SetupError::Stream { name: TELEMETRY_STREAM, source: e.into() })?;
    Ok(Streams { chunks, results, control, telemetry })
}
