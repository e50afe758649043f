//! [`Queue`] on NATS JetStream: the distributed deployment, any number of processes and hosts.

use super::{
    Acker, Consumer, ConsumerSpec, Delivery, Objects, Outgoing, Queue, QueueError, QueueResult,
    Settle,
};
use crate::jetstream::{StreamSettings, Streams, ensure};
use crate::subjects;
use anyhow::Context;
use async_nats::jetstream::consumer::{AckPolicy, PullConsumer, pull};
use async_nats::jetstream::context::PublishAckFuture;
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::object_store::{DeleteErrorKind, GetErrorKind, ObjectStore};
use async_nats::jetstream::stream::{LastRawMessageErrorKind, Stream};
use async_nats::jetstream::{self, AckKind, Message};
use bytes::Bytes;
use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

/// Publishes awaiting the server's ack at most this many at a time.
const PUBLISH_WINDOW: usize = 256;

/// How long start-up waits for JetStream to answer (a cluster electing its leaders).
const JETSTREAM_READY_WAIT: Duration = Duration::from_secs(30);

/// How long after a pull's expiry the server's last messages may still be on their way.
const EXPIRY_GRACE: Duration = Duration::from_millis(200);

/// The first nats-server releases whose filtered purge leaves a wider consumer's pending
/// messages alone, on one server and across a cluster's followers: older ones move the cursor
/// past them (nats-io/nats-server #3838, fixed in 2.9.12), keep ghost pending entries that freeze
/// the ack floor (#7984, 2.12.7 and 2.14.0), or do so on followers (#8102, 2.12.9 and 2.14.1).
/// A batch's results are purged while the collector's consumer of every batch's results is live.
const SAFE_PURGE: [(u64, u64, u64); 2] = [(2, 12, 9), (2, 14, 1)];

pub struct JetStreamQueue {
    client: async_nats::Client,
    js: jetstream::Context,
    streams: Streams,
    objects: JetStreamObjects,
    /// Whether this server's filtered purges are safe behind a live wider consumer.
    purges: bool,
}

