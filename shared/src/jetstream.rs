//! The JetStream streams and bucket every service expects, created idempotently by whoever starts first.

use crate::subjects::{
    CHUNKS_STREAM, CHUNKS_SUBJECT_PREFIX, CONTROL_BUCKET, RESULTS_STREAM, RESULTS_SUBJECT_PREFIX,
};
use async_nats::jetstream::{self, kv, stream};
use std::time::Duration;

/// How long JetStream remembers a message id to drop a re-publish of it.
pub const DEDUP_WINDOW: Duration = Duration::from_secs(2 * 60 * 60);

#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("creating JetStream stream {name}: {source}")]
    Stream { name: &'static str, source: async_nats::Error },
    #[error("creating JetStream key-value bucket {CONTROL_BUCKET}: {0}")]
    Bucket(async_nats::Error),
}

/// Handles on the streams and bucket, after making sure they exist.
pub struct Streams {
    pub chunks: stream::Stream,
    pub results: stream::Stream,
    pub control: kv::Store,
}

/// Creates (or opens) the chunk work queue, the result stream and the control bucket.
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
    let control = match js.get_key_value(CONTROL_BUCKET).await {
        Ok(store) => store,
        Err(_) => js
            .create_key_value(kv::Config {
                bucket: CONTROL_BUCKET.into(),
                history: 1,
                storage: stream::StorageType::File,
                ..Default::default()
            })
            .await
            .map_err(|e| SetupError::Bucket(e.into()))?,
    };
    Ok(Streams { chunks, results, control })
}
