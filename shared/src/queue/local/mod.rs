//! [`Queue`] inside one process, kept in a SQLite file so a restart loses nothing.
//!
//! Every message is a row (`messages`) written before its publish returns; a consumer's state is
//! an index in memory rebuilt from the rows on start: which messages are ready, which are out
//! with a deadline. How often each was delivered is counted in its row, so a redelivery after a
//! crash says so and the worker skips requests already done. Acks and naks act on the index at
//! once and are written through, so a crash redelivers at most what was out.
//!
//! Same semantics as the JetStream streams in [`crate::jetstream`]: the chunk queue drops a
//! message once acknowledged (its row stays, empty, for the de-duplication window), results are
//! kept for the retention window after being acknowledged (a redelivered chunk reads them), the
//! control stream keeps the last message per subject, telemetry is consumed once.
//!
//! What it does not do: serve more than one process (that is what NATS is for), more than one
//! durable consumer per stream, or filters narrower than a whole stream.

mod consumer;

use super::{Consumer, ConsumerSpec, Outgoing, Queue, QueueError, QueueResult, subject_matches};
use crate::jetstream::DEDUP_WINDOW;
use crate::subjects;
use bytes::Bytes;
use consumer::LocalConsumer;
use futures::FutureExt;
use futures::future::BoxFuture;
use sqlx::Row;
use sqlx::sqlite::SqlitePool;
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// Largest payload: well above any chunk the gateway cuts, and above the largest result a worker
/// publishes by default (`WORKER_MAX_RESULT_BYTES`), so no result needs an object store here.
const MAX_PAYLOAD: usize = 256 * 1024 * 1024;

/// How often acknowledged rows past their window are deleted.
const CLEANUP_EVERY: Duration = Duration::from_secs(600);

/// What a stream keeps once its consumer has acknowledged a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Consumed; the emptied row is kept for the de-duplication window.
    Consumed,
    /// Consumed, and kept whole for the results window (a redelivered chunk reads it).
    KeptAfterAck,
    /// Not consumed: the last message per subject is the state.
    LastPerSubject,
}

struct StreamSpec {
    name: &'static str,
    prefix: &'static str,
    kind: Kind,
}

const STREAMS: [StreamSpec; 4] = [
    StreamSpec {
        name: subjects::CHUNKS_STREAM,
        prefix: subjects::CHUNKS_SUBJECT_PREFIX,
        kind: Kind::Consumed,
    },
    StreamSpec {
        name: subjects::RESULTS_STREAM,
        prefix: subjects::RESULTS_SUBJECT_PREFIX,
        kind: Kind::KeptAfterAck,
    },
    StreamSpec {
        name: subjects::CONTROL_STREAM,
        prefix: subjects::CONTROL_SUBJECT_PREFIX,
        kind: Kind::LastPerSubject,
    },
    StreamSpec {
        name: subjects::TELEMETRY_STREAM,
        prefix: "nightshift.telemetry",
        kind: Kind::Consumed,
    },
];

fn stream_of(subject: &str) -> QueueResult<&'static StreamSpec> {
    STREAMS
        .iter()
        .find(|s| subject.strip_prefix(s.prefix).is_some_and(|rest| rest.starts_with('.')))
        .ok_or_else(|| QueueError::NoStream(subject.to_owned()))
}

fn stream_named(name: &str) -> QueueResult<&'static StreamSpec> {
    STREAMS.iter().find(|s| s.name == name).ok_or_else(|| QueueError::UnknownStream(name.into()))
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS messages (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    stream       TEXT NOT NULL,
    subject      TEXT NOT NULL,
    msg_id       TEXT,
    payload      BLOB NOT NULL,
    published_at INTEGER NOT NULL,
    delivered    INTEGER NOT NULL DEFAULT 0,
    acked_at     INTEGER
);
CREATE UNIQUE INDEX IF NOT EXISTS messages_msg_id ON messages (stream, msg_id);
CREATE INDEX IF NOT EXISTS messages_subject ON messages (subject, seq);
CREATE INDEX IF NOT EXISTS messages_pending ON messages (stream, seq) WHERE acked_at IS NULL;
CREATE INDEX IF NOT EXISTS messages_acked ON messages (acked_at) WHERE acked_at IS NOT NULL;
";

/// One stream's consumer: what is ready, what is out and until when.
struct ConsumerState {
    durable: Option<&'static str>,
    ack_wait: Duration,
    max_ack_pending: usize,
    /// Sequences ready to go out, in publish order. (Delivery counts live in the rows.)
    ready: BTreeSet<i64>,
    /// Sequences out, and when each is delivered again unless settled.
    out: HashMap<i64, Instant>,
    notify: Arc<Notify>,
}

impl ConsumerState {
    fn new() -> Self {
        Self {
            durable: None,
            ack_wait: Duration::from_secs(30),
            max_ack_pending: usize::MAX,
            ready: BTreeSet::new(),
            out: HashMap::new(),
            notify: Arc::new(Notify::new()),
        }
    }