impl JetStreamQueue {
    /// Connects (to any of the comma-separated servers of `urls`) and makes sure every stream
    /// exists as `settings` say (see [`ensure`]).
    pub async fn connect(urls: &str, settings: StreamSettings) -> anyhow::Result<Self> {
        let servers = server_addrs(urls)?;
        let client = async_nats::ConnectOptions::new()
            .connection_timeout(Duration::from_secs(5))
            .connect(servers)
            .await
            .with_context(|| format!("connecting to NATS at {urls} (NATS_URL)"))?;
        let version = client.server_info().version;
        let purges = purge_is_safe(&version);
        if !purges {
            tracing::warn!(
                nats_server = %version,
                "this nats-server predates the fixes for filtered purges behind a wider consumer \
                 (nats-server #3838, #7984, #8102): finished batches' chunks and results are not \
                 purged on it and age out after NIGHTSHIFT_RESULTS_RETENTION_HOURS instead; \
                 upgrade to nats-server 2.14.1 or newer"
            );
        }
        let js = jetstream::new(client.clone());
        // A cluster answers JetStream requests only once it has elected a meta leader (a few
        // seconds after its servers start): keep asking for a while before giving up.
        let started = tokio::time::Instant::now();
        let streams = loop {
            match ensure(&js, settings).await {
                Ok(streams) => break streams,
                Err(e)
                    if !matches!(e, crate::jetstream::SetupError::Incompatible { .. })
                        && started.elapsed() < JETSTREAM_READY_WAIT =>
                {
                    tracing::info!(error = %e, "JetStream not ready yet; retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Err(e) => return Err(e.into()),
            }
        };
        let objects = JetStreamObjects(streams.objects.clone());
        Ok(Self { client, js, streams, objects, purges })
    }

    /// The version the connected server reported.
    pub fn server_version(&self) -> String {
        self.client.server_info().version
    }

    pub fn client(&self) -> &async_nats::Client {
        &self.client
    }

    fn stream(&self, name: &str) -> QueueResult<&Stream> {
        match name {
            subjects::CHUNKS_STREAM => Ok(&self.streams.chunks),
            subjects::RESULTS_STREAM => Ok(&self.streams.results),
            subjects::CONTROL_STREAM => Ok(&self.streams.control),
            subjects::TELEMETRY_STREAM => Ok(&self.streams.telemetry),
            other => Err(QueueError::UnknownStream(other.to_owned())),
        }
    }

    async fn publish_in_order(&self, messages: Vec<Outgoing>) -> QueueResult<()> {
        let mut acks: VecDeque<PublishAckFuture> = VecDeque::new();
        for message in messages {
            let mut publish = PublishMessage::build().payload(message.payload);
            if let Some(id) = &message.msg_id {
                publish = publish.message_id(id);
            }
            let ack = self
                .js
                .send_publish(message.subject, publish)
                .await
                .map_err(|e| QueueError::backend("publishing", e))?;
            acks.push_back(ack);
            while acks.len() >= PUBLISH_WINDOW {
                settle_publish(&mut acks).await?;
            }
        }
        while !acks.is_empty() {
            settle_publish(&mut acks).await?;
        }
        Ok(())
    }
}

async fn settle_publish(acks: &mut VecDeque<PublishAckFuture>) -> QueueResult<()> {
    if let Some(ack) = acks.pop_front() {
        ack.await.map_err(|e| QueueError::backend("JetStream did not acknowledge a publish", e))?;
    }
    Ok(())
}

impl Queue for JetStreamQueue {
    fn kind(&self) -> &'static str {
        "nats"
    }

    fn health(&self) -> Result<(), String> {
        match self.client.connection_state() {
            async_nats::connection::State::Connected => Ok(()),
            other => Err(other.to_string()),
        }
    }

    fn max_payload(&self) -> usize {
        self.client.server_info().max_payload
    }

    fn objects(&self) -> Option<&dyn Objects> {
        Some(&self.objects)
    }

    fn publish_all(&self, messages: Vec<Outgoing>) -> BoxFuture<'_, QueueResult<()>> {
        self.publish_in_order(messages).boxed()
    }

    fn consumer(&self, spec: ConsumerSpec) -> BoxFuture<'_, QueueResult<Arc<dyn Consumer>>> {
        async move {
            let stream = self.stream(spec.stream)?;
            let consumer = stream
                .get_or_create_consumer(
                    spec.durable,
                    pull::Config {
                        durable_name: Some(spec.durable.into()),
                        description: Some(spec.description.into()),
                        filter_subject: spec.filter.clone().unwrap_or_default(),
                        ack_policy: AckPolicy::Explicit,
                        ack_wait: spec.ack_wait,
                        max_ack_pending: spec.max_ack_pending,
                        ..Default::default()
                    },
                )
                .await
                .map_err(|e| QueueError::backend("creating a consumer", e))?;
            Ok(Arc::new(JetStreamConsumer { consumer }) as Arc<dyn Consumer>)
        }
        .boxed()
    }

    fn last_on_subject<'a>(
        &'a self,
        stream: &'static str,
        subject: &'a str,
    ) -> BoxFuture<'a, QueueResult<Option<Bytes>>> {
        async move {
            match self.stream(stream)?.get_last_raw_message_by_subject(subject).await {
                Ok(message) => Ok(Some(message.payload)),
                Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => Ok(None),
                Err(e) => Err(QueueError::backend("reading the last message", e)),
            }
        }
        .boxed()
    }

    fn read_subject<'a>(
        &'a self,
        stream: &'static str,
        subject: &'a str,
    ) -> BoxFuture<'a, QueueResult<Vec<Bytes>>> {
        async move {
            let stream = self.stream(stream)?;
            // Most subjects read this way are empty: one cheap lookup before a consumer.
            match stream.get_last_raw_message_by_subject(subject).await {
                Ok(_) => {}
                Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => {
                    return Ok(Vec::new());
                }
                Err(e) => return Err(QueueError::backend("looking up a subject", e)),
            }
            let consumer = stream
                .create_consumer(pull::Config {
                    filter_subject: subject.to_owned(),
                    ack_policy: AckPolicy::None,
                    inactive_threshold: Duration::from_secs(30),
                    ..Default::default()
                })
                .await
                .map_err(|e| QueueError::backend("reading a subject", e))?;
            let read = read_all(&consumer).await;
            let name = consumer.cached_info().name.clone();
            let _ = stream.delete_consumer(&name).await;
            read
        }
        .boxed()
    }

    fn purge_subject<'a>(
        &'a self,
        stream: &'static str,
        subject: &'a str,
    ) -> BoxFuture<'a, QueueResult<()>> {
        async move {
            let stream = self.stream(stream)?;
            if !self.purges {
                return Ok(());
            }
            stream
                .purge()
                .filter(subject)
                .await
                .map(|_| ())
                .map_err(|e| QueueError::backend("purging a subject", e))
        }
        .boxed()
    }
}

