//! The queue every service talks to: NATS JetStream in the distributed deployment, or an
//! in-process queue kept in a SQLite file when everything runs in one process.
//!
//! The interface is what the services need and nothing more:
//! - publish with a durable acknowledgement and an optional de-duplication id;
//! - durable shared consumers with explicit acks, progress acks (keep a long job), naks with a
//!   delay, terminal acks for poison, and redelivery with a delivery count after the ack wait;
//! - the messages still held on one subject (a redelivered chunk's earlier results) and the last
//!   one (a batch's control state);
//! - purging subjects (a finished batch's unconsumed chunks and its results);
//! - where messages are small (NATS: 1 MiB by default), a store of large objects, for results
//!   that do not fit in one.
//!
//! [`nats::JetStreamQueue`] maps each onto JetStream; [`local::LocalQueue`] implements the same
//! semantics for one process (see its docs for what it does not do).

pub mod local;
pub mod nats;

use bytes::Bytes;
use futures::future::BoxFuture;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("{what}: {message}")]
    Backend { what: &'static str, message: String },
    #[error("unknown stream {0}")]
    UnknownStream(String),
    #[error("no stream holds subject {0}")]
    NoStream(String),
}

impl QueueError {
    pub(crate) fn backend(what: &'static str, e: impl std::fmt::Display) -> Self {
        Self::Backend { what, message: e.to_string() }
    }
}

pub type QueueResult<T> = Result<T, QueueError>;

/// A message to publish.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub subject: String,
    pub payload: Bytes,
    /// Publishing the same id again (within the de-duplication window) stores it once.
    pub msg_id: Option<String>,
}

impl Outgoing {
    pub fn new(subject: impl Into<String>, payload: impl Into<Bytes>) -> Self {
        Self { subject: subject.into(), payload: payload.into(), msg_id: None }
    }

    pub fn with_id(mut self, msg_id: impl Into<String>) -> Self {
        self.msg_id = Some(msg_id.into());
        self
    }
}

/// A durable consumer, shared by every process that opens it by the same name.
#[derive(Debug, Clone)]
pub struct ConsumerSpec {
    pub stream: &'static str,
    pub durable: &'static str,
    pub description: &'static str,
    /// Only subjects matching this (a NATS wildcard subject); `None` for the whole stream.
    pub filter: Option<String>,
    /// How long a delivered message may go unacknowledged before it is delivered again.
    pub ack_wait: Duration,
    /// Most messages delivered and not yet acknowledged, across every process.
    pub max_ack_pending: i64,
}

/// How a delivered message is settled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settle {
    /// Done.
    Ack,
    /// Done, and wait until the queue has recorded it.
    AckSync,
    /// Deliver again after the delay (or at once).
    Nak(Option<Duration>),
    /// Still working on it: restart the ack wait.
    Progress,
    /// Never deliver again (it cannot be processed).
    Term,
}

/// The queue behind one of the two implementations.
pub trait Queue: Send + Sync + 'static {
    /// `nats` or `local`: how `/readyz` names it.
    fn kind(&self) -> &'static str;

    /// Whether the queue is usable now; the error says why not.
    fn health(&self) -> Result<(), String>;

    /// The largest payload one message may carry.
    fn max_payload(&self) -> usize;

    /// Where payloads larger than a message are kept, if this queue needs such a place.
    fn objects(&self) -> Option<&dyn Objects>;

    /// Publishes messages in order and returns once every one is durable.
    fn publish_all(&self, messages: Vec<Outgoing>) -> BoxFuture<'_, QueueResult<()>>;

    /// Opens (creating it if needed) a durable consumer.
    fn consumer(&self, spec: ConsumerSpec) -> BoxFuture<'_, QueueResult<Arc<dyn Consumer>>>;

    /// The payload of the last message on `subject`, if any.
    fn last_on_subject<'a>(
        &'a self,
        stream: &'static str,
        subject: &'a str,
    ) -> BoxFuture<'a, QueueResult<Option<Bytes>>>;

    /// Every message still held on `subject`, oldest first.
    fn read_subject<'a>(
        &'a self,
        stream: &'static str,
        subject: &'a str,
    ) -> BoxFuture<'a, QueueResult<Vec<Bytes>>>;

    /// Drops every message held on `subject` (`a.b.>`: on every subject under `a.b.`), whether
    /// or not a consumer acknowledged it.
    fn purge_subject<'a>(
        &'a self,
        stream: &'static str,
        subject: &'a str,
    ) -> BoxFuture<'a, QueueResult<()>>;
}