    /// Whether a fetch could take a message now.
    fn can_take(&self) -> bool {
        !self.ready.is_empty() && self.out.len() < self.max_ack_pending
    }

    /// Puts back what is out past its deadline; returns the next deadline still ahead.
    fn requeue_expired(&mut self, now: Instant) -> Option<Instant> {
        self.out.retain(|&seq, &mut at| {
            let expired = at <= now;
            if expired {
                self.ready.insert(seq);
            }
            !expired
        });
        self.out.values().min().copied()
    }
}

struct Inner {
    db: SqlitePool,
    results_retention: Duration,
    consumers: Mutex<HashMap<&'static str, ConsumerState>>,
    last_cleanup: Mutex<Instant>,
}

impl Inner {
    fn consumers(&self) -> MutexGuard<'_, HashMap<&'static str, ConsumerState>> {
        // The map is only ever changed by whole statements; a panic elsewhere leaves it usable.
        self.consumers.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The in-process queue. Cheap to clone; every clone is the same queue.
#[derive(Clone)]
pub struct LocalQueue {
    inner: Arc<Inner>,
}

use crate::clock::unix_ms;

impl LocalQueue {
    /// Opens the queue in `db` (its own SQLite file is best: the queue writes often), creating
    /// its table, and rebuilds each consumer's index from the messages not yet acknowledged.
    pub async fn open(db: SqlitePool, results_retention: Duration) -> QueueResult<Self> {
        sqlx::raw_sql(SCHEMA)
            .execute(&db)
            .await
            .map_err(|e| QueueError::backend("creating the queue table", e))?;
        let mut consumers = HashMap::new();
        for spec in STREAMS.iter().filter(|s| s.kind != Kind::LastPerSubject) {
            consumers.insert(spec.name, ConsumerState::new());
        }
        let rows =
            sqlx::query("SELECT seq, stream FROM messages WHERE acked_at IS NULL ORDER BY seq")
                .fetch_all(&db)
                .await
                .map_err(|e| QueueError::backend("loading pending messages", e))?;
        for row in rows {
            let stream: String = row.get(1);
            if let Some(state) = consumers.get_mut(stream.as_str()) {
                state.ready.insert(row.get(0));
            }
        }
        let inner = Inner {
            db,
            results_retention,
            consumers: Mutex::new(consumers),
            last_cleanup: Mutex::new(Instant::now()),
        };
        Ok(Self { inner: Arc::new(inner) })
    }

    async fn insert(&self, messages: Vec<Outgoing>) -> QueueResult<()> {
        let db_error = |e| QueueError::backend("writing to the queue", e);
        let now = unix_ms();
        let mut added: Vec<(&'static str, i64)> = Vec::with_capacity(messages.len());
        let mut tx = self.inner.db.begin().await.map_err(db_error)?;
        for message in messages {
            let spec = stream_of(&message.subject)?;
            if message.payload.len() > MAX_PAYLOAD {
                return Err(QueueError::backend(
                    "publishing",
                    format!("payload of {} bytes over {MAX_PAYLOAD}", message.payload.len()),
                ));
            }
            if spec.kind == Kind::LastPerSubject {
                sqlx::query("DELETE FROM messages WHERE subject = $1")
                    .bind(&message.subject)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_error)?;
            }
            let seq: Option<i64> = sqlx::query_scalar(
                "INSERT INTO messages (stream, subject, msg_id, payload, published_at)
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING RETURNING seq",
            )
            .bind(spec.name)
            .bind(&message.subject)
            .bind(&message.msg_id)
            .bind(message.payload.as_ref())
            .bind(now)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_error)?;
            // None: a duplicate message id, stored once already.
            if let Some(seq) = seq
                && spec.kind != Kind::LastPerSubject
            {
                added.push((spec.name, seq));
            }
        }
        tx.commit().await.map_err(db_error)?;
        let mut consumers = self.inner.consumers();
        for (stream, seq) in added {
            if let Some(state) = consumers.get_mut(stream) {
                state.ready.insert(seq);
                state.notify.notify_waiters();
            }
        }
        Ok(())
    }

    /// Deletes acknowledged rows past their window; at most once per [`CLEANUP_EVERY`].
    async fn cleanup(&self) {
        {
            let mut last = self.inner.last_cleanup.lock().unwrap_or_else(|e| e.into_inner());
            if last.elapsed() < CLEANUP_EVERY {
                return;
            }
            *last = Instant::now();
        }
        let now = unix_ms();
        let dedup = now - DEDUP_WINDOW.as_millis() as i64;
        let results = now - self.inner.results_retention.as_millis() as i64;
        let done = sqlx::query(
            "DELETE FROM messages WHERE acked_at IS NOT NULL
               AND acked_at < CASE WHEN stream = $1 THEN $2 ELSE $3 END",
        )
        .bind(subjects::RESULTS_STREAM)
        .bind(results.min(dedup))
        .bind(dedup)
        .execute(&self.inner.db)
        .await;
        if let Err(e) = done {
            tracing::warn!(error = %e, "cleaning the local queue");
        }
    }
}

impl Queue for LocalQueue {
    fn kind(&self) -> &'static str {
        "local"
    }