/// The servers of a comma-separated `NATS_URL` (the client takes a list, not such a string).
fn server_addrs(urls: &str) -> anyhow::Result<Vec<async_nats::ServerAddr>> {
    let servers = urls
        .split(',')
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .map(|u| {
            u.parse::<async_nats::ServerAddr>()
                .with_context(|| format!("NATS_URL: '{u}' is not a NATS server URL"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    anyhow::ensure!(!servers.is_empty(), "NATS_URL is empty");
    Ok(servers)
}

/// Whether `version` (as nats-server reports it: `2.15.1`, `2.12.9-beta`) has the purge fixes.
fn purge_is_safe(version: &str) -> bool {
    let numbers: Vec<u64> = version
        .trim_start_matches('v')
        .split(['.', '-', '+'])
        .take(3)
        .map(|p| p.parse().unwrap_or(0))
        .collect();
    let [major, minor, patch] = numbers[..] else { return false };
    let v = (major, minor, patch);
    v >= SAFE_PURGE[1]
        || (v >= SAFE_PURGE[0] && (major, minor) == (SAFE_PURGE[0].0, SAFE_PURGE[0].1))
}

async fn read_all(consumer: &PullConsumer) -> QueueResult<Vec<Bytes>> {
    let mut out = Vec::new();
    loop {
        let mut page = consumer
            .fetch()
            .max_messages(500)
            .messages()
            .await
            .map_err(|e| QueueError::backend("reading a subject", e))?;
        let before = out.len();
        while let Some(message) = page.next().await {
            let message = message.map_err(|e| QueueError::backend("reading a subject", e))?;
            out.push(message.payload.clone());
        }
        if out.len() == before {
            return Ok(out);
        }
    }
}

struct JetStreamConsumer {
    consumer: PullConsumer,
}

impl JetStreamConsumer {
    async fn pull(&self, max: usize, wait: Duration) -> QueueResult<Vec<Delivery>> {
        let pulled = if wait.is_zero() {
            self.consumer.fetch().max_messages(max).messages().await
        } else {
            self.consumer.batch().max_messages(max).expires(wait).messages().await
        };
        let mut messages = pulled.map_err(|e| QueueError::backend("pulling", e))?;
        // A pull the server expired after delivering some messages may end without a 408
        // (nats-server 2.9 sends none), and the client would then hold them until its own
        // timer, `wait` plus 5 s. Past the deadline, take what has arrived and stop.
        let deadline = (!wait.is_zero()).then(|| tokio::time::Instant::now() + wait + EXPIRY_GRACE);
        let mut expired = false;
        let mut out = Vec::with_capacity(max);
        loop {
            let next = match deadline {
                _ if expired => match messages.next().now_or_never() {
                    Some(next) => next,
                    None => break,
                },
                Some(deadline) => match tokio::time::timeout_at(deadline, messages.next()).await {
                    Ok(next) => next,
                    Err(_) => {
                        expired = true;
                        continue;
                    }
                },
                None => messages.next().await,
            };
            let Some(message) = next else { break };
            match message {
                Ok(m) => out.push(delivery(m)),
                // One message failing to arrive (a status line, a timeout) leaves it to the
                // next pull; JetStream redelivers what was not acknowledged.
                Err(e) => tracing::warn!(error = %e, "pulling"),
            }
        }
        Ok(out)
    }
}

impl Consumer for JetStreamConsumer {
    fn fetch(&self, max: usize, wait: Duration) -> BoxFuture<'_, QueueResult<Vec<Delivery>>> {
        self.pull(max.max(1), wait).boxed()
    }
}

fn delivery(message: Message) -> Delivery {
    let delivered = message.info().map(|i| i.delivered.max(1) as u64).unwrap_or(1);
    Delivery::new(
        message.subject.to_string(),
        message.payload.clone(),
        delivered,
        Box::new(JetStreamAcker(message)),
    )
}

struct JetStreamAcker(Message);

impl Acker for JetStreamAcker {
    fn settle(&self, how: Settle) -> BoxFuture<'_, QueueResult<()>> {
        async move {
            let done = match how {
                Settle::Ack => self.0.ack().await,
                Settle::AckSync => self.0.double_ack().await,
                Settle::Nak(delay) => self.0.ack_with(AckKind::Nak(delay)).await,
                Settle::Progress => self.0.ack_with(AckKind::Progress).await,
                Settle::Term => self.0.ack_with(AckKind::Term).await,
            };
            done.map_err(|e| QueueError::backend("acknowledging", e))
        }
        .boxed()
    }
}

/// The JetStream object store of results too large for one message.
struct JetStreamObjects(ObjectStore);

impl Objects for JetStreamObjects {
    fn put<'a>(&'a self, name: &'a str, payload: Bytes) -> BoxFuture<'a, QueueResult<()>> {
        async move {
            self.0
                .put(name, &mut payload.as_ref())
                .await
                .map(|_| ())
                .map_err(|e| QueueError::backend("storing an object", e))
        }
        .boxed()
    }

    fn get<'a>(&'a self, name: &'a str) -> BoxFuture<'a, QueueResult<Option<Bytes>>> {
        async move {
            use tokio::io::AsyncReadExt;
            let mut object = match self.0.get(name).await {
                Ok(object) => object,
                Err(e) if e.kind() == GetErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(QueueError::backend("reading an object", e)),
            };
            let mut out = Vec::with_capacity(object.info.size);
            object
                .read_to_end(&mut out)
                .await
                .map_err(|e| QueueError::backend("reading an object", e))?;
            Ok(Some(Bytes::from(out)))
        }
        .boxed()
    }

    fn delete<'a>(&'a self, name: &'a str) -> BoxFuture<'a, QueueResult<()>> {
        async move {
            match self.0.delete(name).await {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == DeleteErrorKind::NotFound => Ok(()),
                Err(e) => Err(QueueError::backend("deleting an object", e)),
            }
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::{purge_is_safe, server_addrs};

    #[test]
    fn purges_are_trusted_from_the_releases_with_every_fix() {
        for safe in ["2.12.9", "2.12.10", "2.14.1", "2.15.1", "v2.15.0", "3.0.0", "2.14.2-beta"] {
            assert!(purge_is_safe(safe), "{safe}");
        }
        for unsafe_ in ["2.9.10", "2.10.22", "2.12.8", "2.13.0", "2.14.0", "", "garbage"] {
            assert!(!purge_is_safe(unsafe_), "{unsafe_}");
        }
    }

    #[test]
    fn a_cluster_url_list_is_split() {
        let servers = server_addrs("nats://a:4222, nats://b:4223,").unwrap();
        assert_eq!(servers.len(), 2);
        assert!(server_addrs(" , ").is_err());
    }
}