impl dyn Queue {
    /// Publishes one message and waits until it is durable.
    pub async fn publish(&self, message: Outgoing) -> QueueResult<()> {
        self.publish_all(vec![message]).await
    }
}

/// A store of named payloads too large for one message, kept for the results window.
pub trait Objects: Send + Sync {
    /// Stores `payload` under `name` and returns once it is durable.
    fn put<'a>(&'a self, name: &'a str, payload: Bytes) -> BoxFuture<'a, QueueResult<()>>;

    /// The payload stored under `name`, if it is still there.
    fn get<'a>(&'a self, name: &'a str) -> BoxFuture<'a, QueueResult<Option<Bytes>>>;

    /// Drops the payload stored under `name` (nothing if there is none).
    fn delete<'a>(&'a self, name: &'a str) -> BoxFuture<'a, QueueResult<()>>;
}

/// One durable consumer.
pub trait Consumer: Send + Sync {
    /// Up to `max` messages, waiting up to `wait` for the first (zero: what is ready now).
    fn fetch(&self, max: usize, wait: Duration) -> BoxFuture<'_, QueueResult<Vec<Delivery>>>;
}

/// Settles one delivered message with the queue that delivered it.
pub trait Acker: Send + Sync {
    fn settle(&self, how: Settle) -> BoxFuture<'_, QueueResult<()>>;
}

/// A delivered message.
pub struct Delivery {
    pub subject: String,
    pub payload: Bytes,
    /// 1 on the first delivery, more on redeliveries.
    pub delivered: u64,
    acker: Box<dyn Acker>,
}

impl Delivery {
    pub fn new(subject: String, payload: Bytes, delivered: u64, acker: Box<dyn Acker>) -> Self {
        Self { subject, payload, delivered, acker }
    }

    pub async fn settle(&self, how: Settle) -> QueueResult<()> {
        self.acker.settle(how).await
    }

    pub async fn ack(&self) -> QueueResult<()> {
        self.settle(Settle::Ack).await
    }
}

impl std::fmt::Debug for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delivery")
            .field("subject", &self.subject)
            .field("bytes", &self.payload.len())
            .field("delivered", &self.delivered)
            .finish()
    }
}

/// Whether `subject` matches the NATS wildcard subject `filter` (`*` one token, `>` the rest).
pub fn subject_matches(filter: &str, subject: &str) -> bool {
    let mut subject = subject.split('.');
    for token in filter.split('.') {
        match (token, subject.next()) {
            (">", Some(_)) => return true,
            ("*", Some(_)) => {}
            (t, Some(s)) if t == s => {}
            _ => return false,
        }
    }
    subject.next().is_none()
}

#[cfg(test)]
mod tests {
    use super::subject_matches;

    #[test]
    fn wildcards_match_like_nats() {
        assert!(subject_matches("nightshift.telemetry.>", "nightshift.telemetry.gpu"));
        assert!(subject_matches("nightshift.telemetry.>", "nightshift.telemetry.a.b"));
        assert!(!subject_matches("nightshift.telemetry.>", "nightshift.telemetry"));
        assert!(subject_matches("a.*.c", "a.b.c"));
        assert!(!subject_matches("a.*.c", "a.b.d"));
        assert!(!subject_matches("a.b", "a.b.c"));
        assert!(subject_matches("a.b", "a.b"));
    }
}
