//! The JetStream streams every service expects, created by whoever starts first and brought to the
//! configured settings by whoever starts next: a changed retention or replica count is applied to
//! the existing stream rather than silently ignored.

use crate::subjects::{
    CHUNKS_STREAM, CHUNKS_SUBJECT_PREFIX, CONTROL_STREAM, CONTROL_SUBJECT_PREFIX, OBJECTS_BUCKET,
    RESULTS_STREAM, RESULTS_SUBJECT_PREFIX, TELEMETRY_ALL, TELEMETRY_STREAM,
};
use async_nats::jetstream::{self, object_store, stream};
use std::time::Duration;

/// How long JetStream remembers a message id to drop a re-publish of it.
pub const DEDUP_WINDOW: Duration = Duration::from_secs(2 * 60 * 60);

/// How long a batch's control state is kept: longer than any batch can run.
pub const CONTROL_RETENTION: Duration = Duration::from_secs(7 * 24 * 60 * 60);

/// How long measurements wait for the metrics service before JetStream drops them.
pub const TELEMETRY_RETENTION: Duration = Duration::from_secs(7 * 24 * 60 * 60);

#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("creating JetStream stream {name}: {source}")]
    Stream { name: String, source: async_nats::Error },
    #[error("updating JetStream stream {name} to the configured settings: {source}")]
    Update { name: String, source: async_nats::Error },
    #[error(
        "JetStream stream {name} exists with {what} {found}, but Nightshift needs {wanted}: \
         delete the stream (nats stream rm {name}) and start again"
    )]
    Incompatible { name: String, what: &'static str, found: String, wanted: String },
    #[error("creating the JetStream object store {bucket}: {source}")]
    Objects { bucket: &'static str, source: async_nats::Error },
}

/// The settings of the streams a deployment chooses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamSettings {
    /// How long a result waits for the collector: past it, JetStream drops it.
    pub results_retention: Duration,
    /// Copies of each stream on a cluster.
    pub replicas: usize,
}

impl Default for StreamSettings {
    fn default() -> Self {
        Self { results_retention: Duration::from_secs(72 * 3600), replicas: 1 }
    }
}

/// Handles on the streams, after making sure they exist as configured.
pub struct Streams {
    pub chunks: stream::Stream,
    pub results: stream::Stream,
    pub control: stream::Stream,
    pub telemetry: stream::Stream,
    /// Results too large for one message.
    pub objects: object_store::ObjectStore,
}

/// Creates (or opens, and brings to `settings`) the chunk work queue, the result, control and
/// telemetry streams, and the object store of large results.
pub async fn ensure(
    js: &jetstream::Context,
    settings: StreamSettings,
) -> Result<Streams, SetupError> {
    let replicas = settings.replicas;
    let chunks = converge(
        js,
        stream::Config {
            name: CHUNKS_STREAM.into(),
            subjects: vec![format!("{CHUNKS_SUBJECT_PREFIX}.>")],
            retention: stream::RetentionPolicy::WorkQueue,
            storage: stream::StorageType::File,
            duplicate_window: DEDUP_WINDOW,
            num_replicas: replicas,
            ..Default::default()
        },
    )
    .await?;
    let results = converge(
        js,
        stream::Config {
            name: RESULTS_STREAM.into(),
            subjects: vec![format!("{RESULTS_SUBJECT_PREFIX}.>")],
            retention: stream::RetentionPolicy::Limits,
            storage: stream::StorageType::File,
            duplicate_window: DEDUP_WINDOW,
            max_age: settings.results_retention,
            num_replicas: replicas,
            ..Default::default()
        },
    )
    .await?;
    let control = converge(
        js,
        stream::Config {
            name: CONTROL_STREAM.into(),
            subjects: vec![format!("{CONTROL_SUBJECT_PREFIX}.>")],
            retention: stream::RetentionPolicy::Limits,
            storage: stream::StorageType::File,
            max_messages_per_subject: 1,
            max_age: CONTROL_RETENTION,
            num_replicas: replicas,
            ..Default::default()
        },
    )
    .await?;
    let telemetry = converge(
        js,
        stream::Config {
            name: TELEMETRY_STREAM.into(),
            subjects: vec![TELEMETRY_ALL.into()],
            retention: stream::RetentionPolicy::Limits,
            storage: stream::StorageType::File,
            max_age: TELEMETRY_RETENTION,
            num_replicas: replicas,
            ..Default::default()
        },
    )
    .await?;
    let objects = objects(js, settings).await?;
    Ok(Streams { chunks, results, control, telemetry, objects })
}