    fn health(&self) -> Result<(), String> {
        if self.inner.db.is_closed() { Err("queue database closed".into()) } else { Ok(()) }
    }

    fn max_payload(&self) -> usize {
        MAX_PAYLOAD
    }

    fn objects(&self) -> Option<&dyn super::Objects> {
        None
    }

    fn publish_all(&self, messages: Vec<Outgoing>) -> BoxFuture<'_, QueueResult<()>> {
        async move {
            self.insert(messages).await?;
            self.cleanup().await;
            Ok(())
        }
        .boxed()
    }

    fn consumer(&self, spec: ConsumerSpec) -> BoxFuture<'_, QueueResult<Arc<dyn Consumer>>> {
        async move {
            let stream = stream_named(spec.stream)?;
            if let Some(filter) = &spec.filter
                && !subject_matches(filter, &format!("{}.x", stream.prefix))
            {
                return Err(QueueError::backend(
                    "creating a consumer",
                    "the local queue filters nothing narrower than a whole stream",
                ));
            }
            let mut consumers = self.inner.consumers();
            let state = consumers.get_mut(stream.name).ok_or_else(|| {
                QueueError::backend("creating a consumer", "this stream is not consumed")
            })?;
            match state.durable {
                Some(durable) if durable != spec.durable => {
                    return Err(QueueError::backend(
                        "creating a consumer",
                        format!("the local queue holds one consumer per stream ({durable})"),
                    ));
                }
                _ => {}
            }
            state.durable = Some(spec.durable);
            state.ack_wait = spec.ack_wait;
            state.max_ack_pending = usize::try_from(spec.max_ack_pending).unwrap_or(usize::MAX);
            let consumer = LocalConsumer { queue: self.clone(), stream: stream.name };
            Ok(Arc::new(consumer) as Arc<dyn Consumer>)
        }
        .boxed()
    }

    fn last_on_subject<'a>(
        &'a self,
        _stream: &'static str,
        subject: &'a str,
    ) -> BoxFuture<'a, QueueResult<Option<Bytes>>> {
        async move {
            let payload: Option<Vec<u8>> = sqlx::query_scalar(
                "SELECT payload FROM messages WHERE subject = $1 ORDER BY seq DESC LIMIT 1",
            )
            .bind(subject)
            .fetch_optional(&self.inner.db)
            .await
            .map_err(|e| QueueError::backend("reading the last message", e))?;
            Ok(payload.map(Bytes::from))
        }
        .boxed()
    }

    fn read_subject<'a>(
        &'a self,
        _stream: &'static str,
        subject: &'a str,
    ) -> BoxFuture<'a, QueueResult<Vec<Bytes>>> {
        async move {
            let rows: Vec<Vec<u8>> = sqlx::query_scalar(
                "SELECT payload FROM messages WHERE subject = $1 AND length(payload) > 0
                 ORDER BY seq",
            )
            .bind(subject)
            .fetch_all(&self.inner.db)
            .await
            .map_err(|e| QueueError::backend("reading a subject", e))?;
            Ok(rows.into_iter().map(Bytes::from).collect())
        }
        .boxed()
    }

    fn purge_subject<'a>(
        &'a self,
        stream: &'static str,
        subject: &'a str,
    ) -> BoxFuture<'a, QueueResult<()>> {
        async move {
            // `a.b.>` holds every subject under `a.b.`: compared as a prefix, not with LIKE,
            // whose `_` would match any character of a batch id.
            let (exact, prefix) = match subject.strip_suffix('>') {
                Some(prefix) if prefix.ends_with('.') => (None, Some(prefix)),
                _ => (Some(subject), None),
            };
            let seqs: Vec<i64> = sqlx::query_scalar(
                "UPDATE messages SET acked_at = COALESCE(acked_at, $3), payload = x''
                 WHERE (subject = $1 OR substr(subject, 1, length($2)) = $2)
                   AND length(payload) > 0
                 RETURNING seq",
            )
            .bind(exact)
            .bind(prefix)
            .bind(unix_ms())
            .fetch_all(&self.inner.db)
            .await
            .map_err(|e| QueueError::backend("purging a subject", e))?;
            if let Some(state) = self.inner.consumers().get_mut(stream) {
                for seq in seqs {
                    state.ready.remove(&seq);
                    state.out.remove(&seq);
                }
            }
            Ok(())
        }
        .boxed()
    }
}
