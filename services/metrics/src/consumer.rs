//! The durable consumer of the telemetry stream: each message is written to the database, then
//! acknowledged; a failed write is redelivered, an undecodable message is dropped (logged), and
//! so is one the database keeps refusing: telemetry must never pile up behind poison.

use crate::AppState;
use nightshift_shared::measurements::{BatchEvent, ChunkReport, GpuSample, ModelReload};
use nightshift_shared::queue::{Consumer, ConsumerSpec, Delivery, Queue, Settle};
use nightshift_shared::subjects;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How long a message may stay unacknowledged before JetStream redelivers it.
const ACK_WAIT: Duration = Duration::from_secs(60);
/// Delay before a message whose write failed is delivered again.
const RETRY_DELAY: Duration = Duration::from_secs(2);
/// Deliveries of a message the database refuses (not one it cannot be reached for) before it is
/// dropped.
const MAX_REFUSALS: u64 = 5;
/// Messages taken per pull, and how long a pull waits for the first.
const PULL_MAX: usize = 256;
const PULL_WAIT: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum ConsumerError {
    #[error("creating the nightshift-metrics consumer: {0}")]
    Create(String),
}

/// What one message was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Chunk,
    Gpu,
    Reload,
    Batch,
    /// Undecodable or on an unknown subject: dropped.
    Invalid,
}

impl Kind {
    /// The `kind` label of the consumed-messages counter.
    pub fn label(self) -> &'static str {
        match self {
            Self::Chunk => "chunk",
            Self::Gpu => "gpu",
            Self::Reload => "reload",
            Self::Batch => "batch",
            Self::Invalid => "invalid",
        }
    }
}

/// Creates (or opens) the service's durable consumer of every telemetry subject.
pub async fn create(queue: &dyn Queue) -> Result<Arc<dyn Consumer>, ConsumerError> {
    queue
        .consumer(ConsumerSpec {
            stream: subjects::TELEMETRY_STREAM,
            durable: subjects::METRICS_CONSUMER,
            description: "Nightshift metrics service",
            filter: Some(subjects::TELEMETRY_ALL.into()),
            ack_wait: ACK_WAIT,
            max_ack_pending: 1_000,
        })
        .await
        .map_err(|e| ConsumerError::Create(e.to_string()))
}

/// Writes one telemetry message; `Err` only when the database failed (worth a retry).
pub async fn handle(state: &AppState, subject: &str, payload: &[u8]) -> Result<Kind, sqlx::Error> {
    fn decode<T: serde::de::DeserializeOwned>(subject: &str, payload: &[u8]) -> Option<T> {
        serde_json::from_slice(payload)
            .map_err(|e| tracing::warn!(subject, error = %e, "undecodable telemetry dropped"))
            .ok()
    }
    let store = &state.store;
    match subject {
        subjects::TELEMETRY_CHUNKS => {
            let Some(report) = decode::<ChunkReport>(subject, payload) else {
                return Ok(Kind::Invalid);
            };
            store.record_chunk(&report).await?;
            Ok(Kind::Chunk)
        }
        subjects::TELEMETRY_GPU => {
            let Some(sample) = decode::<GpuSample>(subject, payload) else {
                return Ok(Kind::Invalid);
            };
            store.record_gpu_sample(&sample).await?;
            state.exporter.gpu_sample(&sample);
            Ok(Kind::Gpu)
        }
        subjects::TELEMETRY_RELOADS => {
            let Some(reload) = decode::<ModelReload>(subject, payload) else {
                return Ok(Kind::Invalid);
            };
            if store.record_reload(&reload).await? {
                state.exporter.reload(&reload.worker_id, &reload.model);
            }
            Ok(Kind::Reload)
        }
        subjects::TELEMETRY_BATCHES => {
            let Some(event) = decode::<BatchEvent>(subject, payload) else {
                return Ok(Kind::Invalid);
            };
            store.record_batch_event(&event).await?;
            Ok(Kind::Batch)
        }
        other => {
            tracing::warn!(subject = other, "telemetry on an unknown subject dropped");
            Ok(Kind::Invalid)
        }
    }
}

/// Consumes telemetry until `shutdown`.
pub async fn run(state: AppState, shutdown: CancellationToken) {
    while !shutdown.is_cancelled() {
        let pulled = tokio::select! {
            () = shutdown.cancelled() => return,
            pulled = state.consumer.fetch(PULL_MAX, PULL_WAIT) => pulled,
        };
        match pulled {
            Ok(messages) => {
                for message in messages {
                    step(&state, message, &shutdown).await;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot pull telemetry; retrying");
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(RETRY_DELAY) => {}
                }
            }
        }
    }
}

/// Handles one delivered message and settles it with the queue.
async fn step(state: &AppState, message: Delivery, shutdown: &CancellationToken) {
    match handle(state, &message.subject, &message.payload).await {
        Ok(kind) => {
            let ack = if kind == Kind::Invalid { Settle::Term } else { Settle::Ack };
            if let Err(e) = message.settle(ack).await {
                tracing::warn!(error = %e, "telemetry ack lost; it will be redelivered");
            }
            state.exporter.consumed(kind.label());
        }
        Err(e)
            if !nightshift_shared::http::is_unreachable(&e)
                && message.delivered >= MAX_REFUSALS =>
        {
            tracing::error!(error = %e, subject = %message.subject, deliveries = message.delivered, "the database keeps refusing this telemetry; dropping it");
            if let Err(e) = message.settle(Settle::Term).await {
                tracing::debug!(error = %e, "term lost; the message comes back once more");
            }
            state.exporter.consumed(Kind::Invalid.label());
        }
        Err(e) => {
            tracing::warn!(error = %e, subject = %message.subject, "storing telemetry failed");
            if let Err(e) = message.settle(Settle::Nak(Some(RETRY_DELAY))).await {
                tracing::debug!(error = %e, "nak lost; ack wait will redeliver");
            }
            // Back off instead of spinning through the backlog while the database is down.
            tokio::select! {
                () = shutdown.cancelled() => {}
                () = tokio::time::sleep(RETRY_DELAY) => {}
            }
        }
    }
}