/// The object store of results too large for a message, kept as long as results are.
async fn objects(
    js: &jetstream::Context,
    settings: StreamSettings,
) -> Result<object_store::ObjectStore, SetupError> {
    let fail = |e: async_nats::Error| SetupError::Objects { bucket: OBJECTS_BUCKET, source: e };
    let store = match js.get_object_store(OBJECTS_BUCKET).await {
        Ok(store) => store,
        Err(_) => match js
            .create_object_store(object_store::Config {
                bucket: OBJECTS_BUCKET.into(),
                description: Some("Nightshift results too large for one message".into()),
                max_age: settings.results_retention,
                storage: stream::StorageType::File,
                num_replicas: settings.replicas,
                ..Default::default()
            })
            .await
        {
            Ok(store) => store,
            // Another service created it in between.
            Err(e) => js.get_object_store(OBJECTS_BUCKET).await.map_err(|_| fail(e.into()))?,
        },
    };
    // The bucket is a stream too: keep its age and copies as configured.
    let name = format!("OBJ_{OBJECTS_BUCKET}");
    let mut stream = js
        .get_stream(&name)
        .await
        .map_err(|e| SetupError::Stream { name: name.clone(), source: e.into() })?;
    let info = stream
        .info()
        .await
        .map_err(|e| SetupError::Stream { name: name.clone(), source: e.into() })?;
    let mut config = info.config.clone();
    if config.max_age != settings.results_retention || config.num_replicas != settings.replicas {
        config.max_age = settings.results_retention;
        config.num_replicas = settings.replicas;
        tracing::info!(stream = %name, "bringing the stream to the configured settings");
        js.update_stream(&config)
            .await
            .map_err(|e| SetupError::Update { name, source: e.into() })?;
    }
    Ok(store)
}

/// Opens the stream `wanted` names, creating it if missing; an existing one whose changeable
/// settings differ is updated to them, one whose kind differs is an error that says what to do.
async fn converge(
    js: &jetstream::Context,
    wanted: stream::Config,
) -> Result<stream::Stream, SetupError> {
    let name = wanted.name.clone();
    let mut stream = js
        .get_or_create_stream(wanted.clone())
        .await
        .map_err(|e| SetupError::Stream { name: name.clone(), source: e.into() })?;
    let found = stream
        .info()
        .await
        .map_err(|e| SetupError::Stream { name: name.clone(), source: e.into() })?
        .config
        .clone();
    let incompatible = |what: &'static str, found: String, wanted: String| {
        SetupError::Incompatible { name: name.clone(), what, found, wanted }
    };
    if found.retention != wanted.retention {
        return Err(incompatible(
            "retention",
            format!("{:?}", found.retention),
            format!("{:?}", wanted.retention),
        ));
    }
    if found.storage != wanted.storage {
        return Err(incompatible(
            "storage",
            format!("{:?}", found.storage),
            format!("{:?}", wanted.storage),
        ));
    }
    let changed = found.subjects != wanted.subjects
        || found.max_age != wanted.max_age
        || found.duplicate_window != wanted.duplicate_window
        || found.max_messages_per_subject != wanted.max_messages_per_subject
        || found.num_replicas.max(1) != wanted.num_replicas.max(1);
    if changed {
        tracing::info!(
            stream = %name,
            max_age = ?wanted.max_age,
            replicas = wanted.num_replicas,
            "bringing the stream to the configured settings"
        );
        js.update_stream(&wanted)
            .await
            .map_err(|e| SetupError::Update { name: name.clone(), source: e.into() })?;
        stream = js
            .get_stream(&name)
            .await
            .map_err(|e| SetupError::Stream { name: name.clone(), source: e.into() })?;
    }
    Ok(stream)
}
